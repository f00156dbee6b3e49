"""`img2car train-cyclegan`"""

from __future__ import annotations

import argparse

from img2caricature.commands.options import add_training, stop_early


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--faces", default="data/faces.h5", help="faces dataset (source domain)")
    p.add_argument("--emoji", default="data/emoji.h5", help="emoji dataset (target domain)")
    p.add_argument("--encoder", default=None,
                   help="optional: an encoder.pt whose held-out identities are kept out of training "
                        "(recorded in cyclegan.pt), so `img2car evaluate` can judge people no model saw")
    add_training(p, "configs/cyclegan/compact.toml", "runs/cyclegan")


def run(args: argparse.Namespace) -> int:
    from img2caricature.config import load_config
    from img2caricature.train.cyclegan import CycleGANConfig, train_cyclegan

    overrides = args.overrides + ([f"steps={args.steps}"] if args.steps is not None else [])
    cfg = load_config(CycleGANConfig, args.config, overrides)
    last = train_cyclegan(args.faces, args.emoji, args.out, cfg, encoder_path=args.encoder, resume=args.resume,
                          device_name=args.device, stop=stop_early(args))
    print("last step: " + ", ".join(f"{k} {v:.3f}" for k, v in last.items()))
    print(f"snapshot written to {args.out}/cyclegan.pt (use it with `img2car caricature --model`)")
    return 0
