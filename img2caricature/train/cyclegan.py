"""Training the CycleGAN baseline (Zhu et al. 2017) between faces and emoji.

The step is written out in order: both generators on
    L_GAN (least squares) + cycle_weight * L_CYC (L1) + cycle_weight * identity_weight * L_IDT (L1),
then both PatchGAN discriminators on real images against fakes drawn through a history pool.
Faces and emoji are downscaled to `size` (64 in the compact config, so a CPU can train it),
augmented by a flip and a small random crop, as in the paper's resize-and-crop.
Setup, resume, logging, saving and teardown are the trainer skeleton's (train/run.py); the
held-out people and emoji are the split file's (img2caricature/split.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from img2caricature import dataset, registry
from img2caricature.augment import AugmentConfig, augment
from img2caricature.batches import downscale, random_batch
from img2caricature.grids import save_pairs
from img2caricature.losses import lsgan_loss
from img2caricature.nets.cyclegan import (CycleGANTranslator, PatchDiscriminator, PatchDiscriminatorConfig,
                                          ResnetGenerator, ResnetGeneratorConfig, cyclegan_snapshot)
from img2caricature.nets.dtn import init_dcgan
from img2caricature.runtime import log
from img2caricature.train import distributed, run
from img2caricature.train.common import GANOptimizers, autocast, detached, frozen, optimizer_step, sub_config
from img2caricature.train.pool import ImagePool
from img2caricature.train.split import translator_data


@dataclass
class CycleGANConfig(run.Schedule):   # + log_every, sample_every, checkpoint_every, keep_states, n_samples, seed, threads
    # networks (see ResnetGeneratorConfig, PatchDiscriminatorConfig)
    size: int = 64
    ngf: int = 32
    n_down: int = 2
    n_blocks: int = 6
    ndf: int = 32
    d_layers: int = 3
    # losses (the paper's)
    cycle_weight: float = 10.0
    identity_weight: float = 0.5   # relative to cycle_weight, as in the paper's code: L_IDT counts 10 * 0.5
    pool_size: int = 50
    # optimisation
    steps: int = 3000
    batch_size: int = 4
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    decay_fraction: float = 0.5    # the learning rate falls linearly to 0 over this last share of the steps
    # augmentation (see AugmentConfig): flip and a small random crop
    flip: bool = True
    max_shift: float = 0.05
    scale_range: tuple[float, ...] = (0.9, 1.0)
    # (the held-out people and emoji are the split file's)


class Generators(nn.Module):
    """Both directions in one module, so that DDP sees one forward per step."""

    def __init__(self, cfg: ResnetGeneratorConfig):
        super().__init__()
        self.face_to_emoji = ResnetGenerator(cfg)
        self.emoji_to_face = ResnetGenerator(cfg)

    def forward(self, faces: torch.Tensor, emoji: torch.Tensor, identity: bool = True) -> dict[str, torch.Tensor]:
        out = {"fake_emoji": self.face_to_emoji(faces), "fake_faces": self.emoji_to_face(emoji)}
        out["rec_faces"] = self.emoji_to_face(out["fake_emoji"])
        out["rec_emoji"] = self.face_to_emoji(out["fake_faces"])
        if identity:  # a generator fed its own target domain should leave the image alone
            out["same_emoji"] = self.face_to_emoji(emoji)
            out["same_faces"] = self.emoji_to_face(faces)
        return out


class Discriminators(nn.Module):
    def __init__(self, cfg: PatchDiscriminatorConfig):
        super().__init__()
        self.faces = PatchDiscriminator(cfg)
        self.emoji = PatchDiscriminator(cfg)

    def forward(self, faces: torch.Tensor, emoji: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.faces(faces), self.emoji(emoji)


@dataclass
class Nets:
    G: nn.Module    # Generators (maybe DDP-wrapped)
    D: nn.Module    # Discriminators (maybe DDP-wrapped)


@dataclass
class Pools:
    faces: ImagePool
    emoji: ImagePool


@dataclass
class Batch:
    """One step's data: augmented faces and emoji at the networks' size, in [-1, 1]."""
    faces: torch.Tensor
    emoji: torch.Tensor


def build_nets(cfg: CycleGANConfig, device: torch.device) -> tuple[Generators, Discriminators]:
    G = Generators(sub_config(ResnetGeneratorConfig, cfg))
    D = Discriminators(PatchDiscriminatorConfig(ndf=cfg.ndf, n_layers=cfg.d_layers))
    init_dcgan(G)  # N(0, 0.02) convolutions: the paper's init
    init_dcgan(D)
    return G.to(device), D.to(device)


def lr_at(step: int, cfg: CycleGANConfig) -> float:
    """Constant, then linear decay to 0 over the last `decay_fraction` of the steps."""
    decay_steps = round(cfg.steps * cfg.decay_fraction)
    start = cfg.steps - decay_steps
    if step <= start or decay_steps == 0:
        return cfg.lr
    return cfg.lr * (cfg.steps - step + 1) / (decay_steps + 1)


def generator_losses(nets: Nets, batch: Batch, cfg: CycleGANConfig
                     ) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    out = nets.G(batch.faces, batch.emoji, identity=cfg.identity_weight > 0)
    with frozen(nets.D) as D:  # gradients through D to the generators, none for D itself
        d_faces, d_emoji = D(out["fake_faces"], out["fake_emoji"])
    gan_emoji, gan_faces = lsgan_loss(d_emoji, True), lsgan_loss(d_faces, True)
    l1 = lambda a, b: F.l1_loss(a.float(), b.float())  # noqa: E731
    cyc_faces, cyc_emoji = l1(out["rec_faces"], batch.faces), l1(out["rec_emoji"], batch.emoji)
    idt = l1(out["same_emoji"], batch.emoji) + l1(out["same_faces"], batch.faces) if "same_emoji" in out \
        else torch.zeros((), device=batch.faces.device)
    gan, cyc = gan_emoji + gan_faces, cyc_faces + cyc_emoji
    total = gan + cfg.cycle_weight * cyc + cfg.cycle_weight * cfg.identity_weight * idt
    parts = {"L_G": total, "L_GAN": gan, "L_CYC": cyc, "L_IDT": idt, "G/gan_emoji": gan_emoji,
             "G/gan_faces": gan_faces, "G/cycle_faces": cyc_faces, "G/cycle_emoji": cyc_emoji}
    return total, detached(parts), out


def discriminator_losses(nets: Nets, batch: Batch, fake_faces: torch.Tensor, fake_emoji: torch.Tensor
                         ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Each D: least squares, real -> 1 and fake -> 0, halved (the paper slows D down so)."""
    n = len(batch.faces)
    d_faces, d_emoji = nets.D(torch.cat([batch.faces, fake_faces]), torch.cat([batch.emoji, fake_emoji]))
    loss_faces = 0.5 * (lsgan_loss(d_faces[:n], True) + lsgan_loss(d_faces[n:], False))
    loss_emoji = 0.5 * (lsgan_loss(d_emoji[:n], True) + lsgan_loss(d_emoji[n:], False))
    total = loss_faces + loss_emoji
    return total, detached({"L_D": total, "D/faces": loss_faces, "D/emoji": loss_emoji})


def generator_step(nets: Nets, batch: Batch, cfg: CycleGANConfig, opt_g: torch.optim.Optimizer,
                   scaler: torch.amp.GradScaler) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    with autocast(batch.faces.device):
        loss, parts, out = generator_losses(nets, batch, cfg)
    optimizer_step(loss, opt_g, scaler)
    return parts, out


def discriminator_step(nets: Nets, batch: Batch, fake_faces: torch.Tensor, fake_emoji: torch.Tensor,
                       opt_d: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> dict[str, torch.Tensor]:
    with autocast(batch.faces.device):
        loss, parts = discriminator_losses(nets, batch, fake_faces.detach(), fake_emoji.detach())
    optimizer_step(loss, opt_d, scaler)
    return parts


def train_step(nets: Nets, batch: Batch, cfg: CycleGANConfig, pools: Pools, opt_g, opt_d,
               scaler_g, scaler_d) -> dict[str, torch.Tensor]:
    nets.G.train()
    nets.D.train()
    parts, out = generator_step(nets, batch, cfg, opt_g, scaler_g)
    fake_faces, fake_emoji = pools.faces.query(out["fake_faces"]), pools.emoji.query(out["fake_emoji"])
    parts.update(discriminator_step(nets, batch, fake_faces, fake_emoji, opt_d, scaler_d))
    return parts


def load_small(path: Path, kind: dataset.Kind, indices: np.ndarray, size: int, chunk: int = 512) -> torch.Tensor:
    """Records `indices` as uint8 images of side `size`, read in chunks (the full-size set needn't fit in RAM)."""
    parts = [downscale(dataset.load_images(path, kind, indices[i:i + chunk]), size)
             for i in range(0, len(indices), chunk)]
    return torch.cat(parts) if parts else torch.empty(0, 3, size, size, dtype=torch.uint8)


def train_cyclegan(faces: Path, emoji: Path, out: Path, cfg: CycleGANConfig, encoder_path: Path | None = None,
                   resume: bool = False, device_name: str = "auto", show_progress: bool = True,
                   stop: run.StopEarly | None = None, split_path: Path | None = None) -> dict[str, float]:
    """`split_path`: the split file (default: beside `faces`). `encoder_path` is optional and only
    checked: the DTN it is compared with must hold out the same people (see encoder_split)."""
    d, out = run.start(out, cfg, resume, device_name)
    enc_snapshot = registry.load_encoder_snapshot(encoder_path) if encoder_path is not None else None
    data = translator_data(split_path, faces, emoji, cfg.n_samples, enc_snapshot)

    G, D = build_nets(cfg, d.device)
    nets = Nets(distributed.wrap(G, d), distributed.wrap(D, d))
    opt = GANOptimizers.adam(G.parameters(), D.parameters(), cfg.lr, cfg.lr, (cfg.beta1, cfg.beta2), d.device)
    pools = Pools(ImagePool(cfg.pool_size), ImagePool(cfg.pool_size))

    # Data in RAM, a little larger than `size`, so that the random crop has room.
    t0 = time.time()
    stored = min(dataset.IMAGE_SIZE, cfg.size + cfg.size // 4)
    face_images = load_small(faces, "faces", data.train_faces, stored)
    emoji_images = load_small(emoji, "emoji", data.train_emoji, stored)
    log.info(f"{len(face_images)} faces and {len(emoji_images)} emoji loaded in {time.time() - t0:.1f}s")
    aug = sub_config(AugmentConfig, cfg, max_rotation_deg=0.0, brightness=0.0, contrast=0.0, saturation=0.0)
    face_ids, emoji_ids = torch.arange(len(face_images)), torch.arange(len(emoji_images))

    def pick(images: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return augment(dataset.to_float(images[random_batch(ids, cfg.batch_size)]).to(d.device), cfg.size, 1.0, aug)

    def step(step: int) -> dict[str, torch.Tensor]:
        for optimizer in (opt.g, opt.d):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, cfg)
        batch = Batch(pick(face_images, face_ids), pick(emoji_images, emoji_ids))
        return train_step(nets, batch, cfg, pools, opt.g, opt.d, opt.scaler_g, opt.scaler_d)

    def samples(step: int) -> None:
        G.eval()
        to_emoji, to_face = CycleGANTranslator(G.face_to_emoji), CycleGANTranslator(G.emoji_to_face)
        with torch.no_grad():
            fake_emoji = to_emoji(data.sample_faces.to(d.device))
            fake_faces = to_face(data.sample_emoji.to(d.device))
            rec_faces, rec_emoji = to_face(fake_emoji).cpu(), to_emoji(fake_faces).cpu()
        save_pairs(out / "samples" / f"faces-{step:08d}.png", data.sample_faces, [fake_emoji.cpu(), rec_faces])
        save_pairs(out / "samples" / f"emoji-{step:08d}.png", data.sample_emoji, [fake_faces.cpu(), rec_emoji])

    def load_state(extra: dict) -> None:
        opt.load_state(extra)
        pools.faces.load_state_dict(extra["pool_faces"], d.device)
        pools.emoji.load_state_dict(extra["pool_emoji"], d.device)

    trainer = run.Trainer(
        "train-cyclegan", cfg.steps, {"G": nets.G, "D": nets.D}, {"G": opt.g, "D": opt.d}, step,
        snapshot=lambda step: cyclegan_snapshot(G.face_to_emoji, step=step, **data.snapshot_extras()),
        snapshot_name="cyclegan.pt", log_every=cfg.log_every, checkpoint_every=cfg.checkpoint_every,
        keep_states=cfg.keep_states, snapshot_every=cfg.snapshot_every,
        samples=samples, sample_every=cfg.sample_every,
        state=lambda: opt.state() | {"pool_faces": pools.faces.state_dict(), "pool_emoji": pools.emoji.state_dict()},
        load_state=load_state, logged=lambda step: {"lr": lr_at(step, cfg)})
    return run.train(trainer, d, out, cfg.seed, resume, show_progress, stop)
