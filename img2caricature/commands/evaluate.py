"""`img2car evaluate`"""

from __future__ import annotations

import argparse

from img2caricature.commands.options import add_device


def add_arguments(p: argparse.ArgumentParser) -> None:
    from img2caricature.evaluate.definitions import help_text

    p.description = (p.description or "") + "\n\nWrites OUT/metrics.json, OUT/metrics.md and OUT/grid.png.\n\n" + help_text()
    p.add_argument("--model", dest="models", action="append", required=True, metavar="MODEL.pt",
                   help="a dtn.pt or cyclegan.pt snapshot (repeat to compare several)")
    p.add_argument("--faces", required=True, help="faces dataset: held-out people, or the training faces.h5 "
                                                  "(then only the models' held-out identities are used)")
    p.add_argument("--emoji", required=True, help="emoji dataset: held-out emoji, or the training emoji file "
                                                  "(then only the models' held-out emoji are used)")
    p.add_argument("--out", required=True, help="report folder, e.g. reports/dtn-vs-cyclegan")
    p.add_argument("--judge-encoder", default=None, metavar="ENCODER.pt",
                   help="an independent encoder (another `img2car pretrain-encoder` run) to measure retrieval, "
                        "KID and feature diversity with, so no model is graded by its own f")
    p.add_argument("--photo-genders", default=None, metavar="CSV",
                   help="file,gender labels of face photos (e.g. ../shared/data/celeba-hq-aligned.csv)")
    p.add_argument("--photo-gender-images", default=None, metavar="DIR",
                   help="the photos the CSV names (default: the CSV's path without .csv)")
    p.add_argument("--emoji-genders", default=None, metavar="CSV",
                   help="file,gender labels of emoji (e.g. ../shared/data/bitmoji-faces.csv)")
    p.add_argument("--emoji-gender-images", default=None, metavar="DIR",
                   help="the emoji the CSV names (default: the CSV's path without .csv)")
    p.add_argument("--cache-dir", default=None,
                   help="where the trained gender classifiers are kept between runs (default: OUT/../cache)")
    p.add_argument("--split", default=None, metavar="SPLIT.json",
                   help="the split file the models trained on: its held-out people and emoji are evaluated "
                        "(default: the held-out lists the snapshots record); models trained on another split "
                        "are refused")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override an evaluation setting, e.g. --set c2st_steps=500 (see EvalConfig)")
    add_device(p)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from img2caricature.config import load_config
    from img2caricature.evaluate.pipeline import EvalConfig, EvalInputs, evaluate
    from img2caricature.evaluate.report import table_rows

    cfg = load_config(EvalConfig, None, args.overrides)
    optional = lambda v: Path(v) if v else None  # noqa: E731
    inputs = EvalInputs([Path(m) for m in args.models], Path(args.faces), Path(args.emoji), Path(args.out),
                        optional(args.judge_encoder), optional(args.photo_genders), optional(args.photo_gender_images),
                        optional(args.emoji_genders), optional(args.emoji_gender_images), optional(args.cache_dir),
                        args.device, optional(args.split))
    metrics = evaluate(inputs, cfg)
    names = list(metrics["models"])
    for label, cells, ref in table_rows(metrics):
        print(f"{label:48s} " + "  ".join(f"{n}={c}" for n, c in zip(names, cells)) + (f"  (reference {ref})" if ref else ""))
    print(f"report written to {args.out}/metrics.md, metrics.json and grid.png")
    return 0
