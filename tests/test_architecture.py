"""The import layering of docs/architecture.md: no package of src/ebmlab imports sideways or upwards."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "import_graph.py"


def _graph_module():
    spec = importlib.util.spec_from_file_location("import_graph", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_package_imports_upward():
    g = _graph_module()
    graph = g.package_imports()
    assert {"sampling", "training", "latent", "experiments", "errors"} <= set(graph)
    assert g.violations(graph) == []


def test_the_check_can_fail():
    g = _graph_module()
    assert g.violations({"sampling": {"training"}, "errors": set()}) == ["sampling -> training"]
    assert g.violations({"newpkg": set()}) == ["newpkg has no layer in LAYERS"]
