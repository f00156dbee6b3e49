"""Training the Domain Transfer Network: g and D against a frozen, pretrained f.

The step is written out in order: D on (g(f(s)), g(f(t)), t) with its three classes,
then g on L_GANG + alpha L_CONST + beta L_TID + gamma L_TV. f(s) and f(t) of real
images never change (f is frozen), so they are computed once before the first step.
"""

from __future__ import annotations

import copy
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from img2caricature import checkpoint, dataset, losses
from img2caricature.errors import UserError
from img2caricature.nets.dtn import (REAL_TARGET, Discriminator, DiscriminatorConfig, Generator,
                                     GeneratorConfig, init_dcgan)
from img2caricature.nets.encoder import Encoder, encoder_from_snapshot, encoder_snapshot_from
from img2caricature.runtime import log
from img2caricature.train import distributed, run
from img2caricature.train.common import autocast, downscale, grad_scaler, map_batches, random_batch
from img2caricature.train.curves import write_curves
from img2caricature.train.diffaugment import diff_augment
from img2caricature.train.samples import save_pairs
from img2caricature.train.split import first_per_identity, split_faces_by_heldout
from img2caricature.translate import dtn_snapshot


@dataclass
class DTNConfig:
    # networks
    output_size: int = 64
    g_widths: tuple[int, ...] = (256, 128, 64, 32)
    d_widths: tuple[int, ...] = (32, 64, 128, 256)
    # loss weights (the paper's, for faces)
    alpha: float = 100.0       # L_CONST
    beta: float = 1.0          # L_TID
    gamma: float = 0.05        # L_TV
    const_distance: Literal["mse", "cosine"] = "mse"
    const_ramp_steps: int = 0   # alpha grows linearly from 0 over these steps (0: from the start, as the paper)
    # optimisation
    steps: int = 10000
    batch_size: int = 32
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    g_steps_per_d: int = 1
    cache_f: bool = True        # compute f(x) of real images once (False: every step, for benchmarks)
    cpu_bf16: bool = False      # bfloat16 autocast on CPUs that run it natively (AVX512-BF16, AMX)
    channels_last: bool = True  # NHWC images and weights: oneDNN's (CPU) and cuDNN's (mixed precision)
                                # convolutions run faster in it; the arithmetic is the same
    # D for a small target set, and g's moving average
    diffaugment: str = ""       # DiffAugment policy for all D sees, e.g. "color,translation,cutout"; "" = off
    r1_gamma: float = 0.0       # R1 penalty on real emoji: gamma/2 |grad log p(real)|^2; 0 = off
    r1_every: int = 4           # lazy R1 (StyleGAN2): every N D steps, weighted by N
    ema_decay: float = 0.999    # g_ema <- decay g_ema + (1 - decay) g after every step; 0 = no EMA
    # data
    heldout_emoji: int = 64     # emoji kept out of training, for reconstruction samples and evaluation
    # bookkeeping
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 500
    keep_states: int = 2
    n_samples: int = 16
    seed: int = 0
    threads: int = 0


@dataclass
class Nets:
    f: Encoder
    g: nn.Module
    D: nn.Module
    g_ema: nn.Module | None = None   # the moving average of g: samples, evaluation and snapshots use it


@dataclass
class Batch:
    """One step's data. f_source / f_target are f(s), f(t); target is t at g's output size."""
    f_source: torch.Tensor
    f_target: torch.Tensor
    target: torch.Tensor


def build_nets(f: Encoder, cfg: DTNConfig, device: torch.device) -> Nets:
    g = Generator(GeneratorConfig(input_dim=f.dim, output_size=cfg.output_size, widths=cfg.g_widths))
    D = Discriminator(DiscriminatorConfig(input_size=cfg.output_size, widths=cfg.d_widths))
    init_dcgan(g)
    init_dcgan(D)
    f.eval()
    f.requires_grad_(False)
    nets = [f.to(device), g.to(device), D.to(device)]
    if cfg.channels_last:
        nets = [net.to(memory_format=torch.channels_last) for net in nets]
    g_ema = copy.deepcopy(nets[1]).eval().requires_grad_(False) if cfg.ema_decay > 0 else None
    return Nets(*nets, g_ema=g_ema)


@torch.no_grad()
def update_ema(g_ema: nn.Module, g: nn.Module, decay: float, step: int | None = None) -> None:
    """g_ema <- decay g_ema + (1 - decay) g; early on the decay ramps up as (1 + step) / (10 + step),
    so the average is not anchored to g's random initialisation. BatchNorm statistics are copied."""
    if step is not None:
        decay = min(decay, (1 + step) / (10 + step))
    g = distributed.unwrap(g)
    torch._foreach_lerp_(list(g_ema.parameters()), list(g.parameters()), 1.0 - decay)
    for b_ema, b in zip(g_ema.buffers(), g.buffers()):
        b_ema.copy_(b)


def sampler(nets: Nets) -> nn.Module:
    """The g that draws samples and snapshots: the moving average when there is one."""
    return nets.g_ema if nets.g_ema is not None else distributed.unwrap(nets.g)


Fakes = tuple[torch.Tensor, torch.Tensor]  # g(f(s)), g(f(t))


def generate(nets: Nets, batch: Batch) -> Fakes:
    return nets.g(batch.f_source), nets.g(batch.f_target)


def discriminate(D: nn.Module, images: torch.Tensor, cfg: DTNConfig) -> torch.Tensor:
    """D's logits, through DiffAugment when configured (the same in D's and g's steps)."""
    return D(diff_augment(images, cfg.diffaugment) if cfg.diffaugment else images)


def discriminator_step(nets: Nets, batch: Batch, cfg: DTNConfig, opt_d: torch.optim.Optimizer,
                       scaler: torch.amp.GradScaler, fakes: Fakes | None = None,
                       step: int | None = None) -> dict[str, float]:
    """D on (g(f(s)), g(f(t)), t) with its three classes, plus lazy R1 on the real emoji when
    configured. `fakes`: g's outputs of this step, when the caller has them (detached here)."""
    device = batch.target.device
    if fakes is None:
        with torch.no_grad(), autocast(device, cfg.cpu_bf16):
            fakes = generate(nets, batch)
    from_source, from_target = (x.detach() for x in fakes)
    r1_now = cfg.r1_gamma > 0 and (step is None or step % cfg.r1_every == 0)
    real = batch.target.detach().requires_grad_(r1_now)
    with autocast(device, cfg.cpu_bf16):
        logits = discriminate(nets.D, torch.cat([from_source, from_target, real]), cfg)
        ls, lt, lr = logits.split(len(batch.target))
        loss, parts = losses.dtn_discriminator_loss(ls, lt, lr)
    if r1_now:
        penalty = losses.r1_penalty(lr, real, REAL_TARGET)
        loss = loss + cfg.r1_gamma / 2 * cfg.r1_every * penalty
        parts["R1"] = penalty.item()
    opt_d.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(opt_d)
    scaler.update()
    return parts


def const_weight(step: int, cfg: DTNConfig) -> float:
    """alpha, ramped in: a small f is easy to fool, and an early, strong L_CONST teaches g
    adversarial textures before L_TID and L_GANG have taught it what an emoji looks like."""
    if cfg.const_ramp_steps <= 0:
        return cfg.alpha
    return cfg.alpha * min(1.0, step / cfg.const_ramp_steps)


@contextmanager
def frozen(module: nn.Module):
    """`module` (DDP unwrapped) with no parameter gradients: g's step needs gradients through
    D and f to g, never D's or f's own, and computing D's would cost a third of its backward."""
    module = distributed.unwrap(module)
    flags = [p.requires_grad for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags):
            p.requires_grad_(flag)


def generator_losses(nets: Nets, batch: Batch, cfg: DTNConfig, alpha: float | None = None,
                     fakes: Fakes | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    from_source, from_target = generate(nets, batch) if fakes is None else fakes   # g(f(s)), g(f(t))
    # D sees the same mix as in its own step (real emoji included), so its BatchNorm
    # statistics match; a batch of fakes alone would be normalised differently and
    # g could satisfy L_GANG against a D that does not exist.
    with frozen(nets.D) as D:
        logits = discriminate(D, torch.cat([from_source, from_target, batch.target]), cfg)
    ls, lt, _ = logits.split(len(from_source))
    gang = losses.dtn_gang_loss(ls, lt)
    const = losses.representation_distance(nets.f.encode(from_source), batch.f_source, cfg.const_distance)
    tid = F.mse_loss(from_target.float(), batch.target.float())
    tv = losses.total_variation(torch.cat([from_source, from_target]).float())
    alpha = cfg.alpha if alpha is None else alpha
    total = gang + alpha * const + cfg.beta * tid + cfg.gamma * tv
    return total, {"L_G": total.item(), "L_GANG": gang.item(), "L_CONST": const.item(),
                   "L_TID": tid.item(), "L_TV": tv.item()}


def generator_step(nets: Nets, batch: Batch, cfg: DTNConfig, opt_g: torch.optim.Optimizer,
                   scaler: torch.amp.GradScaler, alpha: float | None = None,
                   fakes: Fakes | None = None) -> dict[str, float]:
    with autocast(batch.target.device, cfg.cpu_bf16):
        loss, parts = generator_losses(nets, batch, cfg, alpha, fakes)
    opt_g.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(opt_g)  # opt_g holds g's parameters only
    scaler.update()
    return parts


def train_step(nets: Nets, batch: Batch, cfg: DTNConfig, opt_g, opt_d, scaler_g, scaler_d,
               step: int | None = None) -> dict[str, float]:
    nets.g.train()
    nets.D.train()
    if cfg.channels_last:  # g's outputs already are; D sees real emoji in one batch with them
        batch = Batch(batch.f_source, batch.f_target, batch.target.contiguous(memory_format=torch.channels_last))
    # g runs once for both steps: D trains on its detached outputs, then g's first step
    # backpropagates through the same outputs (g has not changed in between).
    with autocast(batch.target.device, cfg.cpu_bf16):
        fakes = generate(nets, batch)
    parts = discriminator_step(nets, batch, cfg, opt_d, scaler_d, fakes, step)
    alpha = cfg.alpha if step is None else const_weight(step, cfg)
    for i in range(cfg.g_steps_per_d):
        parts.update(generator_step(nets, batch, cfg, opt_g, scaler_g, alpha, fakes if i == 0 else None))
    if nets.g_ema is not None:
        update_ema(nets.g_ema, nets.g, cfg.ema_decay, step)
    return parts


def train_dtn(faces: Path, emoji: Path, encoder_path: Path, out: Path, cfg: DTNConfig, resume: bool = False,
              device_name: str = "auto", show_progress: bool = True,
              stop: run.StopEarly | None = None) -> dict[str, float]:
    d, out = run.start(out, cfg, resume, device_name)

    enc_snapshot = encoder_snapshot_from(encoder_path)
    f = encoder_from_snapshot(enc_snapshot)
    dataset.info(faces, "faces"), dataset.info(emoji, "emoji")  # kind checks before any heavy work
    train_faces, held_faces = split_faces_by_heldout(faces, enc_snapshot.get("heldout_identities", []))
    n_emoji = dataset.info(emoji).count
    emoji_order = np.random.default_rng(cfg.seed).permutation(n_emoji)
    held_emoji, train_emoji = np.sort(emoji_order[:cfg.heldout_emoji]), np.sort(emoji_order[cfg.heldout_emoji:])
    if len(train_faces) == 0 or len(train_emoji) == 0:
        raise UserError("no training faces or emoji left after holding some out")

    nets = build_nets(f, cfg, d.device)
    g, D = distributed.wrap(nets.g, d), distributed.wrap(nets.D, d)
    nets_ddp = Nets(nets.f, g, D, nets.g_ema)
    opt_g = torch.optim.Adam(nets.g.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(nets.D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    scaler_g, scaler_d = grad_scaler(d.device), grad_scaler(d.device)

    # Data in RAM. Faces are needed at full size only when f(x) is not cached.
    face_images = dataset.load_images(faces, "faces", train_faces)
    emoji_images = dataset.load_images(emoji, "emoji", train_emoji)
    emoji_small = downscale(emoji_images, cfg.output_size)
    encode = lambda x: f.encode(dataset.to_float(x))  # noqa: E731
    t0 = time.time()
    if cfg.cache_f:
        f_faces = map_batches(encode, face_images, device=d.device)
        f_emoji = map_batches(encode, emoji_images, device=d.device)
        log.info(f"f(x) cached for {len(f_faces)} faces and {len(f_emoji)} emoji in {time.time() - t0:.1f}s")

    labels = dataset.read_column(faces, "labels", "faces")
    sample_faces = dataset.to_float(dataset.load_images(
        faces, "faces", first_per_identity(held_faces if len(held_faces) else train_faces, labels, cfg.n_samples)))
    sample_emoji = dataset.to_float(dataset.load_images(emoji, "emoji", held_emoji[:cfg.n_samples])) \
        if len(held_emoji) else dataset.to_float(emoji_images[:cfg.n_samples])

    start = 0
    metrics_log = run.MetricsLog(out / "metrics.jsonl", enabled=d.is_main)
    torch.manual_seed(cfg.seed * 1000 + d.rank)
    modules = {"g": g, "D": D} | ({"g_ema": nets.g_ema} if nets.g_ema is not None else {})
    optimizers = {"g": opt_g, "D": opt_d}
    if resume:
        start, extra = run.load_state(out, modules, optimizers, d.device)
        scaler_g.load_state_dict(extra["scaler_g"]), scaler_d.load_state_dict(extra["scaler_d"])
        metrics_log.trim_after(start)

    face_ids, emoji_ids = torch.arange(len(face_images)), torch.arange(len(emoji_images))
    running = run.RunningMeans()

    def next_batch() -> Batch:
        fi, ei = random_batch(face_ids, cfg.batch_size), random_batch(emoji_ids, cfg.batch_size)
        if cfg.cache_f:
            fs, ft = f_faces[fi].to(d.device), f_emoji[ei].to(d.device)
        else:
            with torch.no_grad(), autocast(d.device, cfg.cpu_bf16):
                fs, ft = encode(face_images[fi].to(d.device)), encode(emoji_images[ei].to(d.device))
        return Batch(fs, ft, dataset.to_float(emoji_small[ei].to(d.device)))

    def step_fn(step: int) -> dict[str, float]:
        parts = train_step(nets_ddp, next_batch(), cfg, opt_g, opt_d, scaler_g, scaler_d, step)
        running.add(parts)
        return {k: parts[k] for k in ("L_D", "L_GANG", "L_CONST", "L_TID")} | parts

    def log_losses(step: int) -> None:
        metrics_log.write(step, running.pop() | {"elapsed_s": time.time() - t0})

    def samples(step: int) -> None:
        if not d.is_main:
            return
        g_sample = sampler(nets)
        g_sample.eval()
        with torch.no_grad():
            from_faces = g_sample(f.encode(sample_faces.to(d.device))).cpu()
            from_emoji = g_sample(f.encode(sample_emoji.to(d.device))).cpu()
        save_pairs(out / "samples" / f"faces-{step:08d}.png", sample_faces, from_faces)
        save_pairs(out / "samples" / f"emoji-{step:08d}.png", sample_emoji, from_emoji)
        write_curves(out)

    def save(step: int) -> None:
        if d.is_main:
            run.save_run(out, step, modules, optimizers, keep=cfg.keep_states,
                         extra={"scaler_g": scaler_g.state_dict(), "scaler_d": scaler_d.state_dict()},
                         snapshot=dtn_snapshot(sampler(nets), enc_snapshot, step=step, faces=str(faces),
                                               emoji=str(emoji), heldout_emoji=held_emoji.tolist()),
                         snapshot_name="dtn.pt")
        distributed.barrier(d)

    last = run.run_steps(step_fn, start, cfg.steps,
                         [run.Every(cfg.log_every, log_losses), run.Every(cfg.sample_every, samples),
                          run.Every(cfg.checkpoint_every, save)],
                         desc="train-dtn", show=show_progress and d.is_main, stop=stop)
    distributed.teardown(d)
    return last
