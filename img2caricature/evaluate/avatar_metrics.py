"""Figures for parametric avatars as plain functions: colour lightness, rank correlation, a
linear gender probe on a face encoder's representation, binary agreement.

Photo colours are read from fixed regions of the 152x152 Haar crop, where the face sits
centred at about 60% of the frame: the skin from the cheeks and nose (below the eyes, above
the mouth), the hair from a band across the top of the head. Both are crude (lighting,
beards, caps, a background where hair is short), but they are the same ruler for every
method compared.
"""

from __future__ import annotations

import numpy as np

from img2caricature.probe import LinearProbe  # noqa: F401  (the gender probe, shared with avatar models)

SKIN_REGION = (0.54, 0.66, 0.35, 0.65)   # rows from, to; columns from, to (fractions of the crop)
HAIR_REGION = (0.02, 0.13, 0.30, 0.70)


def lightness(rgb: np.ndarray) -> np.ndarray:
    """CIE L* (0..100) of uint8 sRGB colours (..., 3)."""
    c = np.asarray(rgb, np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    y = linear @ np.array([0.2126, 0.7152, 0.0722])
    return np.where(y > 216 / 24389, 116 * np.cbrt(y) - 16, y * 24389 / 27)


def hex_lightness(colour: str) -> float:
    """'#EDB98A' -> its L*."""
    colour = colour.lstrip("#")
    return float(lightness(np.array([int(colour[i:i + 2], 16) for i in (0, 2, 4)])))


def region_lightness(crops: np.ndarray, region: tuple[float, float, float, float]) -> np.ndarray:
    """Median L* of a region of each uint8 crop (N, H, W, 3): the median shrugs off nostrils,
    highlights and stray strands."""
    n, h, w, _ = crops.shape
    r0, r1, c0, c1 = region
    patch = crops[:, round(r0 * h):round(r1 * h), round(c0 * w):round(c1 * w)]
    return np.median(lightness(patch).reshape(n, -1), axis=1)


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their mean rank."""
    x = np.asarray(x, np.float64)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(1, len(x) + 1)
    for value in np.unique(x):
        tied = x == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (ties averaged); nan when either side is constant."""
    ra, rb = _ranks(a), _ranks(b)
    if len(ra) < 3 or ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def balanced_agreement(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Binary agreement where positives are rare: the mean of the hit rates on each side
    (0.5 = no better than chance) and the raw counts."""
    truth, predicted = np.asarray(truth, bool), np.asarray(predicted, bool)
    tpr = float(predicted[truth].mean()) if truth.any() else float("nan")
    tnr = float((~predicted[~truth]).mean()) if (~truth).any() else float("nan")
    return {"balanced": (tpr + tnr) / 2, "hit_rate": tpr, "true_negative_rate": tnr,
            "positives": int(truth.sum()), "predicted_positives": int(predicted.sum()), "n": len(truth)}


def agreement_with_chance(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Share of items where two binary predictions agree, and what independence would give."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    p, q = a.mean(), b.mean()
    return {"agreement": float((a == b).mean()), "chance": float(p * q + (1 - p) * (1 - q)),
            "photo_positive_share": float(p), "avatar_positive_share": float(q)}
