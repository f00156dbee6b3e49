"""`img2car pretrain-encoder`"""

from __future__ import annotations

import argparse

from img2caricature.commands.options import add_split, add_training, stop_early, training_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--faces", default="data/faces.h5", help="faces dataset from `img2car preprocess`")
    add_split(p)
    add_training(p, "encoder", "runs/encoder")


def run(args: argparse.Namespace) -> int:
    from img2caricature.train.encoder import EncoderTrainConfig, train_encoder

    cfg = training_config(EncoderTrainConfig, args, "encoder")
    figures = train_encoder(args.faces, args.out, cfg, resume=args.resume, device_name=args.device,
                            stop=stop_early(args), split_path=args.split)
    if figures:
        print("final: " + ", ".join(f"{k} {v:.3f}" for k, v in figures.items()))
    print(f"encoder written to {args.out}/encoder.pt")
    return 0
