"""Colours kept: do people with darker skin (or hair) get emoji with darker skin (or hair)?

The Spearman rank correlation, over the held-out photos, between the CIE L* read from the
photo and from its emoji, for the cheeks and for the band above the forehead (the regions of
nets/colour_code.py, so a model that uses the colour code is measured by the function it was
trained with: this is a check that it draws what it reads, not an independent ruler). Ranks
need no map between photo and Bitmoji colours.
"""

from __future__ import annotations

import numpy as np
import torch

from img2caricature.batches import map_batches
from img2caricature.evaluate import intervals
from img2caricature.evaluate.avatar_metrics import spearman
from img2caricature.nets.colour_code import read_colours

SKIN_L, HAIR_L = 0, 3   # columns of read_colours


def emoji_colours(emoji: torch.Tensor) -> torch.Tensor:
    """read_colours of emoji in [-1, 1]: what colour_agreement compares with the photos'."""
    return map_batches(read_colours, emoji)


def colour_agreement(photo_colours: torch.Tensor, emoji_read: torch.Tensor, people: np.ndarray | None = None,
                     baseline: torch.Tensor | None = None) -> dict:
    """`photo_colours`: read_colours of the photos; `emoji_read`: emoji_colours of the emoji made
    from those photos, in the same order (each read once, whatever compares them). With
    `people` (each photo's person), a 95% interval from resampling the people; with `baseline`
    (another model's emoji_colours of the same photos) too, this model's figure minus the
    baseline's, paired (the same people drawn)."""
    p, e = photo_colours.numpy(), emoji_read.numpy()
    b = baseline.numpy() if baseline is not None else None
    figures: dict = {}
    for name, col in (("skin", SKIN_L), ("hair", HAIR_L)):
        figures[name] = spearman(p[:, col], e[:, col])
        if people is None:
            continue
        figures[f"{name}_between_people"] = between_people_share(e[:, col], people)
        typical = person_mean(p[:, col], people)   # the person's colour, less any one photo's light
        figures[f"{name}_vs_person"] = spearman(typical, e[:, col])
        figures[f"{name}_interval"] = intervals.statistic_interval(
            lambda i, c=col: spearman(p[i, c], e[i, c]), people)
        if b is not None:
            figures[f"{name}_vs_first"] = {
                "difference": figures[name] - spearman(p[:, col], b[:, col]),
                "interval": intervals.statistic_interval(
                    lambda i, c=col: spearman(p[i, c], e[i, c]) - spearman(p[i, c], b[i, c]), people)}
    return figures


def between_people_share(values: np.ndarray, people: np.ndarray) -> float:
    """The share of the variance of `values` (one per photo) that lies between people rather
    than between one person's photos (an intraclass correlation; people with one photo are
    left out). 1: each person's emoji all read alike; near 0: the photo's light and camera
    decide, not the person. nan below two people."""
    values, people = np.asarray(values, dtype=float), np.asarray(people)
    groups = [values[people == p] for p in np.unique(people) if np.sum(people == p) >= 2]
    if len(groups) < 2:
        return float("nan")
    between = float(np.var([g.mean() for g in groups]))
    within = float(np.mean([g.var() for g in groups]))
    return between / (between + within) if between + within > 0 else float("nan")


def person_mean(values: np.ndarray, people: np.ndarray) -> np.ndarray:
    """Each photo's value replaced by the mean over its person's photos: the person's typical
    colour, steadier than one photo's reading, which follows that photo's light."""
    values, people = np.asarray(values, dtype=float), np.asarray(people)
    means = {p: values[people == p].mean() for p in np.unique(people)}
    return np.array([means[p] for p in people])
