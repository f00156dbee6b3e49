"""Untrained tiny snapshots, built in milliseconds, for tests of loading and inference plumbing."""

from __future__ import annotations

from pathlib import Path

import torch

from img2caricature import checkpoint
from img2caricature.nets.cyclegan import ResnetGenerator, ResnetGeneratorConfig, cyclegan_snapshot
from img2caricature.nets.dtn import Generator, GeneratorConfig
from img2caricature.nets.encoder import Encoder, EncoderConfig, encoder_snapshot
from img2caricature.translate import dtn_snapshot


def tiny_encoder_snapshot() -> dict:
    torch.manual_seed(0)
    return encoder_snapshot(Encoder(EncoderConfig(widths=(8, 16), embedding_dim=16, input_size=32, num_classes=3)))


def tiny_dtn_snapshot() -> dict:
    torch.manual_seed(0)
    return dtn_snapshot(Generator(GeneratorConfig(input_dim=16, widths=(32, 16, 8, 8))), tiny_encoder_snapshot())


def tiny_cyclegan_snapshot() -> dict:
    torch.manual_seed(0)
    return cyclegan_snapshot(ResnetGenerator(ResnetGeneratorConfig(size=16, ngf=4, n_down=1, n_blocks=1)))


def save(snapshot: dict, path: Path) -> Path:
    checkpoint.save_atomic(snapshot, path)
    return path
