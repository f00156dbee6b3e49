"""Encoder training throughput (images/s, one full SGD step: augment, forward, backward,
update) for the compact encoder at batch 64, in float32, in bfloat16 autocast and with
`cpu_bf16 = "auto"` (what the configs default to), at a few input sizes, in the same run.
The encoder has 20 minutes on a 2-core CPU, so its accuracy is bought with steps: this says
which settings buy the most, and whether "auto" picked the faster precision here.

    python benchmarks/train_encoder.py [--sizes 64 56] [--steps 8]

The three precisions alternate step by step and each figure is the median step, so a busy
neighbour slows all three alike.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from img2caricature.augment import AugmentConfig, augment
from img2caricature.nets.encoder import Encoder, EncoderConfig
from img2caricature.train.common import autocast
from img2caricature.train.precision import cpu_has_bf16, use_cpu_bf16

PRECISIONS = {"float32": False, "bfloat16": True, "auto": "auto"}


def measure(size: int, steps: int, batch: int = 64, classes: int = 222) -> dict[str, float]:
    """images/s for each precision, on one set of networks per precision."""
    device = torch.device("cpu")
    images = torch.rand(256, 3, 152, 152) * 2 - 1
    runs = {}
    for name in PRECISIONS:
        torch.manual_seed(0)
        encoder = Encoder(EncoderConfig(num_classes=classes, input_size=size))
        runs[name] = encoder, torch.optim.SGD(encoder.parameters(), lr=0.01, momentum=0.9)
    seconds: dict[str, list[float]] = {name: [] for name in PRECISIONS}
    for step in range(steps + 2):  # two warm-up steps
        for name, setting in PRECISIONS.items():
            encoder, opt = runs[name]
            idx, y = torch.randint(256, (batch,)), torch.randint(classes, (batch,))
            start = time.perf_counter()
            x = augment(images[idx], size, 0.8, AugmentConfig())
            with autocast(device, cpu_bf16=setting):
                loss = F.cross_entropy(encoder(x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step >= 2:
                seconds[name].append(time.perf_counter() - start)
    return {name: batch / statistics.median(s) for name, s in seconds.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 56])
    p.add_argument("--steps", type=int, default=8)
    args = p.parse_args()
    auto = "bfloat16" if use_cpu_bf16("auto") else "float32"
    print(f"native bfloat16 on this CPU: {cpu_has_bf16()}, threads {torch.get_num_threads()}, "
          f"cpu_bf16 = \"auto\" runs {auto} here")
    base = None
    for size in args.sizes:
        rates = measure(size, args.steps)
        base = base or rates["float32"]
        for name, rate in rates.items():
            print(f"input {size}x{size} {name:8s}: {rate:6.1f} images/s  ({rate / base:.2f}x)")
        faster = max(("float32", "bfloat16"), key=rates.get)
        print(f"input {size}x{size}: the faster is {faster}; auto ran {auto} "
              f"({'right' if auto == faster else 'WRONG'}, auto/faster {rates['auto'] / rates[faster]:.2f}x)")


if __name__ == "__main__":
    main()
