"""`img2car pretrain-encoder`"""

from __future__ import annotations

import argparse

from img2caricature.commands.options import add_training, stop_early


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--faces", default="data/faces.h5", help="faces dataset from `img2car preprocess`")
    add_training(p, "configs/encoder/compact.toml", "runs/encoder")


def run(args: argparse.Namespace) -> int:
    from img2caricature.config import load_config
    from img2caricature.train.encoder import EncoderTrainConfig, train_encoder

    overrides = args.overrides + ([f"steps={args.steps}"] if args.steps is not None else [])
    cfg = load_config(EncoderTrainConfig, args.config, overrides)
    figures = train_encoder(args.faces, args.out, cfg, resume=args.resume, device_name=args.device, stop=stop_early(args))
    if figures:
        print("final: " + ", ".join(f"{k} {v:.3f}" for k, v in figures.items()))
    print(f"encoder written to {args.out}/encoder.pt")
    return 0
