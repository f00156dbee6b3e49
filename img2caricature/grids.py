"""Sample grids: pairs (input | output) side by side, saved as one PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.utils import make_grid, save_image


def pairs_grid(lefts: torch.Tensor, rights: torch.Tensor | list[torch.Tensor], pairs_per_row: int = 4,
               size: int | None = None) -> torch.Tensor:
    """Images in [-1, 1]: each row holds `pairs_per_row` groups (left | right | ...)."""
    columns = [lefts] + (list(rights) if isinstance(rights, (list, tuple)) else [rights])
    size = size or max(c.shape[-1] for c in columns)
    columns = [F.interpolate(c.float().cpu(), size=size, mode="bilinear", antialias=True, align_corners=False)
               if c.shape[-1] != size else c.float().cpu() for c in columns]
    tiles = torch.stack(columns, 1).flatten(0, 1)  # l0 r0 l1 r1 ...
    return make_grid(tiles, nrow=pairs_per_row * len(columns), padding=2, normalize=True, value_range=(-1, 1),
                     pad_value=1.0)


def save_pairs(path: Path, lefts: torch.Tensor, rights, pairs_per_row: int = 4, size: int | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(pairs_grid(lefts, rights, pairs_per_row, size), path)
    return path


def first_per_identity(indices: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Up to n records of different people, for sample grids."""
    seen, chosen = set(), []
    for i in indices:
        if labels[i] not in seen:
            seen.add(labels[i])
            chosen.append(i)
    return np.array(chosen[:n] if len(chosen) >= n else list(chosen) + list(indices[:n - len(chosen)]), dtype=np.int64)
