"""Pretraining f: softmax identity classification on face crops.

Figures every `eval_every` steps: training loss and accuracy, validation top-1 on held-back
images of training identities, and verification accuracy / ROC AUC / retrieval top-1 on
identities never trained on. `encoder.pt` is the frozen f the DTN uses.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from img2caricature import dataset, metrics
from img2caricature.errors import UserError
from img2caricature.nets.encoder import Encoder, EncoderConfig, encoder_snapshot
from img2caricature.runtime import log
from img2caricature.train import distributed, run
from img2caricature.train.augment import AugmentConfig, augment
from img2caricature.train.common import autocast, grad_scaler, map_batches, random_batch, sub_config
from img2caricature.train.split import split_faces


@dataclass
class EncoderTrainConfig:
    # network (see EncoderConfig)
    arch: Literal["compact", "inception-resnet-v1"] = "compact"
    input_size: int = 64
    crop_fraction: float = 0.8
    widths: tuple[int, ...] = (32, 64, 128, 256)
    embedding_dim: int = 128
    dropout: float = 0.2
    pretrained: str = ""
    classifier: Literal["linear", "cosine"] = "linear"
    cosine_scale: float = 16.0
    cosine_margin: float = 0.0            # CosFace: the true class's cosine must win by this much in training
    # data split
    heldout_identities: int = 30
    val_per_identity: int = 2
    split_seed: int = 0        # kept apart from `seed`: a second encoder (a judge) holds out the same people
    # optimisation
    steps: int = 10000
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_steps: int = 200
    label_smoothing: float = 0.1
    cpu_bf16: bool = False                # bfloat16 autocast on CPUs that run it natively (AVX512-BF16, AMX)
    # augmentation (see AugmentConfig)
    flip: bool = True
    max_shift: float = 0.06
    scale_range: tuple[float, ...] = (0.9, 1.1)
    max_rotation_deg: float = 8.0
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
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


def _maybe_pretrained(encoder: Encoder, cfg: EncoderTrainConfig) -> None:
    if not cfg.pretrained:
        return
    if cfg.arch != "inception-resnet-v1":
        raise UserError("pretrained weights exist only for arch = inception-resnet-v1")
    from facenet_pytorch import InceptionResnetV1

    try:
        published = InceptionResnetV1(pretrained=cfg.pretrained)
    except Exception as err:
        raise UserError(f"could not download the {cfg.pretrained} weights ({type(err).__name__}); "
                        "train without --set pretrained=... or fetch them on a machine with network") from None
    own = encoder.backbone.state_dict()
    shared = {k: v for k, v in published.state_dict().items() if k in own and own[k].shape == v.shape}
    encoder.backbone.load_state_dict(shared, strict=False)
    log.info(f"started from {cfg.pretrained} weights ({len(shared)} tensors; the classifier is new)")


def train_encoder(faces: Path, out: Path, cfg: EncoderTrainConfig, resume: bool = False,
                  device_name: str = "auto", show_progress: bool = True,
                  stop: run.StopEarly | None = None) -> dict[str, float]:
    d, out = run.start(out, cfg, resume, device_name)

    info = dataset.info(faces, "faces")
    if info.count == 0:
        raise UserError(f"{faces} holds no faces")
    labels = dataset.read_column(faces, "labels", "faces")
    split = split_faces(labels, cfg.heldout_identities, cfg.val_per_identity, cfg.split_seed)
    if len(split.train_identities) < 2:
        raise UserError(f"{faces}: need at least 2 training identities, found {len(split.train_identities)}")
    images = dataset.load_images(faces, "faces")  # uint8 in RAM: ~70 KB an image
    train_idx = torch.from_numpy(split.train)
    dense = torch.full((len(labels),), -1, dtype=torch.long)
    dense[split.train] = torch.from_numpy(split.train_labels(labels, split.train))
    dense[split.val] = torch.from_numpy(split.train_labels(labels, split.val))

    enc_cfg = sub_config(EncoderConfig, cfg, num_classes=len(split.train_identities))
    encoder = Encoder(enc_cfg).to(d.device)
    _maybe_pretrained(encoder, cfg)
    model = distributed.wrap(encoder, d)
    optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                weight_decay=cfg.weight_decay, nesterov=True)
    scaler = grad_scaler(d.device)
    aug = sub_config(AugmentConfig, cfg)
    start = 0
    metrics_log = run.MetricsLog(out / "metrics.jsonl", enabled=d.is_main)
    torch.manual_seed(cfg.seed * 1000 + d.rank)  # ranks draw different batches
    if resume:  # restores the RNG too, so batches continue as if never stopped
        start, extra = run.load_state(out, {"encoder": model}, {"optimizer": optimizer}, d.device)
        scaler.load_state_dict(extra.get("scaler", {})) if extra.get("scaler") else None
        metrics_log.trim_after(start)

    running = run.RunningMeans()
    t0 = time.time()

    def step_fn(step: int) -> dict[str, float]:
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
        running.add({"train/loss": loss.item(), "train/acc": (logits.argmax(1) == y).float().mean().item()})
        return {"loss": loss.item(), "lr": optimizer.param_groups[0]["lr"]}

    def log_train(step: int) -> None:
        metrics_log.write(step, running.pop() | {"lr": _lr_at(step, cfg), "elapsed_s": time.time() - t0})

    def evaluate(step: int) -> dict[str, float]:
        figures = evaluate_encoder(encoder, images, labels, split, dense, d.device)
        metrics_log.write(step, figures)
        if d.is_main:
            log.info(f"step {step}: " + ", ".join(f"{k} {v:.3f}" for k, v in figures.items()))
        return figures

    names = info.names
    name_of = lambda ids: [names[i] if i < len(names) else str(i) for i in ids]  # noqa: E731

    def save(step: int) -> None:
        if d.is_main:
            run.save_run(out, step, {"encoder": model}, {"optimizer": optimizer},
                         extra={"scaler": scaler.state_dict()}, keep=cfg.keep_states,
                         snapshot=encoder_snapshot(encoder, step=step, faces=str(faces),
                                                   train_identities=name_of(split.train_identities),
                                                   heldout_identities=name_of(split.heldout_identities)),
                         snapshot_name="encoder.pt")

    final: dict[str, float] = {}

    def eval_and_save(step: int) -> None:
        final.update(evaluate(step) if d.is_main else {})
        save(step)
        distributed.barrier(d)

    run.run_steps(step_fn, start, cfg.steps,
                  [run.Every(cfg.log_every, log_train), run.Every(cfg.eval_every, eval_and_save)],
                  desc="pretrain-encoder", show=show_progress and d.is_main, stop=stop)
    distributed.teardown(d)
    return final


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
