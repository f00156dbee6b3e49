"""What the two-sample test allows a g that draws at a given size: real Bitmoji passed
through that size (area-downscaled, then enlarged bicubically to 128 px, as `img2car
evaluate` and `img2car caricature` enlarge g's emoji) against other real Bitmoji at 128 px,
with the same classifier and budget `evaluate` uses. Real against real ("128") is the
sanity row: it should read about 50%.

    python benchmarks/realism_ceiling.py --emoji data/bitmoji.h5 --sizes 128 64 96 [--blurs 0.5 1.0]

A row near 100% means no g drawing at that size can pass the test at 128 px, however good
its drawing: the test sees the missing detail, not the faces. `--blurs` adds rows of real
Bitmoji at 128 px under a Gaussian blur of that sigma (px): how little softness it catches."""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torchvision.transforms.functional import gaussian_blur

from img2caricature import dataset
from img2caricature.evaluate import realism
from img2caricature.evaluate.classifier import ClassifierConfig
from img2caricature.evaluate.realism_set import generated_at, real_at


def passed_through(images_u8: torch.Tensor, size: int) -> torch.Tensor:
    """At `size` as the dataset is downscaled, then enlarged to 128 px as g's emoji are."""
    return generated_at(real_at(images_u8, size), 128)


def blurred(images_u8: torch.Tensor, sigma: float) -> torch.Tensor:
    return gaussian_blur(real_at(images_u8, 128), 2 * round(3 * sigma) + 1, sigma)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--emoji", default="data/bitmoji.h5")
    p.add_argument("--sizes", type=int, nargs="*", default=[128, 64, 96])
    p.add_argument("--blurs", type=float, nargs="*", default=[], help="Gaussian blur sigmas at 128 px")
    p.add_argument("--per-side", type=int, default=460, help="emoji a side (half train, half test)")
    p.add_argument("--steps", type=int, default=300, help="the classifier's budget (evaluate's c2st_steps)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    n = dataset.info(args.emoji, "emoji").count
    order = np.random.default_rng(0).permutation(n)
    reference = np.sort(order[:args.per_side])
    other = np.sort(order[args.per_side:2 * args.per_side])
    real = real_at(dataset.load_images(args.emoji, "emoji", reference), 128)
    other_u8 = dataset.load_images(args.emoji, "emoji", other)
    print(f"{len(real)} real Bitmoji at 128 px against {len(other_u8)} others passed through each size")
    rows = ([(f"through {size:3d} px", passed_through, size) for size in args.sizes]
            + [(f"blurred, sigma {sigma}", blurred, sigma) for sigma in args.blurs])
    for name, degrade, amount in rows:
        passed = degrade(other_u8, amount)
        for seed in args.seeds:
            t = time.time()
            cfg = ClassifierConfig(size=128, steps=args.steps, batch_size=32, seed=seed)
            result = realism.c2st(passed, real, cfg)
            print(f"{name}, seed {seed}: C2ST {100 * result['accuracy']:5.1f}% "
                  f"({result['test_per_side']} a side tested, {time.time() - t:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
