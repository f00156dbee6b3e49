"""`img2car split`: make the held-out split file now (or show the one there), instead of
letting the first training command make it with the default shares."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--faces", default="data/faces.h5", help="faces dataset (default: data/faces.h5)")
    p.add_argument("--emoji", action="append", default=[], metavar="EMOJI.h5",
                   help="an emoji dataset to hold some emoji of out (repeatable)")
    p.add_argument("--out", default=None, metavar="SPLIT.json",
                   help="the split file (default: split.json beside --faces, where every command looks)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="how a new split is drawn, e.g. --set heldout_fraction=0.2 (keys: heldout_fraction, "
                        "min_heldout, min_train, emoji_fraction, min_heldout_emoji, seed); an existing part "
                        "is never redrawn")
    p.add_argument("--like", metavar="MODEL.pt", default=None,
                   help="write the split a model trained on, from what its snapshot records (checked "
                        "against its hashes): a fresh checkout then holds out exactly its people and emoji")


def run(args: argparse.Namespace) -> int:
    from img2caricature import dataset
    from img2caricature.config import load_config
    from img2caricature import registry
    from img2caricature.split import SplitConfig, default_path, describe_emoji, describe_faces, load_or_create, split_like

    cfg = load_config(SplitConfig, None, args.overrides)
    dataset.info(args.faces, "faces")
    for emoji in args.emoji:
        dataset.info(emoji, "emoji")
    if args.like:
        split = split_like(args.out or default_path(args.faces), registry.load_snapshot(args.like, "cpu"),
                           args.like, args.faces, args.emoji)
    else:
        split = load_or_create(args.out, faces=args.faces, cfg=cfg)
    for emoji in args.emoji:
        split = load_or_create(split.path, emoji=emoji, cfg=cfg)
    print(describe_faces(split, args.faces, *split.face_records(args.faces)))
    for emoji in args.emoji:
        print(describe_emoji(split, emoji, *split.emoji_records(emoji)))
    print(f"split file: {split.path} (pass --split {split.path} where it is not beside the faces file)")
    return 0
