"""CycleGAN's networks (Zhu et al. 2017): a ResNet generator and a PatchGAN discriminator,
both with instance normalisation, and the snapshot that makes the face->emoji generator
usable as a translator (`img2car caricature --model cyclegan.pt`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from img2caricature.config import from_dict


@dataclass
class ResnetGeneratorConfig:
    size: int = 64            # side of the images it is trained on (a fully convolutional net runs at any size)
    ngf: int = 32             # channels of the first layer; doubled at each downsampling
    n_down: int = 2           # stride-2 convolutions before the residual blocks (64 -> 16 with 2)
    n_blocks: int = 6         # residual blocks at the lowest resolution (the paper: 6 at 128, 9 at 256)


@dataclass
class PatchDiscriminatorConfig:
    ndf: int = 64
    n_layers: int = 3         # stride-2 layers: 3 gives the paper's 70x70 receptive field


def _norm(c: int) -> nn.Module:
    return nn.InstanceNorm2d(c)  # no affine, no running stats: as in the paper's code


class ResnetBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), _norm(c), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), _norm(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """(B, 3, S, S) in [-1, 1] -> (B, 3, S, S) in [-1, 1]: c7s1-ngf, downsampling, residual
    blocks, transposed-convolution upsampling, c7s1-3, tanh."""

    def __init__(self, cfg: ResnetGeneratorConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.size % 2 ** cfg.n_down:
            raise ValueError(f"size {cfg.size} is not divisible by 2**n_down = {2 ** cfg.n_down}")
        c = cfg.ngf
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(3, c, 7), _norm(c), nn.ReLU(True)]
        for _ in range(cfg.n_down):
            layers += [nn.Conv2d(c, 2 * c, 3, 2, 1), _norm(2 * c), nn.ReLU(True)]
            c *= 2
        layers += [ResnetBlock(c) for _ in range(cfg.n_blocks)]
        for _ in range(cfg.n_down):
            layers += [nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1), _norm(c // 2), nn.ReLU(True)]
            c //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(c, 3, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PatchDiscriminator(nn.Module):
    """(B, 3, S, S) -> (B, 1, s, s): one real/fake score per overlapping patch."""

    def __init__(self, cfg: PatchDiscriminatorConfig):
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = [nn.Conv2d(3, cfg.ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        c = cfg.ndf
        for i in range(1, cfg.n_layers + 1):
            out = cfg.ndf * min(2 ** i, 8)
            stride = 2 if i < cfg.n_layers else 1  # the last one keeps the resolution, as in the paper
            layers += [nn.Conv2d(c, out, 4, stride, 1), _norm(out), nn.LeakyReLU(0.2, True)]
            c = out
        layers.append(nn.Conv2d(c, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CycleGANTranslator(nn.Module):
    """Face crops (B, 3, 152, 152) -> emoji at the generator's training size."""

    def __init__(self, generator: ResnetGenerator):
        super().__init__()
        self.generator = generator

    @property
    def output_size(self) -> int:
        return self.generator.cfg.size

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        size = self.output_size
        if faces.shape[-1] != size:
            faces = F.interpolate(faces, size=size, mode="bilinear", align_corners=False,
                                  antialias=faces.shape[-1] > size)
        return self.generator(faces)


def cyclegan_snapshot(face_to_emoji: ResnetGenerator, split: dict | None = None, **extra) -> dict:
    """What `cyclegan.pt` holds (registry.py's schema): the face->emoji generator, its config,
    plain extras (step, data paths, heldout_identities and heldout_emoji for `img2car evaluate`)."""
    from img2caricature import registry

    return registry.snapshot("cyclegan", {"generator": face_to_emoji}, split=split, **extra)


def translator_from_cyclegan_snapshot(snapshot: dict) -> CycleGANTranslator:
    from img2caricature import registry

    snapshot = registry.upgrade(snapshot)
    generator = ResnetGenerator(from_dict(ResnetGeneratorConfig, snapshot["config"]["generator"],
                                          "cyclegan checkpoint"))
    generator.load_state_dict(snapshot["state_dicts"]["generator"])
    return CycleGANTranslator(generator)
