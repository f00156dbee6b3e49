"""`img2car train-dtn`"""

from __future__ import annotations

import argparse

from img2caricature.commands.options import add_split, add_training, stop_early, training_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    from img2caricature.registry import named_encoders

    p.add_argument("--faces", default="data/faces.h5", help="faces dataset (source domain)")
    p.add_argument("--emoji", default="data/emoji.h5", help="emoji dataset (target domain)")
    p.add_argument("--encoder", default="runs/encoder/encoder.pt",
                   help="f: an encoder.pt from `img2car pretrain-encoder`, or a published encoder by name "
                        f"({', '.join(named_encoders())}; no pretraining run) (default: runs/encoder/encoder.pt)")
    add_split(p)
    add_training(p, "dtn", "runs/dtn")


def run(args: argparse.Namespace) -> int:
    from img2caricature.train.dtn import DTNConfig, train_dtn

    cfg = training_config(DTNConfig, args, "dtn")
    last = train_dtn(args.faces, args.emoji, args.encoder, args.out, cfg, resume=args.resume,
                     device_name=args.device, stop=stop_early(args), split_path=args.split)
    print("last step: " + ", ".join(f"{k} {v:.3f}" for k, v in last.items()))
    print(f"snapshot written to {args.out}/dtn.pt (use it with `img2car caricature --model`)")
    return 0
