"""Colours kept: do people with darker skin (or hair) get emoji with darker skin (or hair)?

The Spearman rank correlation, over the held-out photos, between the CIE L* read from the
photo and from its emoji, for the cheeks and for the band above the forehead (the regions of
nets/colour_code.py, so a model that uses the colour code is measured by the function it was
trained with: this is a check that it draws what it reads, not an independent ruler). Ranks
need no map between photo and Bitmoji colours.
"""

from __future__ import annotations

import torch

from img2caricature.batches import map_batches
from img2caricature.evaluate.avatar_metrics import spearman
from img2caricature.nets.colour_code import read_colours

SKIN_L, HAIR_L = 0, 3   # columns of read_colours


def colour_agreement(photo_colours: torch.Tensor, emoji: torch.Tensor) -> dict[str, float]:
    """`photo_colours`: read_colours of the photos (read once for every model); emoji in
    [-1, 1], made from those photos in the same order."""
    p, e = photo_colours.numpy(), map_batches(read_colours, emoji).numpy()
    return {"skin": spearman(p[:, SKIN_L], e[:, SKIN_L]), "hair": spearman(p[:, HAIR_L], e[:, HAIR_L])}
