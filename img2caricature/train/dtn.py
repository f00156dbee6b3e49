"""Training the Domain Transfer Network: g and D against a frozen, pretrained f.

The step is written out in order: D on (g(f(s)), g(f(t)), t) with its three classes,
then g on L_GANG + alpha L_CONST + beta L_TID + gamma L_TV. f(s) and f(t) of real
images never change (f is frozen), so they are computed once before the first step.
Setup, resume, logging, saving and teardown are the trainer skeleton's (train/run.py); the
held-out people and emoji are the split file's (img2caricature/split.py).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from img2caricature import dataset, losses, registry
from img2caricature.batches import downscale, map_batches, random_batch
from img2caricature.errors import UserError
from img2caricature.grids import save_pairs
from img2caricature.nets.dtn import (REAL_TARGET, Discriminator, DiscriminatorConfig, Generator,
                                     GeneratorConfig, init_dcgan)
from img2caricature.nets.colour_code import ColourCode, Domain, read_colours
from img2caricature.nets.encoder import Encoder
from img2caricature.runtime import log
from img2caricature.train import distributed, run
from img2caricature.train.common import GANOptimizers, autocast, detached, frozen, optimizer_step
from img2caricature.train.diffaugment import diff_augment
from img2caricature.train.precision import CpuBf16
from img2caricature.train.split import translator_data
from img2caricature.translate import dtn_snapshot, g_input, snapshot_colour


@dataclass
class DTNConfig(run.Schedule):   # + log_every, sample_every, checkpoint_every, keep_states, n_samples, seed, threads
    # networks
    output_size: int = 64
    g_widths: tuple[int, ...] = (256, 128, 64, 32)
    g_last_up: Literal["transposed", "subpixel"] = "transposed"   # nets/dtn.py's GeneratorConfig.last_up
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
    cpu_bf16: CpuBf16 = "auto"  # bfloat16 autocast on the CPU: true, false, or "auto" (where measured faster)
    channels_last: bool = True  # NHWC images and weights: oneDNN's (CPU) and cuDNN's (mixed precision)
                                # convolutions run faster in it; the arithmetic is the same
    # D for a small target set, and g's moving average
    diffaugment: str = ""       # DiffAugment policy for all D sees, e.g. "color,translation,cutout"; "" = off
    r1_gamma: float = 0.0       # R1 penalty on real emoji: gamma/2 |grad log p(real)|^2; 0 = off
    r1_every: int = 4           # lazy R1 (StyleGAN2): every N D steps, weighted by N
    ema_decay: float = 0.999    # g_ema <- decay g_ema + (1 - decay) g after every step; 0 = no EMA
    # colour: g also reads skin and hair colour from the pixels (nets/colour_code.py), and
    # L_COLOUR asks the emoji drawn from a photo to carry the photo's (mapped) colours
    colour_code: bool = False
    colour_weight: float = 1.0  # L_COLOUR's weight in g's loss (squared error in emoji standard deviations)
    # a second eye on identity: L_CONST2 = d(f2(s), f2(g(f(s)))), f2 an encoder.pt, a published
    # f's name, or a dtn.pt (its f). f2 only judges unless g_reads_f2: g cannot then write
    # the person in details that one f reads and other eyes do not. "" = off.
    second_f: str = ""
    alpha2: float = 15.0        # L_CONST2's weight (ramped with alpha)
    # g also reads f2(x) beside f(x): what f2 sees and f ignores (dlib's f: the hair's shape,
    # the crop outside the face) can then reach the drawing; f2 rides in the model file
    g_reads_f2: bool = False
    # warm start: a trained dtn.pt (same f) whose g (its moving average) seeds every layer of
    # this g it has, and whose colour code this run keeps; a 64-px g so starts a "subpixel"
    # 128-px one as itself enlarged. D starts fresh. "" = g from scratch.
    init_from: str = ""
    # (the held-out people and emoji are the split file's)


@dataclass
class Nets:
    f: Encoder
    g: nn.Module
    D: nn.Module
    g_ema: nn.Module | None = None   # the moving average of g: samples, evaluation and snapshots use it
    colour: ColourCode | None = None  # fitted, fixed: the colour code beside f(x) in g's input
    f2: Encoder | None = None   # the second f of L_CONST2, frozen; None when off


@dataclass
class Batch:
    """One step's data. f_source / f_target are g's inputs from s and t: f(x), then the colour
    code when the model has one; target is t at g's output size; f2_source is f2(s) when
    L_CONST2 is on."""
    f_source: torch.Tensor
    f_target: torch.Tensor
    target: torch.Tensor
    f2_source: torch.Tensor | None = None


def build_nets(f: Encoder, cfg: DTNConfig, device: torch.device, colour: ColourCode | None = None,
               f2: Encoder | None = None) -> Nets:
    """`colour`: a fitted colour code, when cfg.colour_code asks for one; `f2`: L_CONST2's f."""
    input_dim = f.dim + (colour.dim if colour is not None else 0) + (f2.dim if cfg.g_reads_f2 else 0)
    g = Generator(GeneratorConfig(input_dim=input_dim, output_size=cfg.output_size, widths=cfg.g_widths,
                                  last_up=cfg.g_last_up))
    D = Discriminator(DiscriminatorConfig(input_size=cfg.output_size, widths=cfg.d_widths))
    init_dcgan(g)
    init_dcgan(D)
    def place(net: nn.Module) -> nn.Module:
        net = net.to(device)
        return net.to(memory_format=torch.channels_last) if cfg.channels_last else net

    f, g, D = place(f.eval().requires_grad_(False)), place(g), place(D)
    f2 = place(f2.eval().requires_grad_(False)) if f2 is not None else None
    g_ema = copy.deepcopy(g).eval().requires_grad_(False) if cfg.ema_decay > 0 else None
    return Nets(f, g, D, g_ema=g_ema, colour=colour.to(device) if colour is not None else None, f2=f2)


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


def warm_start(g: nn.Module, snapshot: dict, encoder_snapshot: dict, f2_inputs: int = 0) -> None:
    """g's layers from a trained DTN snapshot's g (in place): every layer they share must match
    in shape, and the only layers g may lack a value for are the subpixel head's. `f2_inputs`: g reads f2(x)
    too and init_from's g did not: its input layer gains that many rows, at zero."""
    if snapshot.get("kind") != "dtn":
        raise UserError(f"init_from must be a DTN snapshot (dtn.pt), got kind {snapshot.get('kind')!r}")
    if snapshot["encoder"]["config"] != encoder_snapshot["config"]:
        raise UserError("init_from was trained with another f than this run's --encoder")
    state = dict(snapshot["state_dicts"]["generator"])
    own = g.state_dict()
    first = next(iter(own))   # g's input layer: its rows are g's input features
    theirs, ours = state.get(first), own[first]
    if f2_inputs and theirs is not None and theirs.shape[0] + f2_inputs == ours.shape[0]:
        # g now reads more (f2(x) after f(x) and the colour code): the new rows start at zero,
        # so the warm-started g draws exactly what init_from's g drew
        state[first] = torch.cat([theirs, theirs.new_zeros(ours.shape[0] - theirs.shape[0], *theirs.shape[1:])])
        log.info(f"g's input grew from {theirs.shape[0]} to {ours.shape[0]} features (the new ones start at zero)")
    wrong = [k for k, v in state.items() if k not in own or own[k].shape != v.shape]
    if wrong:
        raise UserError(f"init_from's g does not fit this g (its input: f and the colour code; its widths): "
                        f"{', '.join(wrong[:4])}")
    missing = g.load_state_dict(state, strict=False).missing_keys
    if any(not k.startswith("detail.") for k in missing):
        raise UserError(f"init_from's g lacks layers this g needs: {', '.join(missing[:4])} (a 64-px g starts "
                        "a 128-px one only with g_last_up = \"subpixel\")")
    new = f"; new: {len(missing)} tensors of the detail head" if missing else ""
    log.info(f"g warm-started from a {snapshot['config']['generator']['output_size']}-px g "
             f"at step {snapshot.get('step')}{new}")


def second_f_snapshot(name_or_path: str) -> dict:
    """L_CONST2's f: an encoder snapshot or published name, or the f inside a DTN snapshot."""
    if Path(name_or_path).is_file():
        snap = registry.load_snapshot(name_or_path, "cpu")
        if snap.get("kind") == "dtn":
            return snap["encoder"]
        if snap.get("kind") == "encoder":
            return snap
    return registry.load_encoder_snapshot(name_or_path)   # a published name, or says what is wrong


def fit_colour_code(face_colours: torch.Tensor, emoji_colours: torch.Tensor) -> ColourCode:
    """The colour code fitted on read_colours of the training photos and emoji."""
    colour = ColourCode().fit(face_colours, emoji_colours)
    log.info("colour code: training photos' skin L* median "
             f"{colour.photo_quantiles[len(colour.photo_quantiles) // 2, 0]:.1f} -> emoji "
             f"{colour.emoji_quantiles[len(colour.emoji_quantiles) // 2, 0]:.1f}")
    return colour


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
                       step: int | None = None) -> dict[str, torch.Tensor]:
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
        parts["R1"] = penalty
    optimizer_step(loss, opt_d, scaler)
    return detached(parts)


def const_weight(step: int, cfg: DTNConfig) -> float:
    """alpha, ramped in: a small f is easy to fool, and an early, strong L_CONST teaches g
    adversarial textures before L_TID and L_GANG have taught it what an emoji looks like."""
    if cfg.const_ramp_steps <= 0:
        return cfg.alpha
    return cfg.alpha * min(1.0, step / cfg.const_ramp_steps)


def generator_losses(nets: Nets, batch: Batch, cfg: DTNConfig, alpha: float | None = None,
                     fakes: Fakes | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    from_source, from_target = generate(nets, batch) if fakes is None else fakes   # g(f(s)), g(f(t))
    # D sees the same mix as in its own step (real emoji included), so its BatchNorm
    # statistics match; a batch of fakes alone would be normalised differently and
    # g could satisfy L_GANG against a D that does not exist.
    with frozen(nets.D) as D:
        logits = discriminate(D, torch.cat([from_source, from_target, batch.target]), cfg)
    ls, lt, _ = logits.split(len(from_source))
    gang = losses.dtn_gang_loss(ls, lt)
    f_dim = nets.f.dim
    const = losses.representation_distance(nets.f.encode(from_source), batch.f_source[:, :f_dim], cfg.const_distance)
    tid = F.mse_loss(from_target.float(), batch.target.float())
    tv = losses.total_variation(torch.cat([from_source, from_target]).float())
    alpha = cfg.alpha if alpha is None else alpha
    total = gang + alpha * const + cfg.beta * tid + cfg.gamma * tv
    parts = {"L_G": total, "L_GANG": gang, "L_CONST": const, "L_TID": tid, "L_TV": tv}
    if nets.f2 is not None:   # the second eye, ramped in with alpha
        const2 = losses.representation_distance(nets.f2.encode(from_source), batch.f2_source, cfg.const_distance)
        total = total + cfg.alpha2 * (alpha / cfg.alpha if cfg.alpha else 1.0) * const2
        parts |= {"L_G": total, "L_CONST2": const2}
    if nets.colour is not None:   # the emoji's colours, read as an emoji's, against the photo's mapped ones
        colour = F.mse_loss(nets.colour(from_source, "emoji"), batch.f_source[:, f_dim:].float())
        total = total + cfg.colour_weight * colour
        parts |= {"L_G": total, "L_COLOUR": colour}
    return total, detached(parts)


def generator_step(nets: Nets, batch: Batch, cfg: DTNConfig, opt_g: torch.optim.Optimizer,
                   scaler: torch.amp.GradScaler, alpha: float | None = None,
                   fakes: Fakes | None = None) -> dict[str, torch.Tensor]:
    with autocast(batch.target.device, cfg.cpu_bf16):
        loss, parts = generator_losses(nets, batch, cfg, alpha, fakes)
    optimizer_step(loss, opt_g, scaler)  # opt_g holds g's parameters only
    return parts


def train_step(nets: Nets, batch: Batch, cfg: DTNConfig, opt_g, opt_d, scaler_g, scaler_d,
               step: int | None = None) -> dict[str, torch.Tensor]:
    nets.g.train()
    nets.D.train()
    if cfg.channels_last:  # g's outputs already are; D sees real emoji in one batch with them
        batch = dataclasses.replace(batch, target=batch.target.contiguous(memory_format=torch.channels_last))
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


def train_dtn(faces: Path, emoji: Path, encoder_path: Path | str, out: Path, cfg: DTNConfig, resume: bool = False,
              device_name: str = "auto", show_progress: bool = True,
              stop: run.StopEarly | None = None, split_path: Path | None = None) -> dict[str, float]:
    """`encoder_path`: an encoder.pt, or a published f's name (registry.ENCODERS, e.g.
    dlib-resnet-v1). `split_path`: the split file (default: beside `faces`; made if missing)."""
    d, out = run.start(out, cfg, resume, device_name)
    enc_snapshot = registry.load_encoder_snapshot(encoder_path)
    f = registry.encoder_from_snapshot(enc_snapshot)
    if cfg.g_reads_f2 and not cfg.second_f:
        raise UserError("g_reads_f2 = true needs second_f (the f2 that g is to read)")
    f2_snapshot = registry.upgrade(second_f_snapshot(cfg.second_f)) if cfg.second_f else None
    f2 = registry.encoder_from_snapshot(f2_snapshot) if f2_snapshot is not None else None
    f2_in_g = f2 if cfg.g_reads_f2 else None   # g_input's second encoder
    data = translator_data(split_path, faces, emoji, cfg.n_samples, enc_snapshot)
    init = registry.load_snapshot(cfg.init_from, "cpu") if cfg.init_from else None
    init_colour = snapshot_colour(init) if init is not None else None
    if init is not None and cfg.colour_code and init_colour is None:   # before any slow work
        raise UserError("colour_code = true, but init_from's g reads f(x) alone")

    # Data in RAM. Faces are needed at full size only when f(x) is not cached.
    face_images = dataset.load_images(faces, "faces", data.train_faces)
    emoji_images = dataset.load_images(emoji, "emoji", data.train_emoji)
    emoji_small = downscale(emoji_images, cfg.output_size)
    colour = None
    if cfg.colour_code:   # read once: the fit and the cached inputs below both use them
        read = lambda x: read_colours(dataset.to_float(x))  # noqa: E731
        face_colours, emoji_colours = map_batches(read, face_images), map_batches(read, emoji_images)
        colour = fit_colour_code(face_colours, emoji_colours) if init is None else init_colour

    nets = build_nets(f, cfg, d.device, colour, f2)
    if init is not None:   # before the trainer: a resumed run's own state then replaces it
        warm_start(nets.g, init, enc_snapshot, f2.dim if f2_in_g is not None and "encoder2" not in init else 0)
        if nets.g_ema is not None:
            nets.g_ema.load_state_dict(nets.g.state_dict())
    nets_ddp = Nets(nets.f, distributed.wrap(nets.g, d), distributed.wrap(nets.D, d), nets.g_ema, nets.colour, nets.f2)
    opt = GANOptimizers.adam(nets.g.parameters(), nets.D.parameters(), cfg.lr_g, cfg.lr_d,
                             (cfg.beta1, cfg.beta2), d.device)

    def encode(x: torch.Tensor, domain: Domain) -> torch.Tensor:
        return g_input(f, nets.colour, dataset.to_float(x), domain, f2_in_g)

    t0 = time.time()
    if cfg.cache_f:
        f_of = lambda x: f.encode(dataset.to_float(x))  # noqa: E731
        f_faces = map_batches(f_of, face_images, device=d.device)
        f_emoji = map_batches(f_of, emoji_images, device=d.device)
        if colour is not None:   # g's input as translate.g_input builds it, from the colours read above
            f_faces = torch.cat([f_faces, colour.standardise(face_colours, "photo")], 1)
            f_emoji = torch.cat([f_emoji, colour.standardise(emoji_colours, "emoji")], 1)
        if f2 is not None:
            f2_of = lambda x: f2.encode(dataset.to_float(x))  # noqa: E731
            f2_faces = map_batches(f2_of, face_images, device=d.device)
        if f2_in_g is not None:   # g's input ends with f2(x), as translate.g_input builds it
            f_faces = torch.cat([f_faces, f2_faces], 1)
            f_emoji = torch.cat([f_emoji, map_batches(f2_of, emoji_images, device=d.device)], 1)
        log.info(f"f(x) cached for {len(f_faces)} faces and {len(f_emoji)} emoji in {time.time() - t0:.1f}s")
    face_ids, emoji_ids = torch.arange(len(face_images)), torch.arange(len(emoji_images))

    def next_batch() -> Batch:
        fi, ei = random_batch(face_ids, cfg.batch_size), random_batch(emoji_ids, cfg.batch_size)
        f2s = None
        if cfg.cache_f:
            fs, ft = f_faces[fi].to(d.device), f_emoji[ei].to(d.device)
            if f2 is not None:
                f2s = f2_faces[fi].to(d.device)
        else:   # float32 like the cache (no autocast), so the two paths give g the same numbers
            with torch.no_grad():
                photos = face_images[fi].to(d.device)
                fs, ft = encode(photos, "photo"), encode(emoji_images[ei].to(d.device), "emoji")
                if f2_in_g is not None:   # g's input already ends with f2(s)
                    f2s = fs[:, -f2.dim:]
                elif f2 is not None:
                    f2s = f2.encode(dataset.to_float(photos))
        return Batch(fs, ft, dataset.to_float(emoji_small[ei].to(d.device)), f2s)

    def step(step: int) -> dict[str, torch.Tensor]:
        parts = train_step(nets_ddp, next_batch(), cfg, opt.g, opt.d, opt.scaler_g, opt.scaler_d, step)
        return {k: parts[k] for k in ("L_D", "L_GANG", "L_CONST", "L_TID")} | parts  # the progress bar's first

    def samples(step: int) -> None:
        g_sample = sampler(nets)
        g_sample.eval()
        with torch.no_grad():
            from_faces = g_sample(g_input(f, nets.colour, data.sample_faces.to(d.device), "photo", f2_in_g)).cpu()
            from_emoji = g_sample(g_input(f, nets.colour, data.sample_emoji.to(d.device), "emoji", f2_in_g)).cpu()
        save_pairs(out / "samples" / f"faces-{step:08d}.png", data.sample_faces, from_faces)
        save_pairs(out / "samples" / f"emoji-{step:08d}.png", data.sample_emoji, from_emoji)

    modules = {"g": nets_ddp.g, "D": nets_ddp.D} | ({"g_ema": nets.g_ema} if nets.g_ema is not None else {})
    trainer = run.Trainer(
        "train-dtn", cfg.steps, modules, {"g": opt.g, "D": opt.d}, step,
        snapshot=lambda step: dtn_snapshot(sampler(nets), enc_snapshot, colour=nets.colour, step=step,
                                           encoder2_snapshot=f2_snapshot if f2_in_g is not None else None,
                                           **data.snapshot_extras()),
        snapshot_name="dtn.pt", log_every=cfg.log_every, checkpoint_every=cfg.checkpoint_every,
        keep_states=cfg.keep_states, snapshot_every=cfg.snapshot_every,
        samples=samples, sample_every=cfg.sample_every,
        state=opt.state, load_state=opt.load_state)
    return run.train(trainer, d, out, cfg.seed, resume, show_progress, stop)
