"""The public API (see docs/api-policy.md): every name in ``ebmlab.__all__`` and in each public subpackage's
``__all__`` exists and is documented, and ``ebmlab.__version__`` is the version in pyproject.toml."""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
from pathlib import Path

import pytest

import ebmlab

SUBPACKAGES = ("energies", "estimators", "latent", "lvm", "metrics", "sampling", "training")
PUBLIC = ("ebmlab", *(f"ebmlab.{name}" for name in SUBPACKAGES))
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _assignment_docstring(module: object, name: str) -> str | None:
    """The string literal right after ``name = ...`` at the top level of ``module``'s source (the attribute
    docstring convention that the API reference renders), or None."""
    body = ast.parse(inspect.getsource(module)).body  # type: ignore[arg-type]
    for stmt, following in zip(body, body[1:]):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [getattr(stmt, "target", None)]
        named = any(isinstance(t, ast.Name) and t.id == name for t in targets)
        if named and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
            return following.value.value if isinstance(following.value.value, str) else None
    return None


def _docstring(owner: object, name: str) -> str | None:
    obj = getattr(owner, name)
    if inspect.isclass(obj):
        doc = obj.__doc__  # its own, not a base class's
        return None if doc is None or doc.startswith(f"{obj.__name__}(") else doc  # dataclasses make up a signature
    if inspect.ismodule(obj) or inspect.isroutine(obj):
        return obj.__doc__
    # a data name (a registry, a tuple of names, a type alias): documented where it is assigned
    owners = [m for m in list(sys.modules.values()) if getattr(m, "__name__", "").startswith("ebmlab.")]
    docs = [_assignment_docstring(m, name) for m in owners if m.__dict__.get(name) is obj]
    return next((doc for doc in docs if doc is not None), None)


@pytest.mark.parametrize("package", PUBLIC)
def test_every_exported_name_exists_and_is_documented(package: str) -> None:
    module = importlib.import_module(package)
    assert inspect.getdoc(module), f"{package} has no module docstring"
    exported = module.__all__
    assert len(exported) == len(set(exported)), f"{package}.__all__ lists a name twice"
    missing = [name for name in exported if not hasattr(module, name)]
    assert not missing, f"{package}.__all__ names {missing}, which {package} does not define"
    undocumented = [name for name in exported if not (_docstring(module, name) or "").strip()]
    assert not undocumented, f"{package}.__all__ names {undocumented} without a docstring"


def test_version_is_the_one_in_pyproject() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11; on 3.10 the metadata check below still runs
    declared = tomllib.loads(PYPROJECT.read_text())["project"]["version"]
    assert ebmlab.__version__ == declared


def test_version_comes_from_the_installed_metadata() -> None:
    from importlib.metadata import version

    assert ebmlab.__version__ == version("ebmlab")


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_every_public_subpackage_has_an_api_page(name: str) -> None:
    page = PYPROJECT.parent / "docs" / "api" / f"{name}.md"
    assert page.is_file() and f"::: ebmlab.{name}\n" in page.read_text(), f"docs/api/{name}.md must render it"
    assert f"api/{name}.md" in (PYPROJECT.parent / "mkdocs.yml").read_text(), f"docs/api/{name}.md is not in the nav"
