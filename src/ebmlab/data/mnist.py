"""MNIST IDX reader: md5-checked gzip files from a directory, with an optional download.

The directory comes from an explicit argument or the ``EBMLAB_DATA`` environment variable; it
holds the standard files (``t10k-images-idx3-ubyte.gz`` etc.).  Nothing is downloaded unless
asked for.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import urllib.request
from pathlib import Path
from typing import IO

import numpy as np

from ..io import atomic_write

ENV_VAR = "EBMLAB_DATA"

FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
MD5: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"


class MnistDataError(ValueError):
    """The MNIST directory or one of its files is missing or corrupt."""


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The MNIST directory: ``data_dir`` if given, else ``$EBMLAB_DATA``; a clear error otherwise."""
    chosen = data_dir if data_dir is not None else os.environ.get(ENV_VAR)
    if not chosen:
        raise MnistDataError(
            f"no MNIST directory given: pass --data-dir DIR or set the {ENV_VAR} environment variable "
            "to a directory holding the IDX files (t10k-images-idx3-ubyte.gz, ...)"
        )
    path = Path(chosen).expanduser()
    if not path.is_dir():
        raise MnistDataError(f"MNIST directory {str(path)!r} does not exist or is not a directory")
    return path


def md5sum(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _checked(path: Path, verify: bool) -> Path:
    if not path.is_file():
        raise MnistDataError(
            f"missing MNIST file {path.name!r} in {str(path.parent)!r}; put the standard IDX files there "
            "or call download_mnist(dir)"
        )
    if verify and md5sum(path) != MD5[path.name]:
        raise MnistDataError(f"MNIST file {path.name!r} is corrupt (md5 mismatch); delete it and fetch it again")
    return path


def parse_idx(raw: bytes) -> np.ndarray:
    """Parse an (uncompressed) IDX byte string of unsigned bytes into an array of its declared shape."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise MnistDataError("not an IDX file: bad magic number")
    if raw[2] != 0x08:
        raise MnistDataError(f"unsupported IDX element type 0x{raw[2]:02x} (only unsigned bytes)")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    count = int(np.prod(shape))
    if len(raw) - header != count:
        raise MnistDataError(f"IDX payload has {len(raw) - header} bytes, header declares {count}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape).copy()  # writable, owns its memory


def load_mnist(
    data_dir: str | os.PathLike | None = None, split: str = "test", verify: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) int64 of one split ("train" or "test")."""
    if split not in FILES:
        raise ValueError(f"unknown MNIST split {split!r}; choose 'train' or 'test'")
    root = resolve_data_dir(data_dir)
    img_name, lab_name = FILES[split]
    try:
        images = parse_idx(gzip.decompress(_checked(root / img_name, verify).read_bytes()))
        labels = parse_idx(gzip.decompress(_checked(root / lab_name, verify).read_bytes()))
    except (OSError, EOFError) as exc:  # gzip errors on truncated files
        raise MnistDataError(f"cannot read MNIST files in {str(root)!r}: {exc}") from exc
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise MnistDataError(f"inconsistent MNIST files: images {images.shape}, labels {labels.shape}")
    return images, labels.astype(np.int64)


def download_mnist(
    data_dir: str | os.PathLike, split: str = "test", base_url: str = MIRROR, timeout: float = 60.0
) -> Path:
    """Fetch one split's IDX files into ``data_dir`` (needs a network); files already there are checked.

    Each file is read whole (``timeout`` seconds per blocking network operation), checked against its md5
    sum and only then written under its final name (atomically): a failed or corrupt download leaves
    nothing behind.  Raises :class:`MnistDataError` naming the file."""
    if split not in FILES:
        raise ValueError(f"unknown MNIST split {split!r}; choose 'train' or 'test'")
    if not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
    root = Path(data_dir).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    for name in FILES[split]:
        target = root / name
        if not target.exists():
            try:
                with urllib.request.urlopen(base_url + name, timeout=timeout) as response:
                    payload = response.read()
            except OSError as exc:  # URLError, timeouts and connection errors are OSErrors
                raise MnistDataError(
                    f"cannot download {name!r} from {base_url!r} ({exc}); check the network, or put the IDX "
                    f"files into {str(root)!r} by hand"
                ) from None
            if hashlib.md5(payload).hexdigest() != MD5[name]:
                raise MnistDataError(
                    f"the download of {name!r} from {base_url!r} is corrupt (md5 mismatch); nothing was written: "
                    "try again or use another base_url"
                )

            def write(f: IO[bytes], data: bytes = payload) -> None:
                f.write(data)

            atomic_write(target, write)
        _checked(target, verify=True)
    return root
