"""Class regions of a low-dimensional space: an RBF support-vector classifier (scikit-learn) fitted to
labelled points, used to label model samples and grid cells."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from sklearn.svm import SVC
from torch import Tensor


@dataclass(frozen=True)
class RegionClassifier:
    """A fitted RBF SVC; calling it labels points (M, d) with class indices (M,) int64."""

    svc: SVC

    @classmethod
    def fit(cls, points: Tensor, labels: Tensor, c: float = 1.0) -> RegionClassifier:
        """Fit on points (N, d) with labels (N,) int64 (kernel width gamma = 1 / (d Var[points]),
        scikit-learn's 'scale'; regularisation C = ``c``).  Deterministic."""
        if points.dim() != 2 or labels.shape != points.shape[:1]:
            raise ValueError(f"need points (N, d) and labels (N,), got {tuple(points.shape)}, {tuple(labels.shape)}")
        if not c > 0:
            raise ValueError(f"the SVC's C must be positive, got {c}")
        return cls(SVC(kernel="rbf", C=c, gamma="scale").fit(points.double().numpy(), labels.numpy()))

    def __call__(self, points: Tensor) -> Tensor:
        return torch.from_numpy(self.svc.predict(points.detach().double().numpy())).to(torch.int64)

    def accuracy(self, points: Tensor, labels: Tensor) -> float:
        """Fraction of points labelled correctly."""
        return float((self(points) == labels).double().mean())
