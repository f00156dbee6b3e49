"""A learned 2x emoji upscaler: g's 64-px emoji -> 128 px. Bicubic enlargement plus a small
residual CNN's correction (sub-pixel convolution), so an untrained one is bicubic exactly."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class UpscalerConfig:
    width: int = 32       # channels of the residual body
    blocks: int = 4       # residual blocks (two 3x3 convolutions each)


class _Block(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, 1, 1), nn.ReLU(True), nn.Conv2d(c, c, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Upscaler(nn.Module):
    """(B, 3, S, S) in [-1, 1] -> (B, 3, 2S, 2S) in [-1, 1]."""

    def __init__(self, cfg: UpscalerConfig):
        super().__init__()
        self.cfg = cfg
        self.head = nn.Sequential(nn.Conv2d(3, cfg.width, 3, 1, 1), nn.ReLU(True))
        self.body = nn.Sequential(*[_Block(cfg.width) for _ in range(cfg.blocks)])
        self.tail = nn.Sequential(nn.Conv2d(cfg.width, 3 * 4, 3, 1, 1), nn.PixelShuffle(2))
        nn.init.zeros_(self.tail[0].weight)
        nn.init.zeros_(self.tail[0].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
        return (base + self.tail(self.body(self.head(x)))).clamp(-1, 1)


def upscaler_snapshot(model: Upscaler, **extra) -> dict:
    return {"kind": "upscaler", "config": vars(model.cfg).copy(), "state_dict": model.state_dict(), **extra}


def upscaler_from_snapshot(snapshot: dict) -> Upscaler:
    model = Upscaler(UpscalerConfig(**snapshot["config"]))
    model.load_state_dict(snapshot["state_dict"])
    return model.eval().requires_grad_(False)


class Upscaled(nn.Module):
    """A translator whose emoji go through the upscaler: photo crops -> emoji at 2x g's size."""

    def __init__(self, translator: nn.Module, upscaler: Upscaler):
        super().__init__()
        self.translator, self.upscaler = translator, upscaler

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.upscaler(self.translator(faces))


def load_upscaler(path) -> Upscaler:
    """An upscaler.pt (from benchmarks/upscaler.py train); one-line error for any other file."""
    from img2caricature import checkpoint
    from img2caricature.errors import UserError

    snap = checkpoint.load(path)
    if snap.get("kind") != "upscaler":
        raise UserError(f"--upscaler {path} is not an upscaler checkpoint (it holds {snap.get('kind') or 'no kind'})")
    return upscaler_from_snapshot(snap)
