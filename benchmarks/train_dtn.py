"""DTN training throughput (source images per second) at 64x64 with the compact encoder,
batch 32, with f(x) cached and uncached, in the same run. Targets on a 2-core CPU: the
cached step >= 1.5x the uncached one, and >= 40 source images/s.

    python benchmarks/train_dtn.py [--encoder runs/encoder/encoder.pt] [--config configs/dtn/compact.toml]
                                   [--steps 15] [--device cpu] [--bf16]

--bf16 measures the pair again with bfloat16 autocast (`cpu_bf16 = true`), on CPUs that
run it natively; f's uncached forward then runs in bfloat16 too.

Without --encoder a fresh encoder built from --encoder-config (the compact config) is used
(the speed does not depend on its weights). --set key=value overrides the DTN config,
e.g. --set channels_last=false."""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from img2caricature.config import load_config
from img2caricature.nets.encoder import Encoder, EncoderConfig, encoder_from_snapshot, encoder_snapshot_from
from img2caricature.runtime import pick_device
from img2caricature.train.common import autocast, cpu_has_bf16, grad_scaler, sub_config
from img2caricature.train.dtn import Batch, DTNConfig, build_nets, train_step
from img2caricature.train.encoder import EncoderTrainConfig


def measure(cfg: DTNConfig, encoder: Encoder, device: torch.device, steps: int) -> dict[bool, float]:
    """Source images/s with f(x) uncached (False) and cached (True). The two kinds of step
    alternate on the same networks and each figure is the median step, so a noisy neighbour
    on a shared machine slows both alike instead of whichever ran second."""
    torch.manual_seed(0)
    nets = build_nets(encoder, cfg, device)
    opt_g = torch.optim.Adam(nets.g.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(nets.D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    sg, sd = grad_scaler(device), grad_scaler(device)
    b = cfg.batch_size
    faces = torch.rand(256, 3, 152, 152, device=device) * 2 - 1
    emoji = torch.rand(256, 3, 152, 152, device=device) * 2 - 1
    with torch.no_grad(), autocast(device, cfg.cpu_bf16):
        f_faces, f_emoji = nets.f.encode(faces), nets.f.encode(emoji)
    small = torch.nn.functional.interpolate(emoji, size=cfg.output_size, mode="area")
    seconds: dict[bool, list[float]] = {False: [], True: []}
    for step in range(2 * (steps + 2)):  # two warm-up steps of each kind
        cached = step % 2 == 1
        i, j = torch.randint(256, (b,)), torch.randint(256, (b,))
        start = time.perf_counter()
        if cached:
            fs, ft = f_faces[i], f_emoji[j]
        else:
            with torch.no_grad(), autocast(device, cfg.cpu_bf16):
                fs, ft = nets.f.encode(faces[i]), nets.f.encode(emoji[j])
        train_step(nets, Batch(fs, ft, small[j]), cfg, opt_g, opt_d, sg, sd)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step >= 4:
            seconds[cached].append(time.perf_counter() - start)
    return {cached: b / statistics.median(s) for cached, s in seconds.items()}


def f_seconds(encoder: Encoder, cfg: DTNConfig, device: torch.device, repeats: int = 5) -> tuple[float, float]:
    """Median seconds of f's two parts of a step: the forward on the step's 2 x batch real
    images (what caching removes), and L_CONST's forward + backward to g's output on one batch."""
    b = cfg.batch_size
    real = torch.rand(2 * b, 3, 152, 152, device=device) * 2 - 1
    fake = (torch.rand(b, 3, cfg.output_size, cfg.output_size, device=device) * 2 - 1).requires_grad_(True)
    forward, const = [], []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        with torch.no_grad(), autocast(device, cfg.cpu_bf16):
            encoder.encode(real)
        mid = time.perf_counter()
        with autocast(device, cfg.cpu_bf16):
            encoder.encode(fake).float().pow(2).mean().backward()
        forward.append(mid - start)
        const.append(time.perf_counter() - mid)
    return statistics.median(forward[1:]), statistics.median(const[1:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoder", default=None, help="an encoder checkpoint, or a pretrained encoder's name "
                   "(dlib-resnet-v1)")
    p.add_argument("--encoder-config", default="configs/encoder/compact.toml")
    p.add_argument("--config", default="configs/dtn/compact.toml")
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--bf16", action="store_true")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    device = pick_device(args.device)
    cfg = load_config(DTNConfig, args.config, [f"batch_size={args.batch_size}", "cpu_bf16=false", *args.set])
    encoder = encoder_from_snapshot(encoder_snapshot_from(args.encoder)) if args.encoder else Encoder(
        sub_config(EncoderConfig, load_config(EncoderTrainConfig, args.encoder_config), num_classes=2))
    print(f"device {device}, config {args.config}, batch {cfg.batch_size}, g output {cfg.output_size}x{cfg.output_size}, "
          f"f input {encoder.cfg.input_size}x{encoder.cfg.input_size} ({encoder.cfg.arch}), channels_last {cfg.channels_last}")
    precisions = [False] + ([True] if args.bf16 and cpu_has_bf16() and device.type == "cpu" else [])
    for bf16 in precisions:
        cfg.cpu_bf16 = bf16
        speed = measure(cfg, encoder, device, args.steps)
        uncached, cached = speed[False], speed[True]
        name = "bfloat16" if bf16 else "float32"
        print(f"{name} uncached f(x): {uncached:7.1f} source images/s")
        print(f"{name} cached f(x):   {cached:7.1f} source images/s")
        print(f"{name} speed-up:      {cached / uncached:7.2f}x")
        forward, const = f_seconds(encoder, cfg, device)
        step = cfg.batch_size / uncached
        print(f"{name} f's share of the uncached step ({step:.3f}s): forward on real images {forward:.3f}s "
              f"({forward / step:.0%}), L_CONST forward + backward {const:.3f}s ({const / step:.0%})")


if __name__ == "__main__":
    main()
