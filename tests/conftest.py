"""Shared test fixtures: the MNIST directory (``--data-dir`` option, else ``$EBMLAB_DATA``, else the
repository-relative ``../shared/data/mnist``); tests that need it skip when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Under pytest-xdist each worker gets an equal share of the cores (set before any test imports torch), so
# that the parallel workers do not oversubscribe the machine.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ and "OMP_NUM_THREADS" not in os.environ:
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))

MNIST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
DEFAULT_MNIST = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--data-dir",
        default=None,
        help="directory with the MNIST IDX files (default: $EBMLAB_DATA, else ../shared/data/mnist)",
    )


@pytest.fixture(scope="session")
def mnist_dir(request: pytest.FixtureRequest) -> Path:
    """Directory holding the MNIST test-set IDX files; skips the test if there is none."""
    chosen = request.config.getoption("--data-dir") or os.environ.get("EBMLAB_DATA") or DEFAULT_MNIST
    path = Path(chosen).resolve()  # tests may run commands from another directory
    missing = [f for f in MNIST_FILES if not (path / f).is_file()]
    if missing:
        pytest.skip(
            f"MNIST test set not found in {str(path)!r} (missing {missing}); pass --data-dir DIR or set EBMLAB_DATA"
        )
    return path
