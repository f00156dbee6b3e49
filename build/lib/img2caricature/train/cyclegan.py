"""Training the CycleGAN baseline (Zhu et al. 2017) between faces and emoji.

The step is written out in order: both generators on
    L_GAN (least squares) + cycle_weight * L_CYC (L1) + cycle_weight * identity_weight * L_IDT (L1),
then both PatchGAN discriminators on real images against fakes drawn through a history pool.
Faces and emoji are downscaled to `size` (64 in the compact config, so a CPU can train it),
augmented by a flip and a small random crop, as in the paper's resize-and-crop.
The run directory, checkpoints, logging and sample grids are the DTN's (train/run.py et al.).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from img2caricature import checkpoint, dataset
from img2caricature.errors import UserError
from img2caricature.losses import lsgan_loss
from img2caricature.nets.cyclegan import (CycleGANTranslator, PatchDiscriminator, PatchDiscriminatorConfig,
                                          ResnetGenerator, ResnetGeneratorConfig, cyclegan_snapshot)
from img2caricature.nets.dtn import init_dcgan
from img2caricature.runtime import log, seed_everything
from img2caricature.train import distributed, run
from img2caricature.train.augment import AugmentConfig, augment
from img2caricature.train.common import autocast, grad_scaler, random_batch, sub_config
from img2caricature.train.curves import write_curves
from img2caricature.train.common import downscale
from img2caricature.train.split import first_per_identity, split_faces_by_heldout
from img2caricature.train.pool import ImagePool
from img2caricature.train.samples import save_pairs


@dataclass
class CycleGANConfig:
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
    # data
    heldout_emoji: int = 64        # emoji kept out of training (the DTN's split for the same seed and count)
    # bookkeeping
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 500
    keep_states: int = 2
    n_samples: int = 16
    seed: int = 0
    threads: int = 0


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
                     ) -> tuple[torch.Tensor, dict[str, float], dict[str, torch.Tensor]]:
    out = nets.G(batch.faces, batch.emoji, identity=cfg.identity_weight > 0)
    d_faces, d_emoji = nets.D(out["fake_faces"], out["fake_emoji"])
    gan_emoji, gan_faces = lsgan_loss(d_emoji, True), lsgan_loss(d_faces, True)
    l1 = lambda a, b: F.l1_loss(a.float(), b.float())  # noqa: E731
    cyc_faces, cyc_emoji = l1(out["rec_faces"], batch.faces), l1(out["rec_emoji"], batch.emoji)
    idt = l1(out["same_emoji"], batch.emoji) + l1(out["same_faces"], batch.faces) if "same_emoji" in out \
        else torch.zeros((), device=batch.faces.device)
    gan, cyc = gan_emoji + gan_faces, cyc_faces + cyc_emoji
    total = gan + cfg.cycle_weight * cyc + cfg.cycle_weight * cfg.identity_weight * idt
    parts = {"L_G": total.item(), "L_GAN": gan.item(), "L_CYC": cyc.item(), "L_IDT": idt.item(),
             "G/gan_emoji": gan_emoji.item(), "G/gan_faces": gan_faces.item(),
             "G/cycle_faces": cyc_faces.item(), "G/cycle_emoji": cyc_emoji.item()}
    return total, parts, out


def discriminator_losses(nets: Nets, batch: Batch, fake_faces: torch.Tensor, fake_emoji: torch.Tensor
                         ) -> tuple[torch.Tensor, dict[str, float]]:
    """Each D: least squares, real -> 1 and fake -> 0, halved (the paper slows D down so)."""
    n = len(batch.faces)
    d_faces, d_emoji = nets.D(torch.cat([batch.faces, fake_faces]), torch.cat([batch.emoji, fake_emoji]))
    loss_faces = 0.5 * (lsgan_loss(d_faces[:n], True) + lsgan_loss(d_faces[n:], False))
    loss_emoji = 0.5 * (lsgan_loss(d_emoji[:n], True) + lsgan_loss(d_emoji[n:], False))
    total = loss_faces + loss_emoji
    return total, {"L_D": total.item(), "D/faces": loss_faces.item(), "D/emoji": loss_emoji.item()}


def generator_step(nets: Nets, batch: Batch, cfg: CycleGANConfig, opt_g: torch.optim.Optimizer,
                   scaler: torch.amp.GradScaler) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
    with autocast(batch.faces.device):
        loss, parts, out = generator_losses(nets, batch, cfg)
    opt_g.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(opt_g)  # opt_g holds the generators only: the D's get gradients here but no update
    scaler.update()
    return parts, out


def discriminator_step(nets: Nets, batch: Batch, fake_faces: torch.Tensor, fake_emoji: torch.Tensor,
                       opt_d: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> dict[str, float]:
    with autocast(batch.faces.device):
        loss, parts = discriminator_losses(nets, batch, fake_faces.detach(), fake_emoji.detach())
    opt_d.zero_grad(set_to_none=True)  # also drops what the generator step left in D
    scaler.scale(loss).backward()
    scaler.step(opt_d)
    scaler.update()
    return parts


def train_step(nets: Nets, batch: Batch, cfg: CycleGANConfig, pools: Pools, opt_g, opt_d,
               scaler_g, scaler_d) -> dict[str, float]:
    nets.G.train()
    nets.D.train()
    parts, out = generator_step(nets, batch, cfg, opt_g, scaler_g)
    fake_faces, fake_emoji = pools.faces.query(out["fake_faces"]), pools.emoji.query(out["fake_emoji"])
    parts.update(discriminator_step(nets, batch, fake_faces, fake_emoji, opt_d, scaler_d))
    return parts


def split_emoji(count: int, heldout: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) record indices; the DTN's split, so both models hold out the same emoji."""
    order = np.random.default_rng(seed).permutation(count)
    return np.sort(order[heldout:]), np.sort(order[:heldout])


def load_small(path: Path, kind: dataset.Kind, indices: np.ndarray, size: int, chunk: int = 512) -> torch.Tensor:
    """Records `indices` as uint8 images of side `size`, read in chunks (the full-size set needn't fit in RAM)."""
    parts = [downscale(dataset.load_images(path, kind, indices[i:i + chunk]), size)
             for i in range(0, len(indices), chunk)]
    return torch.cat(parts) if parts else torch.empty(0, 3, size, size, dtype=torch.uint8)


def train_cyclegan(faces: Path, emoji: Path, out: Path, cfg: CycleGANConfig, encoder_path: Path | None = None,
                   resume: bool = False, device_name: str = "auto", show_progress: bool = True,
                   stop: run.StopEarly | None = None) -> dict[str, float]:
    """`encoder_path` is optional: only its held-out identities are read, and kept out of
    training, so that evaluation can use people no model saw."""
    d = distributed.setup(device_name)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = run.prepare_run_dir(Path(out), cfg, resume, d.is_main)
    seed_everything(cfg.seed)

    dataset.info(faces, "faces"), dataset.info(emoji, "emoji")  # kind checks before any heavy work
    heldout_identities: list[str] | None = None
    if encoder_path is not None:
        enc_snapshot = checkpoint.load(encoder_path)
        if enc_snapshot.get("kind") != "encoder":
            raise UserError(f"{encoder_path} is not an encoder checkpoint (from `img2car pretrain-encoder`)")
        heldout_identities = list(enc_snapshot.get("heldout_identities", []))
    train_faces, held_faces = split_faces_by_heldout(faces, heldout_identities or [])
    train_emoji, held_emoji = split_emoji(dataset.info(emoji).count, cfg.heldout_emoji, cfg.seed)
    if len(train_faces) == 0 or len(train_emoji) == 0:
        raise UserError("no training faces or emoji left after holding some out")

    G, D = build_nets(cfg, d.device)
    nets = Nets(distributed.wrap(G, d), distributed.wrap(D, d))
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2))
    scaler_g, scaler_d = grad_scaler(d.device), grad_scaler(d.device)
    pools = Pools(ImagePool(cfg.pool_size), ImagePool(cfg.pool_size))

    # Data in RAM, a little larger than `size`, so that the random crop has room.
    t0 = time.time()
    stored = min(dataset.IMAGE_SIZE, cfg.size + cfg.size // 4)
    face_images = load_small(faces, "faces", train_faces, stored)
    emoji_images = load_small(emoji, "emoji", train_emoji, stored)
    log.info(f"{len(face_images)} faces and {len(emoji_images)} emoji loaded in {time.time() - t0:.1f}s")
    aug = sub_config(AugmentConfig, cfg, max_rotation_deg=0.0, brightness=0.0, contrast=0.0, saturation=0.0)

    labels = dataset.read_column(faces, "labels", "faces")
    sample_faces = dataset.to_float(dataset.load_images(
        faces, "faces", first_per_identity(held_faces if len(held_faces) else train_faces, labels, cfg.n_samples)))
    sample_emoji = dataset.to_float(dataset.load_images(
        emoji, "emoji", (held_emoji if len(held_emoji) else train_emoji)[:cfg.n_samples]))

    start = 0
    metrics_log = run.MetricsLog(out / "metrics.jsonl", enabled=d.is_main)
    torch.manual_seed(cfg.seed * 1000 + d.rank)
    modules = {"G": nets.G, "D": nets.D}
    optimizers = {"G": opt_g, "D": opt_d}
    if resume:
        start, extra = run.load_state(out, modules, optimizers, d.device)
        scaler_g.load_state_dict(extra["scaler_g"]), scaler_d.load_state_dict(extra["scaler_d"])
        pools.faces.load_state_dict(extra["pool_faces"], d.device)
        pools.emoji.load_state_dict(extra["pool_emoji"], d.device)
        metrics_log.trim_after(start)

    face_ids, emoji_ids = torch.arange(len(face_images)), torch.arange(len(emoji_images))
    running: dict[str, float] = {}
    n_running = 0

    def pick(images: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        return augment(dataset.to_float(images[random_batch(ids, cfg.batch_size)]).to(d.device), cfg.size, 1.0, aug)

    def next_batch() -> Batch:
        return Batch(pick(face_images, face_ids), pick(emoji_images, emoji_ids))

    def step_fn(step: int) -> dict[str, float]:
        nonlocal n_running
        for opt in (opt_g, opt_d):
            for group in opt.param_groups:
                group["lr"] = lr_at(step, cfg)
        parts = train_step(nets, next_batch(), cfg, pools, opt_g, opt_d, scaler_g, scaler_d)
        for k, v in parts.items():
            running[k] = running.get(k, 0.0) + v
        n_running += 1
        return {k: parts[k] for k in ("L_D", "L_GAN", "L_CYC", "L_IDT")} | parts

    def log_losses(step: int) -> None:
        nonlocal n_running
        metrics_log.write(step, {k: v / max(1, n_running) for k, v in running.items()}
                          | {"lr": lr_at(step, cfg), "elapsed_s": time.time() - t0})
        running.clear()
        n_running = 0

    def samples(step: int) -> None:
        if not d.is_main:
            return
        G.eval()
        to_emoji, to_face = CycleGANTranslator(G.face_to_emoji), CycleGANTranslator(G.emoji_to_face)
        with torch.no_grad():
            fake_emoji = to_emoji(sample_faces.to(d.device))
            fake_faces = to_face(sample_emoji.to(d.device))
            rec_faces, rec_emoji = to_face(fake_emoji).cpu(), to_emoji(fake_faces).cpu()
        save_pairs(out / "samples" / f"faces-{step:08d}.png", sample_faces, [fake_emoji.cpu(), rec_faces])
        save_pairs(out / "samples" / f"emoji-{step:08d}.png", sample_emoji, [fake_faces.cpu(), rec_emoji])
        write_curves(out)

    def save(step: int) -> None:
        if d.is_main:
            held = {} if heldout_identities is None else {"heldout_identities": heldout_identities}
            run.save_run(out, step, modules, optimizers, keep=cfg.keep_states,
                         extra={"scaler_g": scaler_g.state_dict(), "scaler_d": scaler_d.state_dict(),
                                "pool_faces": pools.faces.state_dict(), "pool_emoji": pools.emoji.state_dict()},
                         snapshot=cyclegan_snapshot(G.face_to_emoji, step=step, faces=str(faces), emoji=str(emoji),
                                                    heldout_emoji=held_emoji.tolist(), **held),
                         snapshot_name="cyclegan.pt")
        distributed.barrier(d)

    last = run.run_steps(step_fn, start, cfg.steps,
                         [run.Every(cfg.log_every, log_losses), run.Every(cfg.sample_every, samples),
                          run.Every(cfg.checkpoint_every, save)],
                         desc="train-cyclegan", show=show_progress and d.is_main, stop=stop)
    distributed.teardown(d)
    return last
