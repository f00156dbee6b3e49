"""Batch augmentation for face crops, on tensors: one affine resample per image does the
flip, the small crop/shift/zoom and the resize to the network's input at once."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class AugmentConfig:
    flip: bool = True
    max_shift: float = 0.06       # fraction of the crop
    scale_range: tuple[float, ...] = (0.9, 1.1)
    max_rotation_deg: float = 8.0
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2


def augment(images: torch.Tensor, out_size: int, crop_fraction: float, cfg: AugmentConfig,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """images: float (B, 3, H, W) in [-1, 1] -> augmented (B, 3, out_size, out_size)."""
    b = images.shape[0]
    dev = images.device

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return torch.rand(b, generator=generator).to(dev) * (hi - lo) + lo

    scale = uniform(*cfg.scale_range[:2]) * crop_fraction
    angle = uniform(-cfg.max_rotation_deg, cfg.max_rotation_deg) * (torch.pi / 180)
    flip = torch.where(torch.rand(b, generator=generator).to(dev) < 0.5, -1.0, 1.0) if cfg.flip else torch.ones(b, device=dev)
    tx, ty = uniform(-cfg.max_shift, cfg.max_shift) * 2, uniform(-cfg.max_shift, cfg.max_shift) * 2
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, (b, 3, out_size, out_size), align_corners=False)
    # downsampling by ~2x: average first so the resample does not alias
    factor = images.shape[-1] * crop_fraction / out_size
    if factor >= 2:
        images = F.avg_pool2d(images, int(factor))
    x = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    # colour jitter, per image
    x = (x + 1) / 2
    x = x * uniform(1 - cfg.brightness, 1 + cfg.brightness).view(b, 1, 1, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * uniform(1 - cfg.contrast, 1 + cfg.contrast).view(b, 1, 1, 1) + mean
    gray = x.mean(dim=1, keepdim=True)
    x = (x - gray) * uniform(1 - cfg.saturation, 1 + cfg.saturation).view(b, 1, 1, 1) + gray
    return (x.clamp(0, 1) * 2 - 1)
