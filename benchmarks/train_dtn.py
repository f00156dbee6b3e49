"""DTN training throughput (source images per second) at 64x64 with the compact encoder,
batch 32, with f(x) cached and uncached, in float32, bfloat16 autocast and `cpu_bf16 =
"auto"` (what the configs default to), in the same run. Targets on a 2-core CPU: the cached
step >= 1.5x the uncached one, >= 40 source images/s, and "auto" as fast as the faster of
float32 and bfloat16.

    python benchmarks/train_dtn.py [--encoder runs/encoder/encoder.pt] [--config compact]
                                   [--steps 15] [--device cpu] [--precisions float32 bfloat16 auto]
                                   [--sizes 64 128] [--no-profile]

--sizes: g's output sizes to run side by side (default: the config's); at a size above the
config's, g gains an upsampling block per doubling and D a stride (its last width repeated).
For float32 the cached step is then taken apart (benchmarks/step_profile.py): its FLOPs
counted with torch.utils.flop_counter, its achieved FLOP/s as a share of this machine's dense
float32 matmul FLOP/s (the best 2048x2048 product timed before, between and after the steps), and the
forward and backward times of f, g and D (each timed alone).

All six kinds of step (three precisions, f cached or not) take turns on their own networks
and each figure is the median step, so a noisy neighbour on a shared machine slows all alike
instead of whichever ran last. f's forward on the real images runs in float32 in every
precision, as the trainer computes it, cached or not (so both paths give g the same numbers).

Without --encoder a fresh encoder built from --encoder-config (the compact config) is used
(the speed does not depend on its weights). --set key=value overrides the DTN config,
e.g. --set channels_last=false."""

from __future__ import annotations

import argparse
import math
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
from step_profile import MatmulPeak, count_flops, step_parts

PRECISIONS = {"float32": False, "bfloat16": True, "auto": "auto"}


def at_size(cfg: DTNConfig, size: int) -> DTNConfig:
    """The config with g drawing `size` px: D gets one stride per doubling (its last width repeated)."""
    strides = int(math.log2(size // 4))
    widths = tuple(cfg.d_widths) + (cfg.d_widths[-1],) * max(0, strides - len(cfg.d_widths))
    return DTNConfig(**{**vars(cfg), "output_size": size, "d_widths": widths})


def setup(cfg: DTNConfig, encoder: Encoder, device: torch.device, faces: torch.Tensor, emoji: torch.Tensor):
    torch.manual_seed(0)
    nets = build_nets(encoder, cfg, device)
    opt = GANOptimizers.adam(nets.g.parameters(), nets.D.parameters(), cfg.lr_g, cfg.lr_d,
                             (cfg.beta1, cfg.beta2), device)
    with torch.no_grad():
        cached = nets.f.encode(faces), nets.f.encode(emoji)
    return nets, opt, cached


def measure(cfg: DTNConfig, encoder: Encoder, device: torch.device, steps: int,
            precisions: list[str], sizes: list[int], peak: MatmulPeak | None = None
            ) -> dict[tuple[int, str, bool], float]:
    """Source images/s for each (g's output size, precision, f cached); `peak` sampled after each step."""
    b = cfg.batch_size
    faces = torch.rand(256, 3, 152, 152, device=device) * 2 - 1
    emoji = torch.rand(256, 3, 152, 152, device=device) * 2 - 1
    runs, small = {}, {}
    for size in sizes:
        small[size] = torch.nn.functional.interpolate(emoji, size=size, mode="area")
        for name in precisions:
            run_cfg = DTNConfig(**{**vars(at_size(cfg, size)), "cpu_bf16": PRECISIONS[name]})
            runs[size, name] = (run_cfg, *setup(run_cfg, encoder, device, faces, emoji))
    seconds: dict[tuple[int, str, bool], list[float]] = {
        (s, n, c): [] for s in sizes for n in precisions for c in (False, True)}
    for step in range(steps + 2):  # two warm-up rounds
        for (size, name, is_cached), times in seconds.items():
            run_cfg, nets, opt, (f_faces, f_emoji) = runs[size, name]
            i, j = torch.randint(256, (b,)), torch.randint(256, (b,))
            start = time.perf_counter()
            if is_cached:
                fs, ft = f_faces[i], f_emoji[j]
            else:
                with torch.no_grad():
                    fs, ft = nets.f.encode(faces[i]), nets.f.encode(emoji[j])
            train_step(nets, Batch(fs, ft, small[size][j]), run_cfg, opt.g, opt.d, opt.scaler_g, opt.scaler_d)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if step >= 2:
                times.append(time.perf_counter() - start)
            if peak is not None:
                peak.sample()
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
        with torch.no_grad():
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
    p.add_argument("--sizes", nargs="+", type=int, default=None, help="g's output sizes, e.g. 64 128")
    p.add_argument("--no-profile", action="store_true", help="no FLOP count or breakdown")
    args = p.parse_args()
    profile = "float32" in args.precisions and not args.no_profile
    device = pick_device(args.device)
    cfg = load_config(DTNConfig, find_config(args.config, "dtn"), [f"batch_size={args.batch_size}", *args.set])
    encoder = encoder_from_snapshot(encoder_snapshot_from(args.encoder)) if args.encoder else Encoder(sub_config(
        EncoderConfig, load_config(EncoderTrainConfig, find_config(args.encoder_config, "encoder")), num_classes=2))
    auto = "bfloat16" if use_cpu_bf16("auto") else "float32"
    print(f"device {device}, config {args.config}, batch {cfg.batch_size}, g output {cfg.output_size}x{cfg.output_size}, "
          f"f input {encoder.cfg.input_size}x{encoder.cfg.input_size} ({encoder.cfg.arch}), channels_last "
          f"{cfg.channels_last}, native bfloat16 {cpu_has_bf16()}, cpu_bf16 = \"auto\" runs {auto} here")
    sizes = args.sizes or [cfg.output_size]
    peak = MatmulPeak() if profile else None
    if peak:
        peak.sample(2.0)
    speed = measure(cfg, encoder, device, args.steps, args.precisions, sizes, peak)
    for size in sizes:
        print(f"-- g draws {size}x{size}, D {len(at_size(cfg, size).d_widths)} strides")
        for name in args.precisions:
            uncached, cached = speed[size, name, False], speed[size, name, True]
            print(f"{name:8s} uncached f(x): {uncached:7.1f} source images/s   cached f(x): {cached:7.1f}   "
                  f"speed-up {cached / uncached:4.2f}x")
        if {"float32", "bfloat16", "auto"} <= set(args.precisions):
            faster = max(("float32", "bfloat16"), key=lambda n: speed[size, n, True])
            print(f"cached: bfloat16 / float32 {speed[size, 'bfloat16', True] / speed[size, 'float32', True]:.2f}x; "
                  f"the faster is {faster}; auto ran {auto} ({'right' if auto == faster else 'WRONG'}), "
                  f"auto / faster {speed[size, 'auto', True] / speed[size, faster, True]:.2f}x")
        for name in args.precisions:
            run_cfg = DTNConfig(**{**vars(at_size(cfg, size)), "cpu_bf16": PRECISIONS[name]})
            forward, const = f_seconds(encoder, run_cfg, device)
            step = cfg.batch_size / speed[size, name, False]
            print(f"{name:8s} f's share of the uncached step ({step:.3f}s): forward on real images {forward:.3f}s "
                  f"({forward / step:.0%}), L_CONST forward + backward {const:.3f}s ({const / step:.0%})")
    if len(sizes) > 1:
        for name in args.precisions:
            print(f"{name:8s} cached step, images/s by size: " + ", ".join(
                f"{s}px {speed[s, name, True]:.1f}" for s in sizes) +
                f" ({speed[sizes[-1], name, True] / speed[sizes[0], name, True]:.2f}x of {sizes[0]}px)")
    if profile:
        peak.sample(2.0)
        print(f"dense float32 matmul (2048x2048, best product before, between and after the steps): "
              f"{peak.flops_per_s / 1e9:.1f} GFLOP/s")
        for size in sizes:
            report_profile(at_size(cfg, size), encoder, device, speed[size, "float32", True], peak.flops_per_s)


def report_profile(cfg: DTNConfig, encoder: Encoder, device: torch.device, images_per_s: float, peak: float) -> None:
    """The float32 cached step's FLOPs and achieved share of the matmul peak, and its parts' times."""
    cfg = DTNConfig(**{**vars(cfg), "cpu_bf16": False})
    b = cfg.batch_size
    emoji = torch.rand(b, 3, 152, 152, device=device) * 2 - 1
    nets, opt, (fs, ft) = setup(cfg, encoder, device, emoji, emoji)
    batch = Batch(fs, ft, torch.nn.functional.interpolate(emoji, size=cfg.output_size, mode="area")
                  .contiguous(memory_format=torch.channels_last))
    flops = count_flops(lambda: train_step(nets, batch, cfg, opt.g, opt.d, opt.scaler_g, opt.scaler_d))
    step = b / images_per_s
    print(f"-- {cfg.output_size}px float32 cached step: {step:.3f} s, {flops / 1e9:.2f} GFLOP "
          f"(FlopCounterMode), {flops / step / 1e9:.1f} GFLOP/s achieved = {flops / step / peak:.0%} of the matmul peak")
    nets.g.train(), nets.D.train()
    parts = step_parts(nets, batch)
    for part, (seconds, part_flops) in parts.items():
        rate = f"{part_flops / seconds / 1e9:6.1f} GFLOP/s ({part_flops / seconds / peak:4.0%})" if seconds > 0 else ""
        print(f"   {part:32s} {seconds:6.3f} s ({seconds / step:4.0%} of the step)  {part_flops / 1e9:6.2f} GFLOP  {rate}")
    rest = step - sum(t for t, _ in parts.values())
    print(f"   {'the rest (losses, copies, Python)':32s} {rest:6.3f} s ({rest / step:4.0%})")

if __name__ == "__main__":
    main()
