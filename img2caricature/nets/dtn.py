"""The DTN's decoder g (representation -> emoji) and 3-way discriminator D (DCGAN style)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class GeneratorConfig:
    input_dim: int = 128                  # f's representation size
    output_size: int = 64                 # 64 (paper) or 128
    widths: tuple[int, ...] = (256, 128, 64, 32)   # channels at 4x4, 8x8, ...; the last repeats
    # the last x2: another transposed-convolution block, or "subpixel": the image drawn at half
    # size, enlarged, plus a correction drawn from the half-size features (3x3 convolutions
    # there, then a pixel shuffle). "subpixel" moves few bytes at full size (cheap on a CPU),
    # and is exactly "half-size g, bilinearly enlarged" until its last convolution learns.
    last_up: Literal["transposed", "subpixel"] = "transposed"
    detail_width: int = 32                # the subpixel correction's hidden channels (64: 1.8x its cost)


@dataclass
class DiscriminatorConfig:
    input_size: int = 64
    widths: tuple[int, ...] = (32, 64, 128, 256)
    outputs: int = 3                      # the DTN's three classes; 1 for a plain real/fake D


def _upsample_block(c_in: int, c_out: int) -> nn.Sequential:
    """x2 upsampling convolution + BN + ReLU, then the paper's extra 1x1 convolution."""
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True),
        nn.Conv2d(c_out, c_out, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(True),
    )


class Generator(nn.Module):
    """g: (B, d) -> (B, 3, S, S) in [-1, 1]."""

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.cfg = cfg
        n_up = int(math.log2(cfg.output_size // 4))
        if cfg.output_size < 8 or 4 * 2**n_up != cfg.output_size:
            raise ValueError(f"output_size must be a power of two >= 8, got {cfg.output_size}")
        if cfg.last_up not in ("transposed", "subpixel"):
            raise ValueError(f"last_up must be 'transposed' or 'subpixel', got {cfg.last_up!r}")
        n_blocks = n_up - (cfg.last_up == "subpixel")
        # widths per resolution; the last one repeats for extra upsamplings (128x128)
        w = list(cfg.widths) + [cfg.widths[-1]] * max(0, n_blocks + 1 - len(cfg.widths))
        self.project = nn.Sequential(
            nn.ConvTranspose2d(cfg.input_dim, w[0], 4, 1, 0, bias=False), nn.BatchNorm2d(w[0]), nn.ReLU(True))
        blocks = [_upsample_block(w[i], w[i + 1]) for i in range(n_blocks)]
        self.blocks = nn.Sequential(*blocks)
        self.to_rgb = nn.Sequential(nn.Conv2d(w[n_blocks], 3, 3, 1, 1), nn.Tanh())
        # so a g drawing at half this size loads into the layers above unchanged (warm start)
        self.detail = _detail_head(w[n_blocks], cfg.detail_width) if cfg.last_up == "subpixel" else None

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.project(z[:, :, None, None]))
        if self.detail is None:
            return self.to_rgb(h)
        rgb = F.interpolate(self.to_rgb[0](h), scale_factor=2, mode="bilinear", align_corners=False)
        return torch.tanh(rgb + self.detail(h))


def _detail_head(c_in: int, width: int) -> nn.Sequential:
    """Half-size features -> a full-size RGB correction (before the tanh), zero at first."""
    return nn.Sequential(nn.Conv2d(c_in, width, 3, 1, 1), nn.ReLU(True),
                         nn.Conv2d(width, width, 3, 1, 1), nn.ReLU(True),
                         nn.Conv2d(width, 3 * 4, 3, 1, 1), nn.PixelShuffle(2))


# D's three classes (the paper's D1, D2, D3)
FROM_SOURCE, FROM_TARGET, REAL_TARGET = 0, 1, 2


class Discriminator(nn.Module):
    """D: (B, 3, S, S) -> (B, 3) logits over FROM_SOURCE, FROM_TARGET, REAL_TARGET (or `outputs` logits)."""

    def __init__(self, cfg: DiscriminatorConfig):
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        c, size = 3, cfg.input_size
        for i, width in enumerate(cfg.widths):
            layers.append(nn.Conv2d(c, width, 4, 2, 1, bias=i == 0))
            if i > 0:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.LeakyReLU(0.2, True))
            c, size = width, size // 2
        layers += [nn.Conv2d(c, cfg.outputs, size, 1, 0), nn.Flatten()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def init_dcgan(module: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) convolutions, N(1, 0.02) BatchNorm scales; a subpixel
    head's last convolution starts at zero, so g starts as its half-size self enlarged."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    for m in module.modules():
        if isinstance(m, Generator) and m.detail is not None:
            nn.init.zeros_(m.detail[-2].weight)
