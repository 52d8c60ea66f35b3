"""The 8x8 handwritten digits shipped with scikit-learn (:func:`sklearn.datasets.load_digits`: 1797 images,
pixel values 0..16; no download), as real 64-dimensional pixel data for the imbalanced-digit study.

The pixels are integers, and several border pixels are 0 in every image: a density model of the raw values
would pile unbounded mass onto a lattice and a few constant coordinates.  :func:`load_digits8x8` therefore
dequantises them (Theis, van den Oord & Bethge 2016): each value v becomes (v + u) / 17 with u ~ U[0, 1)
drawn once from a seeded generator, then is mapped to [-1, 1].  The result is a continuous 64-D density whose
every coordinate varies, with the digits' structure intact.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits
from torch import Tensor

LEVELS = 17  # pixel values 0..16


def load_digits8x8(seed: int = 0) -> tuple[Tensor, np.ndarray]:
    """Dequantised images (1797, 1, 8, 8) float32 in [-1, 1) and their digit labels (1797,) int64 (see the
    module docstring); ``seed`` draws the dequantisation noise."""
    bunch = load_digits()
    values = torch.from_numpy(bunch.images.astype(np.float64))
    noise = torch.rand(values.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    images = (2.0 * (values + noise) / LEVELS - 1.0).float().unsqueeze(1)
    return images, bunch.target.astype(np.int64)


__all__ = ["load_digits8x8"]
