"""Trained translators as one callable: face crops (B, 3, 152, 152) in [-1, 1] -> emoji.

A DTN snapshot carries g and the encoder f it was trained with, so one file is enough.
A CycleGAN snapshot carries its face->emoji generator.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from img2caricature import checkpoint
from img2caricature.config import from_dict
from img2caricature.errors import UserError
from img2caricature.nets.dtn import Generator, GeneratorConfig
from img2caricature.nets.encoder import Encoder, encoder_from_snapshot
from img2caricature.snapshot_checks import check_translator


class DTNTranslator(nn.Module):
    def __init__(self, encoder: Encoder, generator: Generator):
        super().__init__()
        self.encoder, self.generator = encoder, generator

    @property
    def output_size(self) -> int:
        return self.generator.cfg.output_size

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.generator(self.encoder.encode(faces))


def dtn_snapshot(generator: Generator, encoder_snapshot: dict, **extra) -> dict:
    import dataclasses

    return {"kind": "dtn", "generator_config": dataclasses.asdict(generator.cfg),
            "generator": {k: v.detach().cpu() for k, v in generator.state_dict().items()},
            "encoder": encoder_snapshot, **extra}


def _frozen(module: nn.Module) -> nn.Module:
    module.eval()
    module.requires_grad_(False)
    return module


def translator_from_snapshot(snapshot: dict, source: str = "checkpoint") -> nn.Module:
    check_translator(snapshot, source)  # schema and sizes, before anything is built
    kind = snapshot.get("kind")
    if kind == "dtn":
        generator = Generator(from_dict(GeneratorConfig, snapshot["generator_config"], "dtn checkpoint"))
        generator.load_state_dict(snapshot["generator"])
        return _frozen(DTNTranslator(encoder_from_snapshot(snapshot["encoder"]), generator))
    if kind == "cyclegan":
        from img2caricature.nets.cyclegan import translator_from_cyclegan_snapshot

        return _frozen(translator_from_cyclegan_snapshot(snapshot))
    raise UserError(f"checkpoint holds {kind or 'no model kind'}, not a photo->emoji model (dtn or cyclegan)")


def load_translator(path: str | Path, map_location: str | torch.device = "cpu") -> nn.Module:
    return translator_from_snapshot(checkpoint.load(path, map_location), source=str(path))


def upscale(emoji: torch.Tensor, size: int) -> torch.Tensor:
    """Emoji to the size the user asked for: bicubic, clamped to the valid range."""
    if emoji.shape[-1] == size:
        return emoji
    return F.interpolate(emoji, size=size, mode="bicubic", align_corners=False,
                         antialias=emoji.shape[-1] > size).clamp(-1, 1)
