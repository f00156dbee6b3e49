"""Tensors in batches, for training and evaluation alike: random batch indices, a function
applied over chunks, uint8 images downscaled as the networks meet them."""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def random_batch(indices: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Indices of a random batch (global torch RNG, so a resumed run draws the same batches)."""
    return indices[torch.randint(len(indices), (batch_size,))]


@torch.no_grad()
def map_batches(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int = 256,
                device: torch.device | None = None) -> torch.Tensor:
    """Apply `fn` to `x` in chunks (moving each to `device`), results concatenated on the CPU."""
    out = []
    for start in range(0, len(x), batch_size):
        chunk = x[start:start + batch_size]
        out.append(fn(chunk.to(device) if device is not None else chunk).float().cpu())
    return torch.cat(out) if out else torch.empty(0)


def downscale(images_u8: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 images to size x size by area averaging (how emoji meet a 64x64 generator)."""
    from img2caricature import dataset

    return dataset.to_uint8(F.interpolate(dataset.to_float(images_u8), size=size, mode="area"))
