"""The colour code: skin and hair colour read from an image's pixels, beside f(x) as g's input.

A face-identity f is trained to ignore lighting, and with it colour: from dlib's descriptor a
ridge regression predicts a photo's skin lightness with R^2 0.13 (hair lightness 0.09), so a
DTN over it draws light skin for everyone. The code is six numbers that say what f does not:
the robust mean CIE Lab of the cheeks and of the band above the forehead (the regions of
avatar/appearance.py, fractions of the crop, so any size works). Photos and Bitmoji do not
share a colour scale (median skin L* 64 in the training photos, 79 in the Bitmoji), so a
photo's code is first mapped onto the emoji's by per-channel quantile matching, fitted once on
the training sets. Both are then standardised by the emoji's statistics. It is differentiable,
so the trainer can ask g's emoji to carry the photo's colours (L_COLOUR).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from img2caricature.avatar.appearance import HAIR_REGION, SKIN_REGION

Domain = Literal["photo", "emoji"]
REGIONS = (SKIN_REGION, HAIR_REGION)
DIM = 3 * len(REGIONS)
ROBUST_SIGMA = 12.0   # Lab distance from the region's median at which a pixel's weight falls to 0.61

_RGB_TO_XYZ = torch.tensor([[0.4124564, 0.3575761, 0.1804375],
                            [0.2126729, 0.7151522, 0.0721750],
                            [0.0193339, 0.1191920, 0.9503041]])
_WHITE = torch.tensor([0.95047, 1.0, 1.08883])


@dataclass
class ColourCodeConfig:
    knots: int = 21   # quantiles per channel in the photo -> emoji map


def lab(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] (B, 3, H, W) -> CIE Lab (D65, L* 0..100), as OpenCV computes it."""
    rgb = ((images.float() + 1) / 2).clamp(0, 1)
    linear = torch.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055).clamp_min(1e-6) ** 2.4)
    xyz = torch.einsum("ij,bjhw->bihw", _RGB_TO_XYZ.to(rgb.device), linear) / _WHITE.to(rgb.device)[:, None, None]
    f = torch.where(xyz > 0.008856, xyz.clamp_min(1e-6) ** (1 / 3), 7.787 * xyz + 16 / 116)
    return torch.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], 1)


def region_colour(images: torch.Tensor, region: tuple[float, float, float, float]) -> torch.Tensor:
    """The robust mean Lab of a region of images in [-1, 1] (B, 3): pixels far from the region's
    median (an open mouth in the cheeks, a wall beside the hair) count less. The weights are
    not differentiated."""
    h, w = images.shape[-2:]
    r0, r1, c0, c1 = region
    px = lab(images[:, :, round(r0 * h):max(round(r1 * h), round(r0 * h) + 1),
                    round(c0 * w):max(round(c1 * w), round(c0 * w) + 1)]).flatten(2)   # (B, 3, N)
    with torch.no_grad():
        median = px.median(dim=2, keepdim=True).values
        weight = torch.exp(-(px - median).pow(2).sum(1, keepdim=True) / (2 * ROBUST_SIGMA**2))
    return (px * weight).sum(2) / weight.sum(2)


def read_colours(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [-1, 1] -> (B, 6): skin Lab, hair Lab."""
    return torch.cat([region_colour(images, region) for region in REGIONS], 1)


def interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """np.interp per channel: x (B, C), xp and fp (K, C) increasing; clamped at the ends."""
    out = []
    for c in range(x.shape[1]):
        xs, xk, fk = x[:, c].contiguous(), xp[:, c].contiguous(), fp[:, c]
        i = torch.searchsorted(xk, xs).clamp(1, len(xk) - 1)
        t = ((xs - xk[i - 1]) / (xk[i] - xk[i - 1])).clamp(0, 1)
        out.append(fk[i - 1] + t * (fk[i] - fk[i - 1]))
    return torch.stack(out, 1)


def _quantiles(codes: torch.Tensor, knots: int) -> torch.Tensor:
    q = torch.quantile(codes.double(), torch.linspace(0, 1, knots, dtype=torch.double), dim=0)
    # strictly increasing, so the map is a function (a flat run of equal quantiles would divide by 0)
    return (torch.cummax(q, 0).values + 1e-4 * torch.arange(knots, dtype=torch.double)[:, None]).float()


class ColourCode(nn.Module):
    """`forward(images, domain)` -> (B, 6) standardised code; `fit` first (its buffers are saved)."""

    dim = DIM

    def __init__(self, cfg: ColourCodeConfig = ColourCodeConfig()):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("photo_quantiles", torch.linspace(0, 1, cfg.knots)[:, None].repeat(1, DIM))
        self.register_buffer("emoji_quantiles", torch.linspace(0, 1, cfg.knots)[:, None].repeat(1, DIM))
        self.register_buffer("mean", torch.zeros(DIM))
        self.register_buffer("std", torch.ones(DIM))

    @torch.no_grad()
    def fit(self, photo_colours: torch.Tensor, emoji_colours: torch.Tensor) -> "ColourCode":
        """From read_colours of the training photos and emoji."""
        self.photo_quantiles.copy_(_quantiles(photo_colours, self.cfg.knots))
        self.emoji_quantiles.copy_(_quantiles(emoji_colours, self.cfg.knots))
        self.mean.copy_(emoji_colours.float().mean(0))
        self.std.copy_(emoji_colours.float().std(0).clamp_min(1.0))
        return self

    def standardise(self, colours: torch.Tensor, domain: Domain) -> torch.Tensor:
        if domain == "photo":
            colours = interp(colours, self.photo_quantiles, self.emoji_quantiles)
        return (colours - self.mean) / self.std

    def forward(self, images: torch.Tensor, domain: Domain) -> torch.Tensor:
        return self.standardise(read_colours(images), domain)
