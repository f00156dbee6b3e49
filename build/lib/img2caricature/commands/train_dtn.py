"""`img2car train-dtn`"""

from __future__ import annotations

import argparse

from img2caricature.commands.options import add_training, stop_early


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--faces", default="data/faces.h5", help="faces dataset (source domain)")
    p.add_argument("--emoji", default="data/emoji.h5", help="emoji dataset (target domain)")
    p.add_argument("--encoder", default="runs/encoder/encoder.pt", help="pretrained f from `img2car pretrain-encoder`")
    add_training(p, "configs/dtn/compact.toml", "runs/dtn")


def run(args: argparse.Namespace) -> int:
    from img2caricature.config import load_config
    from img2caricature.train.dtn import DTNConfig, train_dtn

    overrides = args.overrides + ([f"steps={args.steps}"] if args.steps is not None else [])
    cfg = load_config(DTNConfig, args.config, overrides)
    last = train_dtn(args.faces, args.emoji, args.encoder, args.out, cfg, resume=args.resume,
                     device_name=args.device, stop=stop_early(args))
    print("last step: " + ", ".join(f"{k} {v:.3f}" for k, v in last.items()))
    print(f"snapshot written to {args.out}/dtn.pt (use it with `img2car caricature --model`)")
    return 0
