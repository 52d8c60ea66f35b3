"""Image conversion and seeded, disjoint, per-class splits of a labelled data set.

The imbalanced-MNIST study (:func:`imbalanced_digit_split`) takes from one labelled set three
disjoint parts: the EBM's training images in exact class ratios (4:2:1 for digits 2/3/6), held-out
real images in the same ratios (classifier accuracy and Frechet reference), and everything left of
those digits for training the evaluation classifier.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor


def to_signed_unit(images: np.ndarray | Tensor) -> Tensor:
    """uint8 images (N, H, W) in [0, 255] -> float32 tensor (N, 1, H, W) in [-1, 1] (x / 127.5 - 1)."""
    t = torch.as_tensor(np.asarray(images) if not isinstance(images, Tensor) else images)
    if t.dtype != torch.uint8 or t.dim() != 3:
        raise ValueError(f"expected uint8 images of shape (N, H, W), got dtype {t.dtype} and shape {tuple(t.shape)}")
    return (t.to(torch.float32) / 127.5 - 1.0).unsqueeze(1)


def class_indices(labels: np.ndarray | Tensor, classes: Sequence[int]) -> np.ndarray:
    """Map labels (N,) with values in ``classes`` to class indices 0..len(classes)-1, (N,) int64."""
    labels = np.asarray(labels)
    lookup = {int(c): i for i, c in enumerate(classes)}
    unknown = set(np.unique(labels).tolist()) - set(lookup)
    if unknown:
        raise ValueError(f"labels {sorted(unknown)} are not among classes {list(classes)}")
    return np.array([lookup[int(v)] for v in labels], dtype=np.int64)


def split_by_class(
    labels: np.ndarray | Tensor,
    classes: Sequence[int],
    parts: Sequence[Sequence[int | None]],
    seed: int,
) -> list[np.ndarray]:
    """Seeded disjoint per-class split of a labelled set.

    labels: (N,) integer labels.  classes: the labels to draw from (others are ignored).
    parts[j][c]: how many items of ``classes[c]`` go into part j; ``None`` means "all that remain"
    and is allowed only in the last part.  Each class is shuffled once with
    ``numpy.random.default_rng(seed)`` (classes in the given order) and cut into consecutive
    chunks, so parts never overlap and the same seed gives the same split.
    Returns one sorted int64 index array into ``labels`` per part.
    """
    labels = np.asarray(labels)
    if any(len(p) != len(classes) for p in parts):
        raise ValueError(f"each part needs one count per class ({len(classes)} classes: {list(classes)})")
    if any(n is None for p in parts[:-1] for n in p):
        raise ValueError("None ('all remaining') is allowed only in the last part")
    rng = np.random.default_rng(seed)
    chunks: list[list[np.ndarray]] = [[] for _ in parts]
    for c, cls in enumerate(classes):
        pool = rng.permutation(np.flatnonzero(labels == cls))
        asked = [n for p in parts if (n := p[c]) is not None]
        wanted = sum(asked)
        if any(n < 0 for n in asked) or wanted > pool.size:
            raise ValueError(
                f"class {cls}: the parts ask for {wanted} items but only {pool.size} exist; lower the counts"
            )
        start = 0
        for j, p in enumerate(parts):
            n = p[c]
            stop = pool.size if n is None else start + n
            chunks[j].append(pool[start:stop])
            start = stop
    return [np.sort(np.concatenate(ch)).astype(np.int64) for ch in chunks]


@dataclass(frozen=True)
class LabelledImages:
    """images: (N, 1, 28, 28) float32 in [-1, 1]; labels: (N,) int64 class indices; source: indices
    into the original set."""

    images: Tensor
    labels: Tensor
    source: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.numel())

    def class_counts(self, n_classes: int) -> list[int]:
        return torch.bincount(self.labels, minlength=n_classes).tolist()

    def to(self, device: torch.device | str) -> LabelledImages:
        """The images and labels on ``device``."""
        return replace(self, images=self.images.to(device), labels=self.labels.to(device))


@dataclass(frozen=True)
class DigitSplit:
    """The three disjoint parts of the imbalanced-digit study (see :func:`imbalanced_digit_split`)."""

    digits: tuple[int, ...]
    ratios: tuple[int, ...]
    ebm: LabelledImages
    heldout: LabelledImages
    classifier: LabelledImages

    @property
    def target_fractions(self) -> tuple[float, ...]:
        total = sum(self.ratios)
        return tuple(r / total for r in self.ratios)

    def to(self, device: torch.device | str) -> DigitSplit:
        """Every part on ``device``."""
        return replace(
            self, ebm=self.ebm.to(device), heldout=self.heldout.to(device), classifier=self.classifier.to(device)
        )


def imbalanced_digit_split(
    images: np.ndarray | Tensor,
    labels: np.ndarray,
    digits: Sequence[int] = (2, 3, 6),
    ratios: Sequence[int] = (4, 2, 1),
    ebm_unit: int = 120,
    heldout_unit: int = 60,
    seed: int = 0,
) -> DigitSplit:
    """Split MNIST-like data (uint8 (N, H, W), or float (N, 1, H, W) already in [-1, 1]; labels (N,)) into
    three disjoint parts.

    ebm: ``ratios[c] * ebm_unit`` images of ``digits[c]`` (exact ratios, e.g. 480/240/120);
    heldout: ``ratios[c] * heldout_unit`` images per digit (same ratios; accuracy and Frechet
    reference); classifier: all remaining images of those digits.  Labels become class indices in
    the order of ``digits``.  Seeded by ``seed`` through :func:`split_by_class`.
    """
    if len(digits) != len(ratios) or any(r < 1 for r in ratios):
        raise ValueError(f"need one positive integer ratio per digit; got digits {digits}, ratios {ratios}")
    if ebm_unit < 1 or heldout_unit < 1:
        raise ValueError(f"ebm_unit and heldout_unit must be >= 1, got {ebm_unit}, {heldout_unit}")
    counts: list[list[int | None]] = [[r * ebm_unit for r in ratios], [r * heldout_unit for r in ratios]]
    counts.append([None] * len(digits))
    idx_ebm, idx_held, idx_clf = split_by_class(labels, digits, counts, seed)

    def part(idx: np.ndarray) -> LabelledImages:
        chosen = images[idx]
        pixels = chosen.float() if isinstance(chosen, Tensor) and chosen.is_floating_point() else to_signed_unit(chosen)
        return LabelledImages(pixels, torch.from_numpy(class_indices(labels[idx], digits)), idx)

    return DigitSplit(tuple(digits), tuple(ratios), part(idx_ebm), part(idx_held), part(idx_clf))
