"""What realism is measured on: every model's emoji and real emoji at one side (128 px by
default, the real Bitmoji's own size and what a user sees), with enough real emoji for the
two-sample test to be read to a few points.

Generated emoji are resized from g's size with the filter `img2car caricature` uses
(bicubic, antialiased when shrinking); real emoji are area-downscaled from the dataset's
152 px, as the trainers meet them. A split holds out few emoji (64 for the shipped model,
2% in a new split file), so when the held-out ones are fewer than the test needs, the real
side is filled with a seeded random choice of the others; the report says how many.
g never draws those from a photo (only L_TID reconstructs emoji), so they stand for the
Bitmoji distribution as well as held-out ones do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from img2caricature import dataset
from img2caricature.batches import downscale
from img2caricature.translate import upscale


@dataclass
class RealSet:
    records: np.ndarray        # record indices into the emoji file: held-out ones first
    n_heldout: int
    n_trained_on: int          # filled from records the models trained on


def real_records(heldout: np.ndarray, n_total: int, want: int, fill: bool, seed: int) -> RealSet:
    """Every held-out record, then (with `fill`, when fewer than `want`) a seeded random
    choice of the other records of the file, up to `want` in all."""
    heldout = np.asarray(heldout, dtype=np.int64)
    missing = max(0, want - len(heldout)) if fill else 0
    others = np.setdiff1d(np.arange(n_total), heldout)
    extra = np.sort(np.random.default_rng(seed).permutation(others)[:missing])
    return RealSet(np.concatenate([heldout, extra]).astype(np.int64), len(heldout), len(extra))


def generated_at(emoji: torch.Tensor, size: int) -> torch.Tensor:
    """A model's emoji (float, [-1, 1]) at `size`: bicubic up, antialiased down, clamped."""
    return upscale(emoji.float(), size)


def real_at(images_u8: torch.Tensor, size: int) -> torch.Tensor:
    """Real emoji (uint8, 152 px) at `size`, float in [-1, 1]: area averaging."""
    return dataset.to_float(downscale(images_u8, size))


def per_side_note(n_generated: int, n_real: int, per_side: int) -> str | None:
    """A warning when the two-sample test's held-out half has fewer than `per_side` a side."""
    tested = min(n_generated, n_real) - min(n_generated, n_real) // 2
    if tested >= per_side:
        return None
    return (f"the two-sample test tests only {tested} emoji a side ({n_generated} generated, {n_real} real; "
            f"realism_per_side = {per_side} asked): its accuracy is about +-{50 / max(1, 2 * tested) ** 0.5:.0f} points")
