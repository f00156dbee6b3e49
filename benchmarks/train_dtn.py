"""DTN training throughput (source images per second) at 64x64 with the compact encoder,
batch 32, with f(x) cached and uncached, in float32, bfloat16 autocast and `cpu_bf16 =
"auto"` (what the configs default to), in the same run. Targets on a 2-core CPU: the cached
step >= 1.5x the uncached one, >= 40 source images/s, and "auto" as fast as the faster of
float32 and bfloat16.

    python benchmarks/train_dtn.py [--encoder runs/encoder/encoder.pt] [--config compact]
                                   [--steps 15] [--device cpu] [--precisions float32 bfloat16 auto]

All six kinds of step (three precisions, f cached or not) take turns on their own networks
and each figure is the median step, so a noisy neighbour on a shared machine slows all alike
instead of whichever ran last. Uncached, f's forward runs in the step's precision.

Without --encoder a fresh encoder built from --encoder-config (the compact config) is used
(the speed does not depend on its weights). --set key=value overrides the DTN config,
e.g. --set channels_last=false."""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from img2caricature.config import find_config, load_config
from img2caricature.nets.encoder import Encoder, EncoderConfig, encoder_from_snapshot, encoder_snapshot_from
from img2caricature.runtime import pick_device
from img2caricature.train.common import GANOptimizers, autocast, sub_config
from img2caricature.train.dtn import Batch, DTNConfig, build_nets, train_step
from img2caricature.train.encoder import EncoderTrainConfig
from img2caricature.train.precision import cpu_has_bf16, use_cpu_bf16

PRECISIONS = {"float32": False, "bfloat16": True, "auto": "auto"}


def measure(cfg: DTNConfig, encoder: Encoder, device: torch.device, steps: int,
            precisions: list[str]) -> dict[tuple[str, bool], float]:
    """Source images/s for each (precision, f cached)."""
    b = cfg.batch_size
    faces = torch.rand(256, 3, 152, 152, device=device) * 2 - 1
    emoji = torch.rand(256, 3, 152, 152, device=device) * 2 - 1
    runs = {}
    for name in precisions:
        torch.manual_seed(0)
        run_cfg = DTNConfig(**{**vars(cfg), "cpu_bf16": PRECISIONS[name]})
        nets = build_nets(encoder, run_cfg, device)
        opt = GANOptimizers.adam(nets.g.parameters(), nets.D.parameters(), cfg.lr_g, cfg.lr_d,
                                 (cfg.beta1, cfg.beta2), device)
        with torch.no_grad(), autocast(device, run_cfg.cpu_bf16):
            cached = nets.f.encode(faces), nets.f.encode(emoji)
        runs[name] = run_cfg, nets, opt, cached
    small = torch.nn.functional.interpolate(emoji, size=cfg.output_size, mode="area")
    seconds: dict[tuple[str, bool], list[float]] = {(n, c): [] for n in precisions for c in (False, True)}
    for step in range(steps + 2):  # two warm-up rounds
        for (name, is_cached), times in seconds.items():
            run_cfg, nets, opt, (f_faces, f_emoji) = runs[name]
            i, j = torch.randint(256, (b,)), torch.randint(256, (b,))
            start = time.perf_counter()
            if is_cached:
                fs, ft = f_faces[i], f_emoji[j]
            else:
                with torch.no_grad(), autocast(device, run_cfg.cpu_bf16):
                    fs, ft = nets.f.encode(faces[i]), nets.f.encode(emoji[j])
            train_step(nets, Batch(fs, ft, small[j]), run_cfg, opt.g, opt.d, opt.scaler_g, opt.scaler_d)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if step >= 2:
                times.append(time.perf_counter() - start)
    return {key: b / statistics.median(s) for key, s in seconds.items()}


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
    p.add_argument("--encoder-config", default="compact")
    p.add_argument("--config", default="compact")
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=list(PRECISIONS))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    device = pick_device(args.device)
    cfg = load_config(DTNConfig, find_config(args.config, "dtn"), [f"batch_size={args.batch_size}", *args.set])
    encoder = encoder_from_snapshot(encoder_snapshot_from(args.encoder)) if args.encoder else Encoder(sub_config(
        EncoderConfig, load_config(EncoderTrainConfig, find_config(args.encoder_config, "encoder")), num_classes=2))
    auto = "bfloat16" if use_cpu_bf16("auto") else "float32"
    print(f"device {device}, config {args.config}, batch {cfg.batch_size}, g output {cfg.output_size}x{cfg.output_size}, "
          f"f input {encoder.cfg.input_size}x{encoder.cfg.input_size} ({encoder.cfg.arch}), channels_last "
          f"{cfg.channels_last}, native bfloat16 {cpu_has_bf16()}, cpu_bf16 = \"auto\" runs {auto} here")
    speed = measure(cfg, encoder, device, args.steps, args.precisions)
    for name in args.precisions:
        uncached, cached = speed[name, False], speed[name, True]
        print(f"{name:8s} uncached f(x): {uncached:7.1f} source images/s   cached f(x): {cached:7.1f}   "
              f"speed-up {cached / uncached:4.2f}x")
    if {"float32", "bfloat16", "auto"} <= set(args.precisions):
        faster = max(("float32", "bfloat16"), key=lambda n: speed[n, True])
        print(f"cached: bfloat16 / float32 {speed['bfloat16', True] / speed['float32', True]:.2f}x; the faster is "
              f"{faster}; auto ran {auto} ({'right' if auto == faster else 'WRONG'}), "
              f"auto / faster {speed['auto', True] / speed[faster, True]:.2f}x")
    for name in args.precisions:
        run_cfg = DTNConfig(**{**vars(cfg), "cpu_bf16": PRECISIONS[name]})
        forward, const = f_seconds(encoder, run_cfg, device)
        step = cfg.batch_size / speed[name, False]
        print(f"{name:8s} f's share of the uncached step ({step:.3f}s): forward on real images {forward:.3f}s "
              f"({forward / step:.0%}), L_CONST forward + backward {const:.3f}s ({const / step:.0%})")


if __name__ == "__main__":
    main()
