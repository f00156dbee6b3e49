"""`img2car train-avatar`"""

from __future__ import annotations

import argparse

from img2caricature.commands.options import add_training, stop_early, training_config


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--faces", default="data/faces.h5", help="faces dataset (the photos, from `img2car preprocess`)")
    p.add_argument("--emoji", default="data/avatar-faces.h5",
                   help="crawled avatars with their parameters (`img2car crawl --source "
                        "avatar-faces`; default: data/avatar-faces.h5)")
    p.add_argument("--imitator", default=None, metavar="IMITATOR.pt",
                   help="start from this trained imitator (an imitator.pt of an earlier run) and skip its phase")
    p.add_argument("--no-render", action="store_true",
                   help="sample grids without the avatar engine's own renders (the imitator's only)")
    add_training(p, "avatar", "runs/avatar")


def run(args: argparse.Namespace) -> int:
    from img2caricature.train.avatar import AvatarConfig, train_avatar

    cfg = training_config(AvatarConfig, args, "avatar")
    render = None
    if not args.no_render:
        from crawlers.avatar_render import render_rgb

        render = render_rgb
    last = train_avatar(args.faces, args.emoji, args.out, cfg, resume=args.resume, device_name=args.device,
                        imitator=args.imitator, render=render, stop=stop_early(args))
    print("last step: " + ", ".join(f"{k} {v:.3f}" for k, v in last.items()))
    print(f"model written to {args.out}/avatar.pt (use it with `img2car avatar --model`), "
          f"imitator to {args.out}/imitator.pt")
    return 0
