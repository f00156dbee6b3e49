"""`img2car train-cyclegan`"""

from __future__ import annotations

import argparse

from img2caricature.commands.options import add_split, add_training, stop_early, training_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--faces", default="data/faces.h5", help="faces dataset (source domain)")
    p.add_argument("--emoji", default="data/emoji.h5", help="emoji dataset (target domain)")
    add_split(p)
    p.add_argument("--encoder", default=None,
                   help="optional: the encoder.pt of the DTN this baseline is compared with; its split is "
                        "checked against --split (an encoder from before split files lends it its held-out people)")
    add_training(p, "cyclegan", "runs/cyclegan")


def run(args: argparse.Namespace) -> int:
    from img2caricature.train.cyclegan import CycleGANConfig, train_cyclegan

    cfg = training_config(CycleGANConfig, args, "cyclegan")
    last = train_cyclegan(args.faces, args.emoji, args.out, cfg, encoder_path=args.encoder, resume=args.resume,
                          device_name=args.device, stop=stop_early(args), split_path=args.split)
    print("last step: " + ", ".join(f"{k} {v:.3f}" for k, v in last.items()))
    print(f"snapshot written to {args.out}/cyclegan.pt (use it with `img2car caricature --model`)")
    return 0
