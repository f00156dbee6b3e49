"""The parametric avatar model's networks (after Wolf, Taigman & Polyak, ICCV 2017):

- the imitator c: one-hot parameter codes -> the avatar engine's render, differentiable
  (the DTN's DCGAN decoder, fed codes instead of f's representation); or, in "features"
  mode, codes -> f(render) directly: f-constancy only ever looks at f(c(p)), and an MLP
  that imitates f o render costs a thousandth of drawing pixels and running f on them;
- the parameter encoder e: f(photo) -> logits over every trait's values;
- `relax`: logits -> codes c can take, with gradients (softmax, or one-hot forward with
  the softmax's gradient, optionally with Gumbel noise).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from img2caricature.nets.dtn import Generator, GeneratorConfig

Relaxation = Literal["softmax", "straight-through", "gumbel-straight-through"]
ImitatorKind = Literal["pixels", "features"]


@dataclass
class ImitatorConfig:
    kind: ImitatorKind = "pixels"
    code_dim: int = 0                    # set from the parameter space
    output_size: int = 64                # pixels: the render's side
    widths: tuple[int, ...] = (128, 64, 32, 16)   # pixels: channels from 4x4 up; features: hidden widths
    feature_dim: int = 128               # features: f's representation size


def mlp(dims: list[int], out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(dims, dims[1:]):
        layers += [nn.Linear(a, b), nn.LeakyReLU(0.2, True)]
    return nn.Sequential(*layers, nn.Linear(dims[-1], out))


def build_imitator(cfg: ImitatorConfig) -> nn.Module:
    """c: (B, code_dim) codes -> (B, 3, S, S) renders in [-1, 1], or (B, feature_dim) f(render)."""
    if cfg.kind == "features":
        return mlp([cfg.code_dim, *cfg.widths], cfg.feature_dim)
    return Generator(GeneratorConfig(input_dim=cfg.code_dim, output_size=cfg.output_size, widths=cfg.widths))


def build_discriminator(cfg: ImitatorConfig, widths: tuple[int, ...]) -> nn.Module:
    """D on the imitator's output: a DCGAN critic on pixels, an MLP on features; one logit."""
    from img2caricature.nets.dtn import Discriminator, DiscriminatorConfig, init_dcgan

    if cfg.kind == "features":
        return mlp([cfg.feature_dim, *widths], 1)
    D = Discriminator(DiscriminatorConfig(cfg.output_size, widths, outputs=1))
    init_dcgan(D)
    return D


@dataclass
class ParamEncoderConfig:
    input_dim: int = 128                 # f's representation size
    sizes: list[int] = field(default_factory=list)   # values per trait, set from the parameter space
    hidden: tuple[int, ...] = (256, 256)
    dropout: float = 0.1


class ParamEncoder(nn.Module):
    """e: (B, d) f-representations -> one (B, n_i) logit tensor per trait."""

    def __init__(self, cfg: ParamEncoderConfig):
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = [nn.LayerNorm(cfg.input_dim)]  # f's scale differs between photos and renders
        c = cfg.input_dim
        for width in cfg.hidden:
            layers += [nn.Linear(c, width), nn.ReLU(True), nn.Dropout(cfg.dropout)]
            c = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c, sum(cfg.sizes))

    def forward(self, features: torch.Tensor) -> list[torch.Tensor]:
        return list(self.head(self.body(features.float())).split(self.cfg.sizes, dim=1))


def relax(logits: torch.Tensor, how: Relaxation, tau: float = 1.0) -> torch.Tensor:
    """A code for the imitator that gradients flow through. Straight-through codes are exact
    one-hots forward (what c was trained on) with the softmax's gradient backward."""
    if how == "softmax":
        return F.softmax(logits / tau, dim=1)
    if how == "gumbel-straight-through":
        return F.gumbel_softmax(logits.float(), tau=tau, hard=True)
    soft = F.softmax(logits.float() / tau, dim=1)
    hard = F.one_hot(soft.argmax(1), soft.shape[1]).to(soft.dtype)
    return hard + soft - soft.detach()


def parameter_loss(logits: list[torch.Tensor], indices: torch.Tensor) -> torch.Tensor:
    """Mean over traits of the cross-entropy of e's logits against known value indices (B, T)."""
    return torch.stack([F.cross_entropy(l.float(), indices[:, i].long()) for i, l in enumerate(logits)]).mean()
