"""`img2car import-emoji DIR --out data/bitmoji.h5`"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", metavar="DIR", help="folder of emoji images (searched recursively)")
    p.add_argument("--out", default="data/bitmoji.h5", help="emoji dataset to create or extend (default: data/bitmoji.h5)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from crawlers.import_folder import import_folder

    summary = import_folder(args.folder, args.out, progress=not args.no_progress)
    for line in summary.lines():
        print(line)
    if summary.interrupted:
        return 130
    return 1 if summary.n_failed else 0
