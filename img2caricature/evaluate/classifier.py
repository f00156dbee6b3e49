"""A small CNN image classifier trained for a fixed, short budget: the two-sample test's
discriminator and the gender classifiers are both this."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from img2caricature.nets.encoder import conv_bn_relu
from img2caricature.augment import AugmentConfig, augment
from img2caricature.batches import map_batches, random_batch


@dataclass
class ClassifierConfig:
    size: int = 64                              # images are resized to this side
    widths: tuple[int, ...] = (16, 32, 64, 128)  # one stride-2 stage each
    steps: int = 300
    batch_size: int = 32
    lr: float = 2e-3
    seed: int = 0


def small_cnn(n_classes: int, widths: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    c = 3
    for width in widths:
        layers += [conv_bn_relu(c, width, stride=2), conv_bn_relu(width, width)]
        c = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(c, n_classes)]
    return nn.Sequential(*layers)


def resize(images: torch.Tensor, size: int) -> torch.Tensor:
    if images.shape[-1] == size:
        return images
    return F.interpolate(images.float(), size=size, mode="bilinear", align_corners=False,
                         antialias=images.shape[-1] > size)


def fit_classifier(images: torch.Tensor, labels: torch.Tensor, cfg: ClassifierConfig,
                   aug: AugmentConfig | None = None, device: torch.device | None = None,
                   desc: str = "training a classifier") -> nn.Module:
    """images: float (N, 3, H, W) in [-1, 1]; labels: long (N,). Adam for `cfg.steps` steps on
    random batches (`aug`mented when given, else flipped only), class-balanced by sampling."""
    device = device or torch.device("cpu")
    torch.manual_seed(cfg.seed)
    n_classes = int(labels.max()) + 1
    model = small_cnn(n_classes, cfg.widths).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    images = resize(images, cfg.size)
    by_class = [torch.nonzero(labels == c).flatten() for c in range(n_classes)]
    by_class = [ids for ids in by_class if len(ids)]
    flip_only = AugmentConfig(max_shift=0.0, scale_range=(1.0, 1.0), max_rotation_deg=0.0,
                              brightness=0.0, contrast=0.0, saturation=0.0)
    model.train()
    for _ in tqdm(range(cfg.steps), desc=desc, leave=False, dynamic_ncols=True):
        # the same number from each class, so an imbalanced set does not teach the majority answer
        idx = torch.cat([random_batch(ids, max(1, cfg.batch_size // len(by_class))) for ids in by_class])
        x = augment(images[idx].to(device), cfg.size, 1.0, aug or flip_only)
        loss = F.cross_entropy(model(x), labels[idx].to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    return model


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, size: int, device: torch.device | None = None) -> np.ndarray:
    """Predicted class of each image (float, [-1, 1], any size)."""
    model.eval()
    logits = map_batches(lambda x: model(resize(x, size)), images, device=device or torch.device("cpu"))
    return logits.argmax(1).numpy()


def accuracy(predicted: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy and balanced accuracy (mean of per-class recalls: 50% for a constant answer)."""
    predicted, labels = np.asarray(predicted), np.asarray(labels)
    recalls = [float((predicted[labels == c] == c).mean()) for c in np.unique(labels)]
    return {"accuracy": float((predicted == labels).mean()), "balanced_accuracy": float(np.mean(recalls))}
