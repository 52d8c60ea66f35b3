"""Draw the import graph of ``src/ebmlab`` by package and check it against the layering of docs/architecture.md.

Usage: python scripts/import_graph.py [--out docs/architecture.png]

A package is a subpackage (``sampling``) or a top-level module (``errors``); an edge A -> B means some module
of A imports some module of B (relative or absolute imports, at any depth of the file; the top-level
``ebmlab/__init__.py`` loads its exports lazily by name and is left out).  Each package sits on a layer and
may import only packages on lower layers: :func:`violations` lists the edges that break that rule.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "src" / "ebmlab"

# layer of every package: each may import only packages of lower layers
LAYERS: dict[str, int] = {
    "errors": 0,
    "deprecation": 0,
    "io": 0,
    "distributed": 0,
    "uncertainty": 0,
    "sampling": 1,
    "estimators": 2,
    "energies": 3,
    "metrics": 3,
    "data": 3,
    "training": 3,
    "latent": 4,
    "lvm": 4,
    "experiments": 5,
    "cli": 6,
    "__main__": 7,
}


def package_of(module: tuple[str, ...]) -> str:
    """The package of a module path inside ebmlab, e.g. ("sampling", "smc") -> "sampling"."""
    return module[0] if module else "__init__"


def _imported(path: Path, tree: ast.AST) -> set[tuple[str, ...]]:
    pkg = path.relative_to(ROOT).with_suffix("").parts[:-1]  # the package a relative import starts from
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = pkg[: len(pkg) - (node.level - 1)] if node.level > 1 else pkg
            target = (*base, *(node.module.split(".") if node.module else ()))
            names = [(*target, a.name) for a in node.names] if not node.module else [target]
            out.update(names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ebmlab."):
            out.add(tuple(node.module.split(".")[1:]))
        elif isinstance(node, ast.Import):
            out.update(tuple(a.name.split(".")[1:]) for a in node.names if a.name.startswith("ebmlab."))
    return out


def package_imports(root: Path = ROOT) -> dict[str, set[str]]:
    """package -> the other packages it imports."""
    graph: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("").parts
        if rel == ("__init__",):
            continue
        src = package_of(rel)
        deps = {package_of(m) for m in _imported(path, ast.parse(path.read_text()))}
        graph.setdefault(src, set()).update(d for d in deps if d not in (src, "__init__"))
    return graph


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Edges from a package to one on the same or a higher layer (and packages without a layer)."""
    bad = [f"{p} has no layer in LAYERS" for p in graph if p not in LAYERS]
    for src, deps in graph.items():
        bad += [f"{src} -> {d}" for d in sorted(deps) if d in LAYERS and src in LAYERS and LAYERS[d] >= LAYERS[src]]
    return bad


def draw(graph: dict[str, set[str]], out: Path) -> None:
    """The packages on their layers (bottom: the base) with an arrow per import edge."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_layer: dict[int, list[str]] = {}
    for p in sorted(graph, key=lambda p: (LAYERS.get(p, 99), p)):
        by_layer.setdefault(LAYERS.get(p, 99), []).append(p)
    pos = {}
    for layer, names in by_layer.items():
        for i, name in enumerate(names):
            pos[name] = ((i + 1) / (len(names) + 1), layer)
    fig, ax = plt.subplots(figsize=(10, 7))
    for src, deps in graph.items():
        for d in deps:
            ax.annotate(
                "",
                xy=pos[d],
                xytext=pos[src],
                zorder=1,
                arrowprops=dict(
                    arrowstyle="-|>", color="0.55", lw=0.8, shrinkA=14, shrinkB=14, connectionstyle="arc3,rad=0.08"
                ),
            )
    for name, (x, y) in pos.items():
        ax.text(
            x,
            y,
            name,
            ha="center",
            va="center",
            fontsize=10,
            zorder=2,
            bbox=dict(boxstyle="round,pad=0.4", fc="white", ec="0.2"),
        )
    ax.set_yticks(sorted(by_layer), [f"layer {k}" for k in sorted(by_layer)])
    ax.set_xticks([])
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.6, max(by_layer) + 0.6)
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    ax.set_title("ebmlab: imports between packages (an arrow A -> B: A imports B; only downwards)")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT.parents[1] / "docs" / "architecture.png")
    args = parser.parse_args()
    graph = package_imports()
    draw(graph, args.out)
    for src in sorted(graph, key=lambda p: LAYERS.get(p, 99)):
        print(f"{src:12} -> {', '.join(sorted(graph[src])) or '-'}")
    bad = violations(graph)
    print("upward imports: " + ("; ".join(bad) if bad else "none"))
    print(f"wrote {args.out}")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
