"""The learned 2x emoji upscaler against bicubic, on the shipped model's emoji of its
held-out people: the classifier two-sample test at 128 px against the real emoji
`img2car evaluate` uses (several classifier seeds), KID on the shipped f's features, and a
sample grid (photo | bicubic | upscaler, 128 px each).

    python benchmarks/upscaler.py train --out runs/upscaler [--minutes 15]
    python benchmarks/upscaler.py compare --upscaler runs/upscaler/upscaler.pt --out reports/upscaler

The upscaler trains on every Bitmoji except those the comparison uses as real ones (the
held-out ones and the evaluation's fill), so it never saw the test's real side."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from img2caricature import dataset, registry
from img2caricature.batches import map_batches
from img2caricature.caricature import default_model_path
from img2caricature.evaluate import realism
from img2caricature.evaluate.classifier import ClassifierConfig
from img2caricature.evaluate.heldout import select_heldout
from img2caricature.evaluate.realism_set import generated_at, real_at, real_records
from img2caricature.grids import save_pairs
from img2caricature.nets.upscaler import upscaler_from_snapshot
from img2caricature.translate import translator_from_snapshot


def held_out(model: Path, faces: Path, emoji: Path, per_side: int = 128, seed: int = 0):
    """(the model's snapshot, held-out face records, the real emoji records `evaluate` measures with)."""
    snap = registry.load_snapshot(model)
    selection = select_heldout({"model": snap}, faces, emoji)
    want = max(2 * per_side, len(selection.faces))
    real = real_records(selection.emoji, dataset.info(emoji, "emoji").count, want, True, seed)
    return snap, selection.faces, real.records


def train(args: argparse.Namespace) -> None:
    from img2caricature.train.upscaler import UpscalerTrainConfig, train_upscaler

    _, _, real = held_out(args.model, args.faces, args.emoji)
    cfg = UpscalerTrainConfig(steps=args.steps)
    print(json.dumps(train_upscaler(args.emoji, args.out, cfg, exclude=real.tolist(), time_limit_s=60 * args.minutes)))


def compare(args: argparse.Namespace) -> None:
    snap, face_records, real_ids = held_out(args.model, args.faces, args.emoji)
    translator = translator_from_snapshot(snap)
    photos = dataset.to_float(dataset.load_images(args.faces, "faces", face_records))
    made = map_batches(translator, photos, 64)
    real = real_at(dataset.load_images(args.emoji, "emoji", real_ids), 128)
    upscaler = upscaler_from_snapshot(torch.load(args.upscaler, weights_only=True))
    ways = {"bicubic": generated_at(made, 128), "upscaler": map_batches(upscaler, made, 64)}
    f = translator.encoder
    real_features = map_batches(f.encode, real, 128)
    figures = {}
    for name, images in ways.items():
        c2st = [realism.c2st(images, real, ClassifierConfig(size=128, seed=s))["accuracy"] for s in args.seeds]
        kid = realism.kid(map_batches(f.encode, images, 128), real_features, 100, 1000, 0)
        figures[name] = {"c2st": c2st, "c2st_mean": float(np.mean(c2st)), "kid_f": kid["kid"]}
        print(f"{name:9s} C2ST at 128 px (seeds {args.seeds}): {', '.join(f'{100 * a:.1f}%' for a in c2st)}; "
              f"mean {100 * np.mean(c2st):.1f}%   KID (shipped f) {kid['kid']:.4f}")
    print(f"{len(made)} generated (g draws {made.shape[-1]} px), {len(real)} real emoji at 128 px")
    out = Path(args.out)
    first = np.unique(dataset.read_column(args.faces, "labels", "faces")[face_records], return_index=True)[1][:12]
    save_pairs(out / "grid.png", photos[first], [ways["bicubic"][first], ways["upscaler"][first]],
               pairs_per_row=2, size=128)
    (out / "figures.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"grid (photo | bicubic | upscaler, 128 px): {out / 'grid.png'}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["train", "compare"])
    p.add_argument("--model", type=Path, default=default_model_path())
    p.add_argument("--faces", type=Path, default=Path("data/faces.h5"))
    p.add_argument("--emoji", type=Path, default=Path("data/bitmoji.h5"))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--upscaler", type=Path, default=None)
    p.add_argument("--minutes", type=float, default=15.0)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = p.parse_args()
    torch.manual_seed(0)
    (train if args.action == "train" else compare)(args)


if __name__ == "__main__":
    main()
