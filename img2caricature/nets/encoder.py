"""The face-identity encoder f: `encode(images) -> (B, d)`, the layer before the softmax.

Each encoder bundles its own input preparation (centre crop, resize), so every caller,
the DTN included, feeds it images in the project's range ([-1, 1], any size) and gets
the same representation. Three architectures share the interface (BACKBONES): a compact
CNN that trains on a CPU in minutes, facenet-pytorch's InceptionResnetV1 for GPU users, and
dlib's pretrained face-recognition ResNet (frozen; `nets/dlib_resnet.py`), which needs no
training. Encoders usable by name alone (dlib's) are found in img2caricature.registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class EncoderConfig:
    arch: str = "compact"                # a key of BACKBONES: compact, inception-resnet-v1, dlib-resnet-v1
    num_classes: int = 0                 # identities seen in training (set from the data)
    input_size: int = 64                 # side of the square the network sees
    crop_fraction: float = 0.8           # centre part of the 152x152 crop kept: the face, less background
    crop_shift: float = 0.0              # the kept square's centre moves down by this share of the side
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


def inception_backbone(cfg: EncoderConfig) -> "Backbone":
    """facenet-pytorch's InceptionResnetV1 up to its last BN (the 512-d pre-softmax layer),
    from its published weights when `cfg.pretrained` names them (a download)."""
    from facenet_pytorch import InceptionResnetV1

    from img2caricature.errors import UserError
    from img2caricature.runtime import log

    net = InceptionResnetV1(classify=False)
    if cfg.pretrained:
        try:
            published = InceptionResnetV1(pretrained=cfg.pretrained)
        except Exception as err:
            raise UserError(f"could not download the {cfg.pretrained} weights ({type(err).__name__}); "
                            "train without --set pretrained=... or fetch them on a machine with network") from None
        own = net.state_dict()
        shared = {k: v for k, v in published.state_dict().items() if k in own and own[k].shape == v.shape}
        net.load_state_dict(shared, strict=False)
        log.info(f"started from {cfg.pretrained} weights ({len(shared)} tensors; the classifier is new)")
    net.logits = nn.Identity()  # no classifier inside: the Encoder has its own head
    net.classify = True         # forward() then stops at last_bn's output
    dim = net.last_bn.num_features
    return net, dim, classifier_head(cfg, dim)


def compact(cfg: EncoderConfig) -> "Backbone":
    if cfg.pretrained:
        from img2caricature.errors import UserError

        raise UserError("pretrained weights exist only for arch = inception-resnet-v1")
    return compact_backbone(cfg), cfg.embedding_dim, classifier_head(cfg, cfg.embedding_dim)


def dlib_backbone(cfg: EncoderConfig) -> "Backbone":
    from img2caricature.nets.dlib_resnet import DlibResNet, DlibResNetConfig

    net = DlibResNet(DlibResNetConfig(input_size=cfg.input_size, embedding_dim=cfg.embedding_dim))
    return net, cfg.embedding_dim, nn.Identity()  # a metric embedding, never trained here


Backbone = tuple[nn.Module, int, nn.Module]   # network up to the representation, its size, the softmax head
BACKBONES = {"compact": compact, "inception-resnet-v1": inception_backbone, "dlib-resnet-v1": dlib_backbone}


class Encoder(nn.Module):
    """f. `forward` gives identity logits (for softmax training); `encode` the representation."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        if cfg.arch not in BACKBONES:
            from img2caricature.errors import UserError

            raise UserError(f"unknown encoder arch '{cfg.arch}' (known: {', '.join(BACKBONES)})")
        self.cfg = cfg
        self.backbone, self.dim, self.classifier = BACKBONES[cfg.arch](cfg)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1], any size -> the network's input (the framing this f declares)."""
        return prepare(images, self.cfg.crop_fraction, self.cfg.input_size, self.cfg.crop_shift)

    def embed(self, prepared: torch.Tensor) -> torch.Tensor:
        """The representation of already-prepared input (training feeds augmented crops here)."""
        return self.backbone(prepared)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.embed(self.prepare(images))

    def forward(self, prepared: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(prepared))


def prepare(images: torch.Tensor, crop_fraction: float, input_size: int, crop_shift: float = 0.0) -> torch.Tensor:
    """The crop framing an f declares: the centre `crop_fraction` of the image (its centre moved
    down by `crop_shift` of the kept side), resized to `input_size`."""
    size = images.shape[-1]
    keep = round(size * crop_fraction)
    if keep != size:
        left = (size - keep) // 2
        top = min(max(0, left + round(crop_shift * keep)), size - keep)
        images = images[..., top:top + keep, left:left + keep]
    if images.shape[-1] != input_size:
        # float32: antialiased resizing has no bfloat16 kernel (g's output under CPU autocast)
        images = F.interpolate(images.float(), size=input_size, mode="bilinear",
                               align_corners=False, antialias=images.shape[-1] > input_size)
    return images


def build_encoder(cfg: EncoderConfig) -> Encoder:
    return Encoder(cfg)


# Kept for callers from before the registry: snapshots go through img2caricature.registry.
def encoder_snapshot(encoder: nn.Module, **extra) -> dict:
    """What `encoder.pt` holds (see registry.py): weights, the config that rebuilds the network, plain extras."""
    from img2caricature import registry

    return registry.encoder_snapshot(encoder, **extra)


def encoder_from_snapshot(snapshot: dict) -> nn.Module:
    """A frozen encoder in eval mode: f is never trained after pretraining."""
    from img2caricature import registry

    return registry.encoder_from_snapshot(snapshot)


def load_encoder(path, map_location="cpu") -> nn.Module:
    """f from an encoder.pt, or a published f by name (see registry.ENCODERS)."""
    from img2caricature import registry

    return registry.encoder_from_snapshot(registry.load_encoder_snapshot(path))


def dlib_encoder(weights: str | None = None) -> Encoder:
    """dlib's face ResNet as a frozen f, read from dlib's file (by default the one the
    `face-recognition-models` package installs); framed for the project's 152 crops."""
    from img2caricature.errors import UserError
    from img2caricature.nets import dlib_resnet

    path = weights or dlib_resnet.installed_weights()
    if path is None:
        raise UserError(f"the dlib-resnet-v1 encoder reads {dlib_resnet.WEIGHTS_FILE} from the "
                        "face-recognition-models package: pip install -e '.[dlib]'")
    cfg, state = dlib_resnet.convert(dlib_resnet.read_network_file(path))
    encoder = Encoder(EncoderConfig(arch="dlib-resnet-v1", input_size=cfg.input_size,
                                    embedding_dim=cfg.embedding_dim, dropout=0.0,
                                    crop_fraction=dlib_resnet.CROP_FRACTION, crop_shift=dlib_resnet.CROP_SHIFT))
    encoder.backbone.load_state_dict(state)
    return encoder


def dlib_encoder_snapshot(weights: str | None = None) -> dict:
    return encoder_snapshot(dlib_encoder(weights), pretrained="dlib-resnet-v1")


def encoder_snapshot_from(name_or_path) -> dict:
    """`--encoder`: a published encoder's name (registry.ENCODERS), or an encoder checkpoint's path."""
    from img2caricature import registry

    return registry.load_encoder_snapshot(name_or_path)
