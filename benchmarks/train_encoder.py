"""Encoder training throughput (images/s, one full SGD step: augment, forward, backward,
update) for the compact encoder at batch 64, in float32 and in bfloat16 autocast, and at
a few input sizes, in the same run. The encoder has 20 minutes on a 2-core CPU, so its
accuracy is bought with steps: this says which settings buy the most.

    python benchmarks/train_encoder.py [--sizes 64 56] [--steps 8]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from img2caricature.nets.encoder import Encoder, EncoderConfig
from img2caricature.augment import AugmentConfig, augment
from img2caricature.train.common import autocast, cpu_has_bf16


def measure(size: int, bf16: bool, steps: int, batch: int = 64, classes: int = 222) -> float:
    torch.manual_seed(0)
    encoder = Encoder(EncoderConfig(num_classes=classes, input_size=size))
    opt = torch.optim.SGD(encoder.parameters(), lr=0.01, momentum=0.9)
    images = torch.rand(256, 3, 152, 152) * 2 - 1
    device = torch.device("cpu")
    elapsed = 0.0
    for step in range(steps + 2):  # two warm-up steps
        idx = torch.randint(256, (batch,))
        y = torch.randint(classes, (batch,))
        start = time.perf_counter()
        x = augment(images[idx], size, 0.8, AugmentConfig())
        with autocast(device, cpu_bf16=bf16):
            loss = F.cross_entropy(encoder(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step >= 2:
            elapsed += time.perf_counter() - start
    return steps * batch / elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 56])
    p.add_argument("--steps", type=int, default=8)
    args = p.parse_args()
    print(f"native bfloat16 on this CPU: {cpu_has_bf16()}, threads {torch.get_num_threads()}")
    base = None
    for size in args.sizes:
        for bf16 in (False, True):
            rate = measure(size, bf16, args.steps)
            base = base or rate
            print(f"input {size}x{size} {'bfloat16' if bf16 else 'float32 '}: {rate:6.1f} images/s  ({rate / base:.2f}x)")


if __name__ == "__main__":
    main()
