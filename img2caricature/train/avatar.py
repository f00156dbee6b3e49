"""Training the parametric avatar model: photo -> avatar parameters, without paired data.

After Wolf, Taigman & Polyak, "Unsupervised Creation of Parameterized Avatars" (ICCV 2017).
One run, one step counter, two phases:

1. steps 1..imitator_steps: the imitator c learns the renderer from crawled (parameters,
   render) pairs: L1 on pixels, plus f-constancy f(c(p)) ~ f(render(p)) so that c is
   faithful where the next phase looks; or, with `imitator = "features"`, c learns
   f(render(p)) itself (skipped when an imitator is given);
2. the rest: the encoder e (f(photo) -> parameters), with c frozen, on
       const * d(f(c(e(f(x)))), f(x))       f-constancy through the imitator, on photos
     + gan   * L_GAN(D(c(e(f(x)))))         D tells c(e(f(x))) from c(p) of crawled p
     + param * CE(e(f(render(p))), p)        on the avatar domain, where p is known
   (f(c(...)) is c's own output in "features" mode) and D on its own loss. D's real side is
   the imitator's drawing of crawled parameters, not the renders themselves: those are
   sharper than any c output, which would hand D a cue that says nothing about the parameters.

f is frozen throughout; f of every photo and every render is computed once (and kept in
`cache_dir`, keyed by f's fingerprint and the data, for the next run and for evaluation).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from img2caricature import checkpoint, dataset, losses
from img2caricature.avatar.face_encoder import f_from_record, f_record
from img2caricature.avatar.features import encode_records
from img2caricature.avatar.policy import GenderProbe, TraitPolicy, calibrate, read_policy
from img2caricature.avatar.space import ParamSpace, read_space
from img2caricature.batches import map_batches, random_batch
from img2caricature.errors import UserError
from img2caricature.grids import first_per_identity, save_pairs
from img2caricature.nets.avatar import (ImitatorConfig, ImitatorKind, ParamEncoder, ParamEncoderConfig, Relaxation,
                                        build_discriminator, build_imitator, parameter_loss, relax)
from img2caricature.nets.dtn import init_dcgan
from img2caricature.runtime import log
from img2caricature.split import split_faces_by_heldout
from img2caricature.train import run
from img2caricature.train.common import frozen

Renderer = Callable[[dict[str, str]], np.ndarray]   # traits by name -> uint8 (152, 152, 3) render


@dataclass
class AvatarConfig(run.Schedule):   # + log_every, sample_every, checkpoint_every, keep_states, seed, threads
    # what the model sets (empty: every parameter the crawl varied)
    traits: tuple[str, ...] = ()
    f: str = "default"                 # the face encoder, by name or encoder.pt path
    # networks
    imitator: ImitatorKind = "pixels"  # c draws pixels (the paper), or imitates f(render) itself
    image_size: int = 64               # pixels: the imitator's output side
    imitator_widths: tuple[int, ...] = (128, 64, 32, 16)   # pixels: channels from 4x4 up
    imitator_hidden: tuple[int, ...] = (512, 512)          # features: the MLP's hidden widths
    encoder_hidden: tuple[int, ...] = (256, 256)
    encoder_dropout: float = 0.1
    d_widths: tuple[int, ...] = (32, 64, 128, 256)         # pixels: D's channels; features: its hidden widths
    # phase 1: the imitator
    imitator_steps: int = 3000
    imitator_batch_size: int = 32
    imitator_lr: float = 1e-3
    imitator_f_weight: float = 1.0     # f-constancy of c against the real render (cosine distance)
    imitator_f_batch: int = 8          # ... on this many of each batch (f's backward costs more than c's)
    # phase 2: the encoder e, and D
    steps: int = 6000                  # in all, both phases
    batch_size: int = 16
    lr_e: float = 3e-4
    lr_d: float = 2e-4
    const_weight: float = 1.0
    const_distance: Literal["mse", "cosine"] = "cosine"
    gan_weight: float = 0.1
    param_weight: float = 1.0
    relaxation: Relaxation = "straight-through"
    tau: float = 1.0
    # from e's scores to traits (avatar/policy.py)
    policy: str = ""                   # trait policy: a packaged name or TOML path ("": configs/traits/avatar.toml; "none": e's argmax)
    gender_csv: str = ""               # `file,gender` labels of face photos, for the gender probe on f ("": no probe)
    gender_images: str = ""            # ... and their folder
    # data
    heldout_avatars: int = 256         # crawled avatars no phase trains on (imitator and e accuracy)
    max_avatars: int = 0               # use only the crawl's first N records (0: all); evaluate with --crawl-limit N
    cache_dir: str = "data/f-cache"    # f of photos and avatars, kept across runs ("" : not kept)
    n_samples: int = 8                 # photos in a sample grid (the other bookkeeping keys: run.Schedule's)


@dataclass
class Nets:
    f: nn.Module
    c: nn.Module
    e: ParamEncoder
    D: nn.Module
    space: ParamSpace
    c_cfg: ImitatorConfig

    def f_of(self, drawn: torch.Tensor) -> torch.Tensor:
        """f of the imitator's drawing (a features imitator draws f itself)."""
        return drawn if self.c_cfg.kind == "features" else self.f.encode(drawn)


def build_nets(f: nn.Module, f_dim: int, space: ParamSpace, cfg: AvatarConfig, device: torch.device) -> Nets:
    pixels = cfg.imitator == "pixels"
    c_cfg = ImitatorConfig(cfg.imitator, space.code_dim, cfg.image_size,
                           cfg.imitator_widths if pixels else cfg.imitator_hidden, f_dim)
    c = build_imitator(c_cfg)
    if pixels:
        init_dcgan(c)
    e = ParamEncoder(ParamEncoderConfig(f_dim, [space.sizes[i] for i in space.trait_index],
                                        cfg.encoder_hidden, cfg.encoder_dropout))
    D = build_discriminator(c_cfg, cfg.d_widths)
    f.eval()
    f.requires_grad_(False)
    return Nets(f.to(device), c.to(device), e.to(device), D.to(device), space, c_cfg)


# ---- phase 1: the imitator ---------------------------------------------------------------

def imitator_step(nets: Nets, params: torch.Tensor, target: torch.Tensor, f_target: torch.Tensor,
                  cfg: AvatarConfig, opt_c: torch.optim.Optimizer) -> dict[str, float]:
    """c on crawled (parameters, render at c's size, f of the full render)."""
    nets.c.train()
    drawn = nets.c(nets.space.one_hot(params))
    if nets.c_cfg.kind == "features":
        loss = losses.representation_distance(drawn, f_target, "cosine")
        parts = {"c/f_cos": loss.item()}
    else:
        loss = F.l1_loss(drawn, target)
        parts = {"c/L1": loss.item()}
    if nets.c_cfg.kind == "pixels" and cfg.imitator_f_weight > 0:
        k = cfg.imitator_f_batch
        const = losses.representation_distance(nets.f.encode(drawn[:k]), f_target[:k], "cosine")
        loss = loss + cfg.imitator_f_weight * const
        parts["c/f_cos"] = const.item()
    opt_c.zero_grad(set_to_none=True)
    loss.backward()
    opt_c.step()
    return parts


# ---- phase 2: the encoder ----------------------------------------------------------------

def draw(nets: Nets, f_photos: torch.Tensor, cfg: AvatarConfig) -> tuple[list[torch.Tensor], torch.Tensor]:
    """e's logits for these f(x), and c's drawing of the relaxed parameters."""
    logits = nets.e(f_photos)
    codes = [relax(l, cfg.relaxation, cfg.tau) for l in logits]
    return logits, nets.c(nets.space.code(codes))


def _bce(logits: torch.Tensor, real: bool) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits.float(), torch.full_like(logits.float(), float(real)))


def encoder_step(nets: Nets, f_photos: torch.Tensor, f_renders: torch.Tensor, render_traits: torch.Tensor,
                 real_codes: torch.Tensor, cfg: AvatarConfig, opt_e: torch.optim.Optimizer,
                 opt_d: torch.optim.Optimizer | None) -> dict[str, float]:
    """One step of e (and of D when the GAN term is on). c and f stay as they are. With
    neither f-constancy nor GAN, e learns from crawled avatars alone and c is never run."""
    nets.c.eval()   # frozen: its BatchNorm uses the statistics of real parameter codes
    nets.e.train()
    gan_on = cfg.gan_weight > 0 and opt_d is not None
    param = parameter_loss(nets.e(f_renders), render_traits)
    loss = cfg.param_weight * param
    parts: dict[str, float] = {"L_PARAM": param.item()}
    if cfg.const_weight > 0 or gan_on:
        _, fake = draw(nets, f_photos, cfg)
        const = losses.representation_distance(nets.f_of(fake), f_photos, cfg.const_distance)
        loss = loss + cfg.const_weight * const
        parts["L_CONST"] = const.item()
    if gan_on:
        nets.D.train()
        with torch.no_grad():
            real = nets.c(real_codes)
        loss_d = _bce(nets.D(real), True) + _bce(nets.D(fake.detach()), False)
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        with frozen(nets.D):
            gan = _bce(nets.D(fake), True)
        loss = loss + cfg.gan_weight * gan
        parts |= {"L_D": loss_d.item(), "L_GAN": gan.item()}
    opt_e.zero_grad(set_to_none=True)
    loss.backward()
    opt_e.step()   # opt_e holds e's parameters only: f and c never move
    return {"L_E": loss.item(), **parts}


@torch.no_grad()
def trait_accuracy(nets: Nets, f_renders: torch.Tensor, params: torch.Tensor) -> dict[str, float]:
    """How often e reads each trait back from held-out renders: e(f(render(p))) = p."""
    nets.e.eval()
    logits = nets.e(f_renders)
    out = {f"acc/{t}": float((l.argmax(1) == params[:, i]).float().mean())
           for t, l, i in zip(nets.space.traits, logits, nets.space.trait_index)}
    out["acc/mean"] = float(np.mean(list(out.values())))
    return out


# ---- snapshots ---------------------------------------------------------------------------

def avatar_snapshot(nets: Nets, f_rec: dict, policy: dict | None = None, gender: GenderProbe | None = None,
                    **extra) -> dict:
    return {"kind": "avatar", "space": nets.space.to_dict(),
            "encoder_config": dataclasses.asdict(nets.e.cfg),
            "encoder": {k: v.detach().cpu() for k, v in nets.e.state_dict().items()},
            "f": f_rec, "policy": policy, "gender_probe": gender.to_dict() if gender is not None else None,
            # a features imitator is small and lets the policy search by f-constancy at inference
            "imitator": ({"config": dataclasses.asdict(nets.c_cfg),
                          "state_dict": {k: v.detach().cpu().half() for k, v in nets.c.state_dict().items()}}
                         if nets.c_cfg.kind == "features" else None),
            **extra}


def gender_probe_on(f: nn.Module, cfg: AvatarConfig, device: torch.device) -> GenderProbe | None:
    """The probe on f that reads a photo's gender presentation, from the configured labels."""
    if not cfg.gender_csv:
        return None
    from img2caricature.evaluate.attributes import encode_labelled

    return GenderProbe.fit(*encode_labelled(f, Path(cfg.gender_csv), Path(cfg.gender_images), device))


@torch.no_grad()
def calibrated_policy(nets: Nets, policy: TraitPolicy | None, gender: GenderProbe | None,
                      f_photos: torch.Tensor) -> dict | None:
    """The policy with its thresholds set on the training photos' scores."""
    if policy is None:
        return None
    nets.e.eval()
    device = next(nets.e.parameters()).device
    logits = [l.cpu() for l in map_batches(lambda x: torch.cat(nets.e(x), 1), f_photos, 512, device).split(
        [nets.space.sizes[i] for i in nets.space.trait_index], 1)]
    genders = gender.predict(f_photos) if gender is not None else [None] * len(f_photos)
    return dataclasses.replace(policy, thresholds=calibrate(nets.space, logits, policy, genders)).to_dict()


def imitator_snapshot(nets: Nets, **extra) -> dict:
    return {"kind": "avatar-imitator", "space": nets.space.to_dict(), "config": dataclasses.asdict(nets.c_cfg),
            "state_dict": {k: v.detach().cpu() for k, v in nets.c.state_dict().items()}, **extra}


def load_imitator_into(nets: Nets, path: Path) -> None:
    snap = checkpoint.load(path)
    if snap.get("kind") != "avatar-imitator":
        raise UserError(f"{path} is not an imitator.pt from `img2car train-avatar`")
    if snap["config"] != dataclasses.asdict(nets.c_cfg):
        raise UserError(f"{path} is another kind or size of imitator than this config's ({nets.c_cfg.kind}): "
                        f"{snap['config']}")
    space = ParamSpace.from_dict(snap["space"])
    if (space.names, space.values) != (nets.space.names, nets.space.values):
        raise UserError(f"{path} imitates another parameter space than the crawl's")
    nets.c.load_state_dict(snap["state_dict"])


# ---- data --------------------------------------------------------------------------------

def heldout_names(f_rec: dict) -> list[str]:
    """People no model may train on: f's own held-out identities, else the shipped model's (the
    project's standard 30), so every figure is measured on people nothing saw. The shipped
    model keeps them itself, or (before 2026-12-03, a compact f) in its f."""
    embedded = f_rec.get("embedded") or {}
    if "heldout_identities" in embedded:
        return list(embedded["heldout_identities"])
    from img2caricature.caricature import default_model_path

    if default_model_path().is_file():
        shipped = checkpoint.load(default_model_path())
        return list(shipped.get("heldout_identities") or shipped["encoder"].get("heldout_identities", []))
    return []


def train_avatar(faces: Path, emoji: Path, out: Path, cfg: AvatarConfig, resume: bool = False,
                 device_name: str = "auto", imitator: Path | None = None, render: Renderer | None = None,
                 show_progress: bool = True, stop: run.StopEarly | None = None) -> dict[str, float]:
    d, out = run.start(out, cfg, resume, device_name)
    if d.world > 1:
        raise UserError("train-avatar runs in one process (its networks are small): no torchrun")
    device = d.device
    dataset.info(faces, "faces")
    space = read_space(emoji, list(cfg.traits) or None)
    f_rec = f_record(cfg.f)
    f = f_from_record(f_rec)
    nets = build_nets(f, f_rec["dim"], space, cfg, device)
    phase1 = 0 if imitator is not None else cfg.imitator_steps
    if imitator is not None:
        load_imitator_into(nets, imitator)
    if cfg.steps <= phase1:
        raise UserError(f"steps ({cfg.steps}) must be more than imitator_steps ({phase1}): e needs steps too")

    # data: photos of training identities; crawled avatars minus a held-out few
    held_ids = heldout_names(f_rec)
    train_faces, held_faces = split_faces_by_heldout(faces, held_ids)
    n_avatars = min(dataset.info(emoji).count, cfg.max_avatars or dataset.info(emoji).count)
    order = np.random.default_rng(cfg.seed).permutation(n_avatars)
    held_av, train_av = np.sort(order[:cfg.heldout_avatars]), np.sort(order[cfg.heldout_avatars:])
    if len(train_faces) == 0 or len(train_av) == 0:
        raise UserError("no training photos or avatars left after holding some out")
    params = torch.from_numpy(dataset.read_column(emoji, "params", "emoji").astype(np.int64))
    t0 = time.time()
    cache = Path(cfg.cache_dir) if cfg.cache_dir else None
    f_key = f_rec["fingerprint"]
    f_faces, _ = encode_records(f, f_key, faces, "faces", train_faces, cfg.image_size, cache, device, "f(photos)")
    f_all, small_all = encode_records(f, f_key, emoji, "emoji", np.arange(n_avatars), cfg.image_size, cache, device,
                                      "f(avatars)")
    f_av, small_av, f_av_held, small_av_held = f_all[train_av], small_all[train_av], f_all[held_av], small_all[held_av]
    p_av, p_av_held = params[train_av], params[held_av]
    log.info(f"f of {len(f_faces)} photos and {n_avatars} avatars ready in {time.time() - t0:.1f}s")
    policy = None if cfg.policy == "none" else read_policy(cfg.policy)
    gender = gender_probe_on(nets.f, cfg, device)

    labels = dataset.read_column(faces, "labels", "faces")
    pool = held_faces if len(held_faces) else train_faces
    sample_idx = first_per_identity(pool, labels, cfg.n_samples)
    sample_faces = dataset.to_float(dataset.load_images(faces, "faces", sample_idx))
    with torch.no_grad():
        f_sample = nets.f.encode(sample_faces.to(device))
    held_f_photos = encode_records(f, f_key, faces, "faces", held_faces, cfg.image_size, cache, device,
                                   "f(held-out photos)")[0] if len(held_faces) else f_sample.cpu()

    opt_c = torch.optim.Adam(nets.c.parameters(), lr=cfg.imitator_lr)
    opt_e = torch.optim.Adam(nets.e.parameters(), lr=cfg.lr_e)
    opt_d = torch.optim.Adam(nets.D.parameters(), lr=cfg.lr_d, betas=(0.5, 0.999))
    trait_cols = torch.tensor(space.trait_index)
    face_ids, av_ids = torch.arange(len(f_faces)), torch.arange(len(f_av))
    phase = {"imitator_steps": phase1}   # steps 1..this train c, the rest e and D; a resumed run keeps its own
    pixels = nets.c_cfg.kind == "pixels"
    straight = dataclasses.replace(cfg, relaxation="straight-through")   # samples and figures: hard choices

    def step(step: int) -> dict[str, torch.Tensor]:
        if step <= phase["imitator_steps"]:
            ai = random_batch(av_ids, cfg.imitator_batch_size)
            return imitator_step(nets, p_av[ai].to(device), dataset.to_float(small_av[ai]).to(device),
                                 f_av[ai].to(device), cfg, opt_c)
        fi, ai, ri = (random_batch(face_ids, cfg.batch_size), random_batch(av_ids, cfg.batch_size),
                      random_batch(av_ids, cfg.batch_size))
        return encoder_step(nets, f_faces[fi].to(device), f_av[ai].to(device), p_av[ai][:, trait_cols].to(device),
                            space.one_hot(p_av[ri]).to(device), cfg, opt_e, opt_d)

    def drawn_held_avatars(n: int | None = None) -> torch.Tensor:
        """The imitator's drawings of the held-out avatars' parameters (the first n)."""
        return map_batches(lambda p: nets.c(space.one_hot(p)), p_av_held[:n], 128, device)

    @torch.no_grad()
    def evaluate(step: int) -> dict[str, float]:
        nets.c.eval()
        nets.e.eval()
        figures: dict[str, float] = {}
        if len(held_av):
            drawn = drawn_held_avatars()
            if pixels:
                figures["held/c_L1"] = F.l1_loss(drawn, dataset.to_float(small_av_held)).item()
            n = len(drawn) if not pixels else 64   # f of drawn pixels costs: a sample of them
            figures["held/c_f_cos"] = losses.representation_distance(
                map_batches(nets.f_of, drawn[:n], 64, device), f_av_held[:n], "cosine").item()
            figures |= {f"held/{k}": v for k, v in trait_accuracy(nets, f_av_held.to(device),
                                                                  p_av_held.to(device)).items()}
        if step > phase["imitator_steps"]:
            some = held_f_photos[:128].to(device)
            _, fake = draw(nets, some, straight)
            figures["held/photo_const"] = losses.representation_distance(nets.f_of(fake), some,
                                                                         cfg.const_distance).item()
        return figures

    @torch.no_grad()
    def samples(step: int) -> None:
        nets.c.eval()
        nets.e.eval()
        if len(held_av) and pixels:
            save_pairs(out / "samples" / f"imitator-{step:08d}.png", dataset.to_float(small_av_held[:16]),
                       drawn_held_avatars(16), pairs_per_row=8)
        if step > phase["imitator_steps"]:
            logits, drawn = draw(nets, f_sample, straight)
            columns = [drawn.cpu()] if pixels else []
            if render is not None:
                chosen = torch.stack([l.argmax(1) for l in logits], 1).cpu()
                renders = np.stack([render(space.choice(row.tolist())) for row in chosen])
                columns.append(dataset.to_float(torch.from_numpy(renders).permute(0, 3, 1, 2)))
            if columns:
                save_pairs(out / "samples" / f"photos-{step:08d}.png", sample_faces, columns, pairs_per_row=4,
                           size=96)

    def snapshot(step: int) -> dict:
        return avatar_snapshot(nets, f_rec, calibrated_policy(nets, policy, gender, f_faces), gender, step=step,
                               faces=str(faces), emoji=str(emoji), heldout_identities=held_ids,
                               heldout_avatars=held_av.tolist())

    def save_imitator(step: int) -> None:   # beside the model: a later run may start from it (--imitator)
        checkpoint.save_atomic(imitator_snapshot(nets, step=min(step, phase["imitator_steps"])), out / "imitator.pt")

    trainer = run.Trainer(
        "train-avatar", cfg.steps, {"c": nets.c, "e": nets.e, "D": nets.D}, {"c": opt_c, "e": opt_e, "D": opt_d},
        step, snapshot=snapshot, snapshot_name="avatar.pt", log_every=cfg.log_every,
        checkpoint_every=cfg.checkpoint_every, keep_states=cfg.keep_states, snapshot_every=cfg.snapshot_every,
        samples=samples, sample_every=cfg.sample_every, evaluate=evaluate,
        state=lambda: dict(phase), load_state=lambda extra: phase.update(imitator_steps=int(
            extra.get("imitator_steps", phase["imitator_steps"]))),
        also_save=save_imitator)
    return run.train(trainer, d, out, cfg.seed, resume, show_progress, stop)
