"""g's forward + backward at 64 px and the ways of drawing 128 px, in one run: another
transposed-convolution block at 128x128, or the subpixel head (the 64-px image enlarged
plus a correction from the 64-px features) at two hidden widths.

    python benchmarks/generator_128.py [--batch 64] [--repeats 5]

The batch is the trainer's: g draws from 32 photos and 32 emoji per step."""

from __future__ import annotations

import argparse
import time

import torch

from img2caricature.nets.dtn import Generator, GeneratorConfig


def seconds(g: Generator, z: torch.Tensor, repeats: int) -> float:
    g(z).square().mean().backward()   # warm-up: oneDNN picks its kernels on the first call
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        g(z).square().mean().backward()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--input-dim", type=int, default=134, help="dlib's 128 + the colour code's 6")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    z = torch.randn(args.batch, args.input_dim)
    variants = {"64 px": GeneratorConfig(args.input_dim, 64),
                "128 px, transposed block": GeneratorConfig(args.input_dim, 128),
                "128 px, subpixel head, width 64": GeneratorConfig(args.input_dim, 128, last_up="subpixel", detail_width=64),
                "128 px, subpixel head, width 32": GeneratorConfig(args.input_dim, 128, last_up="subpixel", detail_width=32)}
    base = None
    for name, cfg in variants.items():
        torch.manual_seed(0)
        g = Generator(cfg).to(memory_format=torch.channels_last)
        s = seconds(g, z, args.repeats)
        base = base or s
        print(f"{name:34s} forward + backward, batch {args.batch}: {s:.3f} s ({s / base:.2f}x the 64-px g), "
              f"{sum(p.numel() for p in g.parameters()) / 1e6:.2f} M parameters", flush=True)


if __name__ == "__main__":
    main()
