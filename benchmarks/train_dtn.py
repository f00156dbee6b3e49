"""DTN training throughput (source images per second) at 64x64 with the compact encoder,
batch 32, with f(x) cached and uncached, in the same run. Targets on a 2-core CPU: the
cached step >= 1.5x the uncached one, and >= 40 source images/s.

    python benchmarks/train_dtn.py [--encoder runs/encoder/encoder.pt] [--config configs/dtn/compact.toml]
                                   [--steps 15] [--device cpu] [--bf16]

--bf16 measures the pair again with bfloat16 autocast (`cpu_bf16 = true`), on CPUs that
run it natively.

Without --encoder a fresh compact encoder with the shipped config's shape is used (the
speed does not depend on its weights)."""

from __future__ import annotations

import argparse
import time

import torch

from img2caricature.config import load_config
from img2caricature.nets.encoder import Encoder, EncoderConfig, load_encoder
from img2caricature.runtime import pick_device
from img2caricature.train.common import cpu_has_bf16, grad_scaler
from img2caricature.train.dtn import Batch, DTNConfig, build_nets, train_step


def measure(cfg: DTNConfig, encoder: Encoder, device: torch.device, steps: int, cached: bool) -> float:
    torch.manual_seed(0)
    nets = build_nets(encoder, cfg, device)
    opt_g = torch.optim.Adam(nets.g.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2))
    opt_d = torch.optim.Adam(nets.D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2))
    sg, sd = grad_scaler(device), grad_scaler(device)
    b = cfg.batch_size
    faces = torch.rand(256, 3, 152, 152, device=device) * 2 - 1
    emoji = torch.rand(256, 3, 152, 152, device=device) * 2 - 1
    with torch.no_grad():
        f_faces, f_emoji = nets.f.encode(faces), nets.f.encode(emoji)
    small = torch.nn.functional.interpolate(emoji, size=cfg.output_size, mode="area")
    elapsed = 0.0
    for step in range(steps + 2):  # two warm-up steps
        i, j = torch.randint(256, (b,)), torch.randint(256, (b,))
        start = time.perf_counter()
        if cached:
            fs, ft = f_faces[i], f_emoji[j]
        else:
            with torch.no_grad():
                fs, ft = nets.f.encode(faces[i]), nets.f.encode(emoji[j])
        train_step(nets, Batch(fs, ft, small[j]), cfg, opt_g, opt_d, sg, sd)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step >= 2:
            elapsed += time.perf_counter() - start
    return steps * b / elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--encoder", default=None)
    p.add_argument("--config", default="configs/dtn/compact.toml")
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--bf16", action="store_true")
    args = p.parse_args()
    device = pick_device(args.device)
    cfg = load_config(DTNConfig, args.config, [f"batch_size={args.batch_size}", "cpu_bf16=false"])
    encoder = load_encoder(args.encoder) if args.encoder else Encoder(EncoderConfig(num_classes=2))
    print(f"device {device}, config {args.config}, batch {cfg.batch_size}, g output {cfg.output_size}x{cfg.output_size}, "
          f"f input {encoder.cfg.input_size}x{encoder.cfg.input_size} ({encoder.cfg.arch})")
    precisions = [False] + ([True] if args.bf16 and cpu_has_bf16() and device.type == "cpu" else [])
    for bf16 in precisions:
        cfg.cpu_bf16 = bf16
        uncached = measure(cfg, encoder, device, args.steps, cached=False)
        cached = measure(cfg, encoder, device, args.steps, cached=True)
        name = "bfloat16" if bf16 else "float32"
        print(f"{name} uncached f(x): {uncached:7.1f} source images/s")
        print(f"{name} cached f(x):   {cached:7.1f} source images/s")
        print(f"{name} speed-up:      {cached / uncached:7.2f}x")


if __name__ == "__main__":
    main()
