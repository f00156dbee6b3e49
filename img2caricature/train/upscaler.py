"""Training the 2x emoji upscaler on real Bitmoji: each 128-px emoji is area-downscaled to
64 px and given the faults g's emoji have (blur, noise, colour speckle), and the upscaler
learns to give back the clean 128-px one (L1)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from img2caricature import checkpoint, dataset
from img2caricature.batches import downscale, random_batch
from img2caricature.nets.upscaler import Upscaler, UpscalerConfig, upscaler_snapshot
from img2caricature.runtime import log


@dataclass
class UpscalerTrainConfig:
    width: int = 32
    blocks: int = 4
    steps: int = 2000
    batch_size: int = 16
    crop: int = 32             # low-res crop side (64-px emoji are cut to random crops of this side)
    lr: float = 2e-3
    max_blur_sigma: float = 1.0     # Gaussian blur, sigma uniform in [0, max] (pixels at 64 px)
    max_noise: float = 0.04         # Gaussian noise, std uniform in [0, max] ([-1, 1] scale)
    max_speckle: float = 0.02       # share of pixels given a random colour offset, uniform in [0, max]
    speckle_strength: float = 0.4   # std of that offset
    seed: int = 0


def _blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-image Gaussian blur (5x5, separable); sigma 0 leaves the image as it is."""
    r = torch.arange(-2, 3, dtype=x.dtype, device=x.device)
    k = torch.exp(-r[None] ** 2 / (2 * sigma.clamp_min(1e-3)[:, None] ** 2))
    k = k / k.sum(1, keepdim=True)                                           # (B, 5)
    b, c, h, w = x.shape
    y = x.reshape(1, b * c, h, w)
    kc = k.repeat_interleave(c, 0)                                           # (B*C, 5)
    y = F.conv2d(F.pad(y, (2, 2, 0, 0), mode="replicate"), kc[:, None, None, :], groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, 2, 2), mode="replicate"), kc[:, None, :, None], groups=b * c)
    return y.reshape(b, c, h, w)


def degrade(low: torch.Tensor, cfg: UpscalerTrainConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """Blur, noise and colour speckle, each of a random strength per image, on 64-px emoji."""
    b = len(low)
    rand = lambda *shape: torch.rand(*shape, generator=generator)  # noqa: E731
    x = _blur(low, rand(b) * cfg.max_blur_sigma)
    x = x + torch.randn(x.shape, generator=generator) * (rand(b) * cfg.max_noise)[:, None, None, None]
    share = (rand(b) * cfg.max_speckle)[:, None, None, None]
    spots = (rand(b, 1, *x.shape[2:]) < share).float()
    x = x + spots * torch.randn(b, 3, 1, 1, generator=generator) * cfg.speckle_strength * torch.randn(
        b, 1, *x.shape[2:], generator=generator).sign()
    return x.clamp(-1, 1)


def train_upscaler(emoji: Path, out: Path, cfg: UpscalerTrainConfig, exclude: list[int] | None = None,
                   time_limit_s: float | None = None) -> dict:
    """Trains on every record of `emoji` but `exclude` (e.g. the held-out ones); writes out/upscaler.pt."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    count = dataset.info(emoji, "emoji").count
    records = np.setdiff1d(np.arange(count), np.asarray(exclude or [], dtype=np.int64))
    images = dataset.load_images(emoji, "emoji", records)
    high = downscale(images, 128)                     # uint8, 128 px: the target
    low = downscale(high, 64)                         # uint8, 64 px: what g would draw at best
    model = Upscaler(UpscalerConfig(cfg.width, cfg.blocks))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.steps)
    ids, start, losses = torch.arange(len(records)), time.time(), []
    for step in range(cfg.steps):
        idx = random_batch(ids, cfg.batch_size)
        y0, x0 = (int(v) for v in torch.randint(0, 64 - cfg.crop + 1, (2,)))
        lo = dataset.to_float(low[idx, :, y0:y0 + cfg.crop, x0:x0 + cfg.crop])
        hi = dataset.to_float(high[idx, :, 2 * y0:2 * (y0 + cfg.crop), 2 * x0:2 * (x0 + cfg.crop)])
        loss = F.l1_loss(model(degrade(lo, cfg, gen)), hi)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
        if step % 100 == 0:
            log.info(f"upscaler step {step}: L1 {np.mean(losses[-100:]):.4f}")
        if time_limit_s is not None and time.time() - start > time_limit_s:
            break
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"steps": step + 1, "seconds": time.time() - start, "l1_last100": float(np.mean(losses[-100:])),
               "n_emoji": len(records)}
    checkpoint.save_atomic(upscaler_snapshot(model, train=summary, train_config=vars(cfg)), out / "upscaler.pt")
    return summary
