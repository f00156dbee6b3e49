"""How different the emoji of different people are: a collapsed generator scores ~0."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _mean_off_diagonal(d: torch.Tensor) -> float:
    n = len(d)
    return float((d.sum() - d.diagonal().sum()) / (n * (n - 1))) if n > 1 else float("nan")


def pixel_diversity(images: torch.Tensor) -> float:
    """Mean over pairs of the mean absolute pixel difference, on a 0..1 intensity scale."""
    flat = images.flatten(1).double()
    return _mean_off_diagonal(torch.cdist(flat, flat, p=1) / flat.shape[1] / 2)


def feature_diversity(features: torch.Tensor) -> float:
    """Mean over pairs of 1 - cosine similarity."""
    e = F.normalize(features.double(), dim=1)
    return _mean_off_diagonal(1 - e @ e.T)
