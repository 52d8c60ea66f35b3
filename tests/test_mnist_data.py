"""MNIST IDX reader (synthetic IDX bytes, corrupted copies, missing files) and the seeded splits."""

import gzip
import shutil
import struct

import numpy as np
import pytest
import torch

from ebmlab.data.mnist import FILES, MnistDataError, download_mnist, load_mnist, md5sum, parse_idx, resolve_data_dir
from ebmlab.data.subsets import class_indices, imbalanced_digit_split, split_by_class, to_signed_unit


def _idx_bytes(array: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()


def test_parse_idx_shapes_and_values():
    images = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
    labels = np.array([7, 0, 9], dtype=np.uint8)
    np.testing.assert_array_equal(parse_idx(_idx_bytes(images)), images)
    np.testing.assert_array_equal(parse_idx(_idx_bytes(labels)), labels)


@pytest.mark.parametrize(
    "raw, match",
    [
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x00", "magic"),
        (b"\x00\x00\x0d\x01\x00\x00\x00\x01\x00", "element type"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x03\x00", "payload"),
    ],
)
def test_parse_idx_rejects_bad_bytes(raw, match):
    with pytest.raises(MnistDataError, match=match):
        parse_idx(raw)


def test_load_unverified_synthetic_files(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (6, 28, 28), dtype=np.uint8)
    labels = np.array([0, 1, 2, 3, 4, 5], dtype=np.uint8)
    img_name, lab_name = FILES["test"]
    (tmp_path / img_name).write_bytes(gzip.compress(_idx_bytes(images)))
    (tmp_path / lab_name).write_bytes(gzip.compress(_idx_bytes(labels)))
    x, y = load_mnist(tmp_path, verify=False)
    np.testing.assert_array_equal(x, images)
    assert y.dtype == np.int64 and y.tolist() == list(range(6))
    with pytest.raises(MnistDataError, match="md5"):  # synthetic files are not the official ones
        load_mnist(tmp_path, verify=True)


def test_real_test_set_shapes_and_labels(mnist_dir):
    x, y = load_mnist(mnist_dir, split="test")
    assert x.shape == (10000, 28, 28) and x.dtype == np.uint8
    assert y.shape == (10000,) and y.min() == 0 and y.max() == 9
    assert [int((y == d).sum()) for d in (2, 3, 6)] == [1032, 1010, 958]


def test_corrupted_copy_fails_md5(mnist_dir, tmp_path):
    for name in FILES["test"]:
        shutil.copy(mnist_dir / name, tmp_path / name)
    raw = bytearray((tmp_path / FILES["test"][1]).read_bytes())
    raw[-1] ^= 0xFF
    (tmp_path / FILES["test"][1]).write_bytes(bytes(raw))
    with pytest.raises(MnistDataError, match="corrupt"):
        load_mnist(tmp_path)


def test_download_checks_md5_before_the_final_name(mnist_dir, tmp_path):
    """A good mirror gives files equal to the source; a corrupt one raises and leaves nothing behind."""
    good = download_mnist(tmp_path / "good", "test", base_url=mnist_dir.as_uri() + "/")
    for name in FILES["test"]:
        assert md5sum(good / name) == md5sum(mnist_dir / name)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name in FILES["test"]:
        (mirror / name).write_bytes((mnist_dir / name).read_bytes()[:-10])  # truncated copies
    target = tmp_path / "bad"
    with pytest.raises(MnistDataError, match=r"corrupt \(md5 mismatch\); nothing was written"):
        download_mnist(target, "test", base_url=mirror.as_uri() + "/")
    assert list(target.iterdir()) == []
    with pytest.raises(MnistDataError, match="cannot download"):
        download_mnist(target, "test", base_url=(tmp_path / "nowhere").as_uri() + "/")
    with pytest.raises(ValueError, match="timeout"):
        download_mnist(target, "test", timeout=0)


def test_missing_directory_file_and_variable(tmp_path, monkeypatch):
    with pytest.raises(MnistDataError, match="does not exist"):
        load_mnist(tmp_path / "nowhere")
    with pytest.raises(MnistDataError, match="missing MNIST file"):
        load_mnist(tmp_path)
    monkeypatch.delenv("EBMLAB_DATA", raising=False)
    with pytest.raises(MnistDataError, match="EBMLAB_DATA"):
        resolve_data_dir(None)
    monkeypatch.setenv("EBMLAB_DATA", str(tmp_path))
    assert resolve_data_dir(None) == tmp_path


def test_to_signed_unit_range_and_errors():
    x = to_signed_unit(np.array([[[0, 255], [127, 128]]], dtype=np.uint8))
    assert x.shape == (1, 1, 2, 2) and x.dtype == torch.float32
    assert x.min() == -1.0 and x.max() == 1.0
    with pytest.raises(ValueError, match="uint8"):
        to_signed_unit(np.zeros((1, 2, 2), dtype=np.float32))


def test_split_by_class_disjoint_exact_and_seeded():
    labels = np.repeat([0, 1, 2], [10, 20, 30])
    parts = split_by_class(labels, [2, 0], [[3, 4], [5, None]], seed=1)
    assert np.bincount(labels[parts[0]], minlength=3).tolist() == [4, 0, 3]
    assert np.bincount(labels[parts[1]], minlength=3).tolist() == [6, 0, 5]
    assert not set(parts[0]) & set(parts[1])
    again = split_by_class(labels, [2, 0], [[3, 4], [5, None]], seed=1)
    other = split_by_class(labels, [2, 0], [[3, 4], [5, None]], seed=2)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again))
    assert not np.array_equal(parts[0], other[0])
    with pytest.raises(ValueError, match="only 10 exist"):
        split_by_class(labels, [0], [[11]], seed=0)
    with pytest.raises(ValueError, match="last part"):
        split_by_class(labels, [0], [[None], [1]], seed=0)
    with pytest.raises(ValueError, match="not among"):
        class_indices(labels, [0, 1])


def test_imbalanced_split_ratios_exact(mnist_dir):
    x, y = load_mnist(mnist_dir)
    split = imbalanced_digit_split(x, y, digits=(2, 3, 6), ratios=(4, 2, 1), ebm_unit=120, heldout_unit=60, seed=0)
    assert split.ebm.class_counts(3) == [480, 240, 120]
    assert split.heldout.class_counts(3) == [240, 120, 60]
    assert split.classifier.class_counts(3) == [1032 - 720, 1010 - 360, 958 - 180]
    sources = [set(p.source.tolist()) for p in (split.ebm, split.heldout, split.classifier)]
    assert not (sources[0] & sources[1] or sources[0] & sources[2] or sources[1] & sources[2])
    assert split.target_fractions == pytest.approx((4 / 7, 2 / 7, 1 / 7))
    assert [int(y[i]) for i in split.ebm.source[split.ebm.labels.numpy() == 2][:3]] == [6, 6, 6]
    assert split.ebm.images.shape == (840, 1, 28, 28)
    with pytest.raises(ValueError, match="only 1032 exist"):
        imbalanced_digit_split(x, y, ebm_unit=1000)
