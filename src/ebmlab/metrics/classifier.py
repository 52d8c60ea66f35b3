"""A small CNN classifier for 28x28 images in [-1, 1]: labels model samples and gives features.

Architecture: Conv(1->w,3,p1) ReLU MaxPool2 -> Conv(w->2w,3,p1) ReLU MaxPool2 -> Flatten ->
Linear(2w*7*7 -> feature_dim) ReLU [= :meth:`DigitClassifier.features`] -> Linear(feature_dim ->
n_classes).  Training is seeded and deterministic on CPU (Adam, cross-entropy, shuffled mini-batches).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from ..io import load_torch, save_torch


class DigitClassifier(nn.Module):
    """CNN for (N, 1, 28, 28) images in [-1, 1] with ``n_classes`` outputs (logits)."""

    def __init__(self, n_classes: int = 10, width: int = 16, feature_dim: int = 64):
        super().__init__()
        if n_classes < 2 or width < 1 or feature_dim < 1:
            raise ValueError(
                f"need n_classes >= 2, width >= 1, feature_dim >= 1; got {n_classes}, {width}, {feature_dim}"
            )
        self.config = {"n_classes": n_classes, "width": width, "feature_dim": feature_dim}
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(2 * w * 7 * 7, feature_dim),
            nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, n_classes)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate-layer features (N, feature_dim)."""
        if x.dim() != 4 or tuple(x.shape[1:]) != (1, 28, 28):
            raise ValueError(f"expected images of shape (N, 1, 28, 28), got {tuple(x.shape)}")
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        """Logits (N, n_classes)."""
        return self.head(self.features(x))


def _check_labelled(images: Tensor, labels: Tensor) -> None:
    if images.dim() != 4 or tuple(images.shape[1:]) != (1, 28, 28) or not images.is_floating_point():
        raise ValueError(f"images must be a float tensor (N, 1, 28, 28), got {images.dtype} {tuple(images.shape)}")
    if labels.shape != images.shape[:1] or labels.dtype != torch.int64:
        raise ValueError(
            f"labels must be int64 of shape ({images.shape[0]},), got {labels.dtype} {tuple(labels.shape)}"
        )


def random_shift(x: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Translate each image (N, 1, H, W) by independent integer offsets in [-max_shift, max_shift]
    pixels (both axes), filling with the border value (-1 = background for MNIST in [-1, 1])."""
    n, _, h, w = x.shape
    shifts = torch.randint(-max_shift, max_shift + 1, (n, 2), generator=generator).to(x.dtype)
    theta = torch.zeros(n, 2, 3, dtype=x.dtype)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = 2.0 * shifts[:, 0] / w
    theta[:, 1, 2] = 2.0 * shifts[:, 1] / h
    grid = nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    return nn.functional.grid_sample(x, grid, mode="nearest", padding_mode="border", align_corners=False)


def apply_batched(fn: Callable[[Tensor], Tensor], x: Tensor, batch: int = 1024, grad: bool = False) -> Tensor:
    """fn applied to x in chunks of ``batch`` rows and concatenated (the one batched map of the package);
    ``grad``: allow gradients inside fn (e.g. Langevin chains), else run it under ``torch.no_grad``."""
    with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
        return torch.cat([fn(x[i : i + batch]) for i in range(0, x.shape[0], batch)])


def train_classifier(
    images: Tensor,
    labels: Tensor,
    n_classes: int | None = None,
    *,
    epochs: int = 10,
    batch: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    width: int = 16,
    feature_dim: int = 64,
    max_shift: int = 2,
    progress: bool | None = None,
) -> DigitClassifier:
    """Train a :class:`DigitClassifier` on images (N, 1, 28, 28) in [-1, 1] and labels (N,) int64.

    Each batch is augmented by random translations of up to ``max_shift`` pixels (0 = none).
    Seeded: the initial weights, batch order and shifts come from ``seed`` (the global torch RNG is
    left untouched).  Returns the model in eval mode.
    """
    _check_labelled(images, labels)
    k = int(labels.max()) + 1 if n_classes is None else n_classes
    if int(labels.min()) < 0 or int(labels.max()) >= k:
        raise ValueError(f"labels must lie in [0, {k - 1}], got range [{int(labels.min())}, {int(labels.max())}]")
    if epochs < 1 or batch < 1:
        raise ValueError(f"epochs and batch must be >= 1, got {epochs}, {batch}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DigitClassifier(k, width, feature_dim)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    n = images.shape[0]
    for _ in tqdm(range(epochs), desc="classifier", disable=progress is False, leave=False):
        order = torch.randperm(n, generator=gen)
        for i in range(0, n, batch):
            idx = order[i : i + batch]
            x = random_shift(images[idx], max_shift, gen) if max_shift else images[idx]
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x), labels[idx]).backward()
            opt.step()
    return model.eval()


def predict(model: DigitClassifier, images: Tensor, batch: int = 1024) -> Tensor:
    """Predicted class indices (N,) int64."""
    return apply_batched(lambda x: model(x).argmax(1), images, batch)


def accuracy(model: DigitClassifier, images: Tensor, labels: Tensor, batch: int = 1024) -> float:
    """Fraction of images whose predicted class equals the label."""
    _check_labelled(images, labels)
    return float((predict(model, images, batch) == labels).double().mean())


def class_fractions(pred: Tensor, n_classes: int, weights: Tensor | None = None) -> Tensor:
    """Class fractions (n_classes,) float64 of predictions (N,): weighted by normalised ``weights``
    (N,) if given, else counts / N."""
    one_hot = nn.functional.one_hot(pred, n_classes).double()
    if weights is None:
        return one_hot.mean(0)
    w = weights.double()
    return (w[:, None] * one_hot).sum(0) / w.sum()


def save_classifier(model: DigitClassifier, path: str | os.PathLike) -> None:
    """Save config and state_dict (a plain dict readable with ``weights_only=True``)."""
    save_torch({"config": dict(model.config), "state_dict": model.state_dict()}, path)


def load_classifier(path: str | os.PathLike) -> DigitClassifier:
    """Load a classifier written by :func:`save_classifier`, in eval mode; a missing, damaged or foreign
    file raises one ValueError naming it."""
    blob: Any = load_torch(path, "classifier")
    try:
        model = DigitClassifier(**blob["config"])
        model.load_state_dict(blob["state_dict"])
    except (TypeError, KeyError, RuntimeError):
        raise ValueError(f"{str(path)!r} is not an ebmlab classifier file: delete it to train it again") from None
    return model.eval()
