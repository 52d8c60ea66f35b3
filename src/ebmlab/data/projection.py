"""Low-dimensional representations of digit images, fitted with scikit-learn.

- ``lda``: PCA to ``pca_dims`` (50) dimensions, then linear discriminant analysis to ``dim``
  (at most classes - 1) dimensions, fitted on labelled images;
- ``pca``: PCA to ``dim`` dimensions (label-free);
- ``digits8x8``: the 64 pixels of the 8x8 digits themselves (:mod:`ebmlab.data.digits8x8`), no projection.

Either way the coordinates are then standardised (each has mean 0 and variance 1 over the fitting
images; for PCA this is whitening) and multiplied by ``scale``.  The fit is deterministic (full SVD,
SVD-based LDA): the same images give the same map.  ``pixels`` is the identity (the images
themselves) and has no projection.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import Tensor

SPACES = ("pixels", "lda", "pca", "digits8x8")
PROJECTED = ("lda", "pca", "digits8x8")  # spaces of standardised coordinates for an MLP energy
DIGITS8X8_DIM = 64
MNIST_PIXELS = 28 * 28


def check_space_dim(space: str, dim: int | None, n_classes: int, pca_dims: int = 50) -> None:
    """Raise ValueError for an unknown space or a dimension the space cannot give."""
    if space not in SPACES:
        raise ValueError(f"unknown space {space!r}; choose one of {list(SPACES)}")
    if space == "pixels":
        if dim is not None:
            raise ValueError("--dim applies to --space lda or pca; pixel space is always 784-dimensional")
        return
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise ValueError(f"--dim must be a positive integer, got {dim!r}")
    if space == "lda" and dim > min(n_classes - 1, pca_dims):
        raise ValueError(
            f"--space lda gives at most {min(n_classes - 1, pca_dims)} dimensions for {n_classes} classes "
            f"(got --dim {dim}); use --space pca for more"
        )
    if space == "pca" and dim > MNIST_PIXELS:
        raise ValueError(f"--space pca allows --dim up to {MNIST_PIXELS} (the pixels of an MNIST image), got {dim}")
    if space == "digits8x8" and dim != DIGITS8X8_DIM:
        raise ValueError(f"--space digits8x8 is the {DIGITS8X8_DIM} pixels of the 8x8 digits; got --dim {dim}")


def _flat(images: Tensor) -> np.ndarray:
    if images.dim() < 2:
        raise ValueError(f"images must have shape (N, ...), got {tuple(images.shape)}")
    return images.flatten(1).double().numpy()


@dataclass(frozen=True)
class Projection:
    """A fitted map from images (N, 1, 28, 28) to coordinates (N, dim); see :func:`fit_projection`."""

    space: str
    dim: int
    scale: float
    pipeline: Pipeline

    def __call__(self, images: Tensor) -> Tensor:
        """Coordinates (N, dim), float32."""
        return torch.from_numpy(self.scale * self.pipeline.transform(_flat(images))).float()


def fit_projection(
    space: str, dim: int, images: Tensor, labels: Tensor, scale: float = 1.0, pca_dims: int = 50
) -> Projection:
    """Fit the ``space`` map ('lda', 'pca' or 'digits8x8') to ``dim`` dimensions on images (N, 1, 28, 28) with
    class labels (N,) int64 (used by LDA only); coordinates are standardised and multiplied by ``scale``."""
    if space not in PROJECTED:
        raise ValueError(f"fit_projection takes space 'lda', 'pca' or 'digits8x8', got {space!r}")
    n_classes = int(labels.max()) + 1
    check_space_dim(space, dim, n_classes, pca_dims)
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    x = _flat(images)
    if space == "lda":
        steps = [PCA(pca_dims, svd_solver="full"), LinearDiscriminantAnalysis(n_components=dim)]
    elif space == "pca":
        steps = [PCA(dim, svd_solver="full")]
    else:  # digits8x8: the pixels themselves, standardised
        steps = []
    pipeline = make_pipeline(*steps, StandardScaler()).fit(x, labels.numpy())
    return Projection(space, dim, float(scale), pipeline)
