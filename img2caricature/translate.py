"""Trained translators as one callable: face crops (B, 3, 152, 152) in [-1, 1] -> emoji.

A DTN snapshot carries g and the encoder f it was trained with, so one file is enough.
A CycleGAN snapshot carries its face->emoji generator. Which kind rebuilds how is
registry.TRANSLATORS; the snapshot layout is registry.py's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from img2caricature import registry
from img2caricature.config import from_dict
from img2caricature.nets.colour_code import ColourCode, ColourCodeConfig, Domain
from img2caricature.nets.dtn import Generator, GeneratorConfig


def g_input(encoder: nn.Module, colour: ColourCode | None, images: torch.Tensor, domain: Domain,
            encoder2: nn.Module | None = None) -> torch.Tensor:
    """What g draws from: f(x), then the colour code when the model has one, then f2(x) when
    its g reads the second f too."""
    z = encoder.encode(images)
    if colour is not None:
        z = torch.cat([z, colour(images, domain).to(z.dtype)], 1)
    if encoder2 is not None:
        z = torch.cat([z, encoder2.encode(images).to(z.dtype)], 1)
    return z


class DTNTranslator(nn.Module):
    def __init__(self, encoder: nn.Module, generator: Generator, colour: ColourCode | None = None,
                 encoder2: nn.Module | None = None):
        super().__init__()
        self.encoder, self.generator, self.colour, self.encoder2 = encoder, generator, colour, encoder2

    @property
    def output_size(self) -> int:
        return self.generator.cfg.output_size

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.generator(g_input(self.encoder, self.colour, faces, "photo", self.encoder2))


def dtn_snapshot(generator: Generator, encoder_snapshot: dict, split: dict | None = None,
                 colour: ColourCode | None = None, encoder2_snapshot: dict | None = None, **extra: Any) -> dict:
    """What `dtn.pt` holds: g, its colour code if any, and f's own snapshot (so one file makes
    emoji), and f2's when g reads it too."""
    nets = {"generator": generator} | ({"colour": colour} if colour is not None else {})
    second = {"encoder2": encoder2_snapshot} if encoder2_snapshot is not None else {}
    return registry.snapshot("dtn", nets, split=split, encoder=encoder_snapshot, **second, **extra)


def dtn_translator(snapshot: dict) -> DTNTranslator:
    snapshot = registry.upgrade(snapshot)
    generator = Generator(from_dict(GeneratorConfig, snapshot["config"]["generator"], "dtn checkpoint"))
    generator.load_state_dict(snapshot["state_dicts"]["generator"])
    encoder2 = registry.encoder_from_snapshot(snapshot["encoder2"]) if "encoder2" in snapshot else None
    return DTNTranslator(registry.encoder_from_snapshot(snapshot["encoder"]), generator, snapshot_colour(snapshot),
                         encoder2)


def snapshot_colour(snapshot: dict) -> ColourCode | None:
    """A DTN snapshot's colour code; None when its g reads f(x) alone."""
    if "colour" not in snapshot["state_dicts"]:
        return None
    colour = ColourCode(from_dict(ColourCodeConfig, snapshot["config"]["colour"], "dtn checkpoint"))
    colour.load_state_dict(snapshot["state_dicts"]["colour"])
    return colour


def translator_from_snapshot(snapshot: dict) -> nn.Module:
    return registry.translator_from_snapshot(snapshot)


def load_translator(path: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    return translator_from_snapshot(registry.load_snapshot(path, map_location))


def upscale(emoji: torch.Tensor, size: int) -> torch.Tensor:
    """Emoji to the size the user asked for: bicubic, clamped to the valid range."""
    if emoji.shape[-1] == size:
        return emoji
    return F.interpolate(emoji, size=size, mode="bicubic", align_corners=False,
                         antialias=emoji.shape[-1] > size).clamp(-1, 1)
