"""MkDocs hook: run every script in ``examples/`` and render it as a page of the site.

Each script runs in a fresh temporary directory (``MPLBACKEND=Agg``, the repository's ``src`` first on
``PYTHONPATH``); the page shows the script's docstring, its code, everything it printed and every PNG it
wrote.  A script that fails or runs past ``TIMEOUT_S`` fails the build.  A script whose first lines hold
``# docs: torchrun --nproc-per-node P`` runs under ``python -m torch.distributed.run`` with P processes.
"""

from __future__ import annotations

import ast
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TIMEOUT_S = 600  # generous: a loaded CI machine runs them several times slower than an idle one
TORCHRUN = re.compile(r"^# docs: torchrun --nproc-per-node (\d+)$", re.MULTILINE)  # in the docstring
log = logging.getLogger("mkdocs.hooks.examples")


def _command(script: Path, source: str) -> list[str]:
    found = TORCHRUN.search(source)
    if found is None:
        return [sys.executable, str(script)]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", found.group(1)]
    return [*launcher, str(script)]


def _run(script: Path) -> tuple[str, float, dict[str, bytes]]:
    """The script's combined output, its wall time in seconds and the PNGs it wrote (name -> bytes)."""
    source = script.read_text()
    path = os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": path}
    env.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory(prefix=f"ebmlab-example-{script.stem}-") as tmp:
        start = time.perf_counter()
        try:
            done = subprocess.run(
                _command(script, source),
                cwd=tmp,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired as err:
            raise PluginError(f"examples/{script.name} ran past {TIMEOUT_S} s") from err
        wall = time.perf_counter() - start
        if done.returncode != 0:
            tail = "\n".join(done.stdout.splitlines()[-30:])
            raise PluginError(f"examples/{script.name} failed with exit status {done.returncode}:\n{tail}")
        figures = {png.name: png.read_bytes() for png in sorted(Path(tmp).glob("*.png"))}
    return done.stdout, wall, figures


def _page(script: Path, output: str, wall: float, figures: dict[str, str]) -> str:
    source = script.read_text()
    doc = ast.get_docstring(ast.parse(source)) or script.stem
    title, _, text = doc.partition("\n")
    text = TORCHRUN.sub("", text)  # the launch marker is for this hook, not the reader
    parts = [
        f"# {title.rstrip('.')}",
        text.strip(),
        f"Source: `examples/{script.name}`. It ran in {wall:.1f} s when this page was built "
        f"(`{' '.join(['python', *_command(Path('examples') / script.name, source)[1:]])}`).",
        f"```python\n{source.rstrip()}\n```",
        "## Output",
        f"```text\n{output.rstrip() or '(nothing printed)'}\n```",
        *(f"![{name}]({page_name})" for name, page_name in figures.items()),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def on_files(files: Files, config) -> Files:
    """Run the examples and add their pages (``examples/<name>.md``), figures and an index to the site."""
    scripts = sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
    if not scripts:
        raise PluginError(f"no example scripts found in {EXAMPLES}")
    index = [
        "# Examples",
        "Short scripts from the repository's `examples/` folder. Every build of this site runs each of them "
        "(a failing script fails the build), so the code, output and figures below are what the current "
        "version produced.",
        "",
    ]
    for script in scripts:
        output, wall, figures = _run(script)
        log.info(f"examples/{script.name}: ran in {wall:.1f} s")
        names = {}
        for name, data in figures.items():
            names[name] = f"{script.stem}_{name}"
            files.append(File.generated(config, f"examples/{names[name]}", content=data))
        files.append(File.generated(config, f"examples/{script.stem}.md", content=_page(script, output, wall, names)))
        title = (ast.get_docstring(ast.parse(script.read_text())) or script.stem).partition("\n")[0].rstrip(".")
        index.append(f"- [{title}]({script.stem}.md): `examples/{script.name}`, {wall:.1f} s")
    files.append(File.generated(config, "examples/index.md", content="\n".join(index) + "\n"))
    return files
