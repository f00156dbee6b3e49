"""What a photo's pixels say that f does not: skin tone and hair colour.

A face-identity f is trained to ignore lighting, and so it mostly ignores colour too: an
avatar model that reads traits from f alone gets skin and hair wrong (tried: Spearman 0.37
for skin, 0.16 for hair on unseen people). These are read here from fixed regions of the
face crop, framed as `preprocess` frames it (the face fills the crop, eyes at about 40% of
its height), and mapped onto the avatar engine's colours:

- skin: the median CIE L* of the cheeks and nose, cut into the engine's five natural skin
  tones at lightness bands chosen by eye on training photos sorted by it;
- hair: the median Lab colour of the band above the forehead, keeping only pixels that
  could be hair (not the skin, not a crop's black padding, no blue or green); its lightness is taken relative to
  the skin's, which cancels much of the photo's exposure; the hue splits red / auburn
  from brown, the chroma grey from blonde.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SKIN_REGION = (0.48, 0.68, 0.30, 0.70)   # rows from, to; columns from, to (fractions of the crop)
HAIR_REGION = (0.00, 0.16, 0.28, 0.72)
SKIN_DISTANCE = 14.0    # Lab distance within which a pixel counts as the face's skin

# skin L* below each bound -> that tone (the engine's "tanned" and "yellow" are cartoon colours)
SKIN_BANDS = ((32.0, "black"), (42.0, "dark_brown"), (54.0, "brown"), (76.0, "light"), (float("inf"), "pale"))
MIN_HAIR_PIXELS = 20    # fewer hair-like pixels than this: no hair to read


@dataclass
class Appearance:
    skin_lightness: float
    skin_color: str
    hair_color: str | None     # None: no hair to read (the model's own choice stands)


def lab(rgb_u8: np.ndarray) -> np.ndarray:
    """CIE Lab (L* 0..100) of uint8 sRGB pixels (..., 3)."""
    flat = np.asarray(rgb_u8, np.float32).reshape(-1, 1, 3) / 255.0
    return cv2.cvtColor(flat, cv2.COLOR_RGB2LAB).reshape(*np.shape(rgb_u8)[:-1], 3)


def _region(crop: np.ndarray, region: tuple[float, float, float, float]) -> np.ndarray:
    h, w = crop.shape[:2]
    r0, r1, c0, c1 = region
    return crop[round(r0 * h):round(r1 * h), round(c0 * w):round(c1 * w)].reshape(-1, 3)


def skin_tone(lightness: float) -> str:
    return next(name for bound, name in SKIN_BANDS if lightness < bound)


def hair_tone(hair_lab: np.ndarray, skin_l: float) -> str | None:
    """A median hair colour (Lab) -> the engine's hair colour, its lightness relative to the skin's."""
    l, a, b = (float(v) for v in hair_lab)
    relative = l / max(skin_l, 1.0)
    chroma, hue = float(np.hypot(a, b)), float(np.degrees(np.arctan2(b, a)))
    if chroma < 10 and l > 45:   # grey hair, or a pale wall behind short hair: grey only when not too light
        return "silver_gray" if l < 75 else None
    if relative < 0.30:
        return "black"
    if relative < 0.50:
        return "auburn" if chroma > 22 and hue < 55 else "brown_dark"
    if relative < 0.75:
        return "red" if chroma > 35 and hue < 50 else "auburn" if chroma > 24 and hue < 55 else "brown"
    if chroma < 12:
        return None
    return "blonde" if relative < 0.95 else "blonde_golden"


def hair_hued(px: np.ndarray) -> np.ndarray:
    """Pixels a hair colour could have: near grey, or a warm hue (red through yellow); blue,
    green and magenta are background, clothing or a hat."""
    chroma = np.hypot(px[..., 1], px[..., 2])
    hue = np.degrees(np.arctan2(px[..., 2], px[..., 1]))
    return (chroma < 10) | ((hue > 0) & (hue < 100))


def hair_sample(crop: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """Lab pixels of the band above the forehead that could be hair: not the skin, not a
    crop's black padding, not a hue no hair has."""
    band = _region(crop, HAIR_REGION)
    px = lab(band)
    keep = (np.linalg.norm(px - skin, axis=1) >= SKIN_DISTANCE) & (band.max(axis=1) >= 8) & hair_hued(px)
    return px[keep]


def read_appearance(crop: np.ndarray) -> Appearance:
    """Skin and hair of one uint8 RGB face crop (H, W, 3)."""
    skin = np.median(lab(_region(crop, SKIN_REGION)), axis=0)
    hair = hair_sample(crop, skin)
    hair_color = hair_tone(np.median(hair, axis=0), float(skin[0])) if len(hair) >= MIN_HAIR_PIXELS else None
    return Appearance(float(skin[0]), skin_tone(float(skin[0])), hair_color)
