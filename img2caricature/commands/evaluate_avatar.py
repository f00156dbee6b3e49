"""`img2car evaluate-avatar --model runs/avatar/avatar.pt [--model ...] --ruler F`"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", action="append", required=True, metavar="AVATAR.pt",
                   help="avatar models to measure (repeatable); the first one's f and held-out people are used")
    p.add_argument("--faces", default="data/faces.h5", help="faces dataset holding the models' held-out people")
    p.add_argument("--emoji", default="data/avatar-faces.h5", help="the crawl the baselines draw from")
    p.add_argument("--ruler", required=True,
                   help="an f the models did not train with, for identity retrieval and the gender probe "
                        "(a name such as `default`, or an encoder.pt)")
    p.add_argument("--out", default="reports/avatar", help="report folder (default: reports/avatar)")
    p.add_argument("--gender-csv", default=None, help="file,gender CSV of labelled photos, for the gender probe")
    p.add_argument("--gender-images", default=None, help="the folder those files are in")
    p.add_argument("--hand-labels", default=None,
                   help="source,glasses,facial_hair CSV of the held-out photos (0/1), for those two rows")
    p.add_argument("--crawl-limit", type=int, default=0, metavar="N",
                   help="the baselines draw from the crawl's first N records (train-avatar's max_avatars; 0: all)")
    p.add_argument("--cache", default="data/f-cache", help="where f of photos and avatars is kept (default: data/f-cache)")
    p.add_argument("--knn", type=int, default=25, help="k of the k-nearest majority method (default 25; 1: off)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from crawlers.avatar_render import full_choice, render_rgb
    from img2caricature.errors import UserError
    from img2caricature.evaluate.avatar import evaluate_avatar

    if (args.gender_csv is None) != (args.gender_images is None):
        raise UserError("--gender-csv and --gender-images go together")
    report = evaluate_avatar([Path(m) for m in args.model], Path(args.faces), Path(args.emoji), args.ruler,
                             Path(args.out), render_rgb, Path(args.gender_csv) if args.gender_csv else None,
                             Path(args.gender_images) if args.gender_images else None,
                             Path(args.hand_labels) if args.hand_labels else None, knn=args.knn,
                             crawl_limit=args.crawl_limit, cache_dir=Path(args.cache) if args.cache else None,
                             complete=full_choice)
    print((Path(args.out) / "report.md").read_text())
    print(f"written: {args.out}/report.json, report.md, grid.jpg ({report['photos']} photos)")
    return 0
