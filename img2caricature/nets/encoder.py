"""The face-identity encoder f: `encode(images) -> (B, d)`, the layer before the softmax.

Each encoder bundles its own input preparation (centre crop, resize), so every caller,
the DTN included, feeds it images in the project's range ([-1, 1], any size) and gets
the same representation. Two architectures share the interface: a compact CNN that
trains on a CPU in minutes, and facenet-pytorch's InceptionResnetV1 for GPU users.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class EncoderConfig:
    arch: Literal["compact", "inception-resnet-v1"] = "compact"
    num_classes: int = 0                 # identities seen in training (set from the data)
    input_size: int = 64                 # side of the square the network sees
    crop_fraction: float = 0.8           # centre part of the 152x152 crop kept: the face, less background
    widths: tuple[int, ...] = (32, 64, 128, 256)
    embedding_dim: int = 128
    dropout: float = 0.2
    pretrained: str = ""                 # inception-resnet-v1 only: "vggface2" or "casia-webface"
    classifier: Literal["linear", "cosine"] = "linear"   # cosine: softmax over scaled cosines (NormFace)
    cosine_scale: float = 16.0


def conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class ResidualBlock(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn_relu(c, c), nn.Conv2d(c, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


def compact_backbone(cfg: EncoderConfig) -> nn.Sequential:
    """Strided conv stages with one residual block each, global pooling, embedding + BN."""
    layers: list[nn.Module] = [conv_bn_relu(3, cfg.widths[0])]
    c = cfg.widths[0]
    for width in cfg.widths[1:]:
        layers += [conv_bn_relu(c, width, stride=2), ResidualBlock(width)]
        c = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(cfg.dropout),
               nn.Linear(c, cfg.embedding_dim, bias=False), nn.BatchNorm1d(cfg.embedding_dim)]
    return nn.Sequential(*layers)


class CosineClassifier(nn.Module):
    """Logits = scale * cos(embedding, class centre). The softmax then ranks identities by the
    angle alone, the same measure verification uses on people it never saw."""

    def __init__(self, dim: int, num_classes: int, scale: float):
        super().__init__()
        self.scale = scale
        self.weight = nn.Parameter(torch.randn(num_classes, dim) * 0.01)

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        return self.scale * F.linear(F.normalize(embedding, dim=1), F.normalize(self.weight, dim=1))


def classifier_head(cfg: EncoderConfig, dim: int) -> nn.Module:
    k = max(cfg.num_classes, 1)
    return CosineClassifier(dim, k, cfg.cosine_scale) if cfg.classifier == "cosine" else nn.Linear(dim, k)


class Encoder(nn.Module):
    """f. `forward` gives identity logits (for softmax training); `encode` the representation."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.arch == "compact":
            self.backbone = compact_backbone(cfg)
            self.classifier = classifier_head(cfg, cfg.embedding_dim)
        else:
            from facenet_pytorch import InceptionResnetV1

            net = InceptionResnetV1(classify=True, num_classes=max(cfg.num_classes, 1))
            self.classifier = net.logits if cfg.classifier == "linear" else classifier_head(cfg, 512)
            net.logits = nn.Identity()
            net.classify = True  # forward() then returns last_bn's output: the pre-softmax layer
            self.backbone = net

    @property
    def dim(self) -> int:
        return self.cfg.embedding_dim if self.cfg.arch == "compact" else 512

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1], any size -> the network's input (centre crop, resize)."""
        size = images.shape[-1]
        keep = round(size * self.cfg.crop_fraction)
        if keep != size:
            start = (size - keep) // 2
            images = images[..., start:start + keep, start:start + keep]
        if images.shape[-1] != self.cfg.input_size:
            # float32: antialiased resizing has no bfloat16 kernel (g's output under CPU autocast)
            images = F.interpolate(images.float(), size=self.cfg.input_size, mode="bilinear",
                                   align_corners=False, antialias=images.shape[-1] > self.cfg.input_size)
        return images

    def embed(self, prepared: torch.Tensor) -> torch.Tensor:
        """The representation of already-prepared input (training feeds augmented crops here)."""
        return self.backbone(prepared)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.embed(self.prepare(images))

    def forward(self, prepared: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(prepared))


def build_encoder(cfg: EncoderConfig) -> Encoder:
    return Encoder(cfg)


def encoder_snapshot(encoder: Encoder, **extra) -> dict:
    """What `encoder.pt` holds: weights, the config that rebuilds the network, plain extras."""
    import dataclasses

    return {"kind": "encoder", "config": dataclasses.asdict(encoder.cfg),
            "state_dict": {k: v.detach().cpu() for k, v in encoder.state_dict().items()}, **extra}


def encoder_from_snapshot(snapshot: dict, source: str = "encoder checkpoint") -> Encoder:
    """A frozen encoder in eval mode: f is never trained after pretraining."""
    from img2caricature.config import from_dict
    from img2caricature.snapshot_checks import check_encoder

    check_encoder(snapshot, source)  # schema and sizes, before anything is built

    cfg = from_dict(EncoderConfig, snapshot["config"], source="encoder checkpoint")
    if cfg.arch != "compact":
        cfg.pretrained = ""  # the weights come from the snapshot, never from a download
    encoder = Encoder(cfg)
    encoder.load_state_dict(snapshot["state_dict"])
    encoder.eval()
    encoder.requires_grad_(False)
    return encoder


def load_encoder(path, map_location="cpu") -> Encoder:
    from img2caricature import checkpoint
    from img2caricature.errors import UserError

    snapshot = checkpoint.load(path, map_location)
    if snapshot.get("kind") != "encoder":
        raise UserError(f"{path} is not an encoder checkpoint (it holds {snapshot.get('kind', 'something else')})")
    return encoder_from_snapshot(snapshot, source=str(path))
