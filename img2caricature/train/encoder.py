"""Pretraining f: softmax identity classification on face crops.

Figures every `eval_every` steps: training loss and accuracy, validation top-1 on held-back
images of training identities, and verification accuracy / ROC AUC / retrieval top-1 on
identities never trained on. `encoder.pt` is the frozen f the DTN uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from img2caricature import dataset, metrics
from img2caricature.augment import AugmentConfig, augment
from img2caricature.batches import map_batches, random_batch
from img2caricature.errors import UserError
from img2caricature.nets.encoder import Encoder, EncoderConfig
from img2caricature.registry import encoder_snapshot
from img2caricature.split import identity_names
from img2caricature.train import distributed, run
from img2caricature.train.common import autocast, grad_scaler, sub_config
from img2caricature.train.precision import CpuBf16
from img2caricature.train.split import split_faces, training_split


@dataclass
class EncoderTrainConfig(AugmentConfig):   # + the augmentation keys: flip, max_shift, scale_range, ...
    # network (see EncoderConfig)
    arch: str = "compact"                 # nets.encoder.BACKBONES: compact, inception-resnet-v1
    input_size: int = 64
    crop_fraction: float = 0.8
    widths: tuple[int, ...] = (32, 64, 128, 256)
    embedding_dim: int = 128
    dropout: float = 0.2
    pretrained: str = ""
    classifier: Literal["linear", "cosine"] = "linear"
    cosine_scale: float = 16.0
    cosine_margin: float = 0.0            # CosFace: the true class's cosine must win by this much in training
    # data: the people held out whole come from the split file (img2caricature/split.py)
    val_per_identity: int = 2  # images of each training person kept back for validation accuracy
    split_seed: int = 0        # draws those; kept apart from `seed`, so a second encoder (a judge) validates alike
    # optimisation
    steps: int = 10000
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_steps: int = 200
    label_smoothing: float = 0.1
    cpu_bf16: CpuBf16 = "auto"            # bfloat16 autocast on the CPU: true, false, or "auto" (where measured faster)
    # bookkeeping
    eval_every: int = 500
    log_every: int = 50
    keep_states: int = 2
    seed: int = 0
    threads: int = 0                      # CPU threads (0: torch's default)


def _lr_at(step: int, cfg: EncoderTrainConfig) -> float:
    if step <= cfg.warmup_steps:
        return cfg.lr * step / max(1, cfg.warmup_steps)
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def with_margin(logits: torch.Tensor, labels: torch.Tensor, cfg: EncoderTrainConfig) -> torch.Tensor:
    """CosFace (Wang et al. 2018): lower the true class's scaled cosine by scale * margin, so
    training keeps pulling each face towards its identity after it is already classified."""
    if cfg.classifier != "cosine" or cfg.cosine_margin == 0:
        return logits
    return logits - F.one_hot(labels, logits.shape[1]) * (cfg.cosine_scale * cfg.cosine_margin)


def train_encoder(faces: Path, out: Path, cfg: EncoderTrainConfig, resume: bool = False,
                  device_name: str = "auto", show_progress: bool = True,
                  stop: run.StopEarly | None = None, split_path: Path | None = None) -> dict[str, float]:
    """Returns the last evaluation's figures. `split_path`: the split file (default: beside `faces`)."""
    d, out = run.start(out, cfg, resume, device_name)

    info = dataset.info(faces, "faces")
    if info.count == 0:
        raise UserError(f"{faces} holds no faces")
    split_file = training_split(split_path, faces)
    labels = dataset.read_column(faces, "labels", "faces")
    split = split_faces(labels, split_file.heldout_labels(faces), cfg.val_per_identity, cfg.split_seed)
    if len(split.train_identities) < 2:
        raise UserError(f"{faces}: need at least 2 training identities, found {len(split.train_identities)}")
    images = dataset.load_images(faces, "faces")  # uint8 in RAM: ~70 KB an image
    train_idx = torch.from_numpy(split.train)
    dense = torch.full((len(labels),), -1, dtype=torch.long)
    dense[split.train] = torch.from_numpy(split.train_labels(labels, split.train))
    dense[split.val] = torch.from_numpy(split.train_labels(labels, split.val))

    encoder = Encoder(sub_config(EncoderConfig, cfg, num_classes=len(split.train_identities))).to(d.device)
    model = distributed.wrap(encoder, d)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay, nesterov=True)
    scaler = grad_scaler(d.device)
    aug = sub_config(AugmentConfig, cfg)

    def step(step: int) -> dict[str, torch.Tensor]:
        model.train()
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(step, cfg)
        idx = random_batch(train_idx, cfg.batch_size)
        x = augment(dataset.to_float(images[idx]).to(d.device), cfg.input_size, cfg.crop_fraction, aug)
        y = dense[idx].to(d.device)
        with autocast(d.device, cfg.cpu_bf16):
            logits = model(x)
            loss = F.cross_entropy(with_margin(logits.float(), y, cfg), y, label_smoothing=cfg.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return {"train/loss": loss.detach(), "train/acc": (logits.argmax(1) == y).float().mean()}

    names = identity_names(faces)
    name_of = lambda ids: [names[i] for i in ids]  # noqa: E731
    trainer = run.Trainer(
        "pretrain-encoder", cfg.steps, {"encoder": model}, {"optimizer": optimizer}, step,
        snapshot=lambda step: encoder_snapshot(encoder, split=split_file.record(), step=step, faces=str(faces),
                                               train_identities=name_of(split.train_identities),
                                               heldout_identities=name_of(split.heldout_identities)),
        snapshot_name="encoder.pt", log_every=cfg.log_every, checkpoint_every=cfg.eval_every,
        keep_states=cfg.keep_states,
        evaluate=lambda step: evaluate_encoder(encoder, images, labels, split, dense, d.device),
        state=lambda: {"scaler": scaler.state_dict()},
        load_state=lambda extra: scaler.load_state_dict(extra["scaler"]) if extra.get("scaler") else None,
        logged=lambda step: {"lr": _lr_at(step, cfg)})
    return run.train(trainer, d, out, cfg.seed, resume, show_progress, stop)


@torch.no_grad()
def evaluate_encoder(encoder: Encoder, images: torch.Tensor, labels: np.ndarray, split,
                     dense: torch.Tensor, device: torch.device) -> dict[str, float]:
    was_training = encoder.training
    encoder.eval()
    embed = lambda x: encoder.encode(dataset.to_float(x))  # noqa: E731
    figures: dict[str, float] = {}
    if len(split.val):
        val_emb = map_batches(embed, images[split.val], device=device)
        logits = encoder.classifier(val_emb.to(device)).cpu()
        figures["val/top1"] = float((logits.argmax(1) == dense[split.val]).float().mean())
    if len(np.unique(labels[split.heldout])) >= 2:
        held_emb = map_batches(embed, images[split.heldout], device=device)
        held_labels = labels[split.heldout]
        figures.update({f"unseen/{k}": v for k, v in metrics.verification(held_emb, held_labels).items()})
        figures["unseen/retrieval_top1"] = metrics.retrieval_top1(held_emb, held_labels)
    encoder.train(was_training)
    return figures
