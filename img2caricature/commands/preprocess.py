"""`img2car preprocess INPUT --out data/faces.h5`: in-the-wild photos -> 152x152 face crops."""

from __future__ import annotations

import argparse
from pathlib import Path

from img2caricature.commands.options import at_least
from img2caricature.errors import UserError


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="a folder per identity (folder name = label), or a flat folder with --identities")
    p.add_argument("--out", default="data/faces.h5", help="faces dataset to write (default: data/faces.h5)")
    p.add_argument("--identities", metavar="FILE",
                   help="CelebA-style identity list for a flat folder: one 'image identity' per line")
    p.add_argument("--detector", choices=("haar", "mtcnn"), default=None,
                   help="haar: OpenCV's frontal-face cascade (default); mtcnn: facenet-pytorch's MTCNN, better recall, "
                        "boxes mapped to Haar's framing by its landmarks")
    p.add_argument("--align", action="store_true",
                   help="level the eyes with MTCNN's five landmarks, as `caricature` does (uses --detector mtcnn)")
    p.add_argument("--size", type=int, default=152, help="crop side in pixels (default: 152, the dataset format)")
    p.add_argument("--margin", type=float, default=None,
                   help="extra on each side of the detected box, as a fraction of its side (default: 0.3)")
    p.add_argument("--min-face", type=int, default=None, metavar="PX",
                   help="smallest face side kept, in photo pixels (default: 48)")
    p.add_argument("--min-neighbors", type=at_least(0), default=None,
                   help="Haar minNeighbors: higher rejects more false faces (default: 8)")
    p.add_argument("--eye-check", action="store_true",
                   help="Haar: keep a face only if an eye is found in it (fewer false faces, much lower recall)")
    p.add_argument("--keep-largest", action="store_true",
                   help="keep the largest face of a photo with several, instead of rejecting the photo")
    p.add_argument("--min-per-identity", type=int, default=2,
                   help="drop identities with fewer faces than this (default: 2, one to train and one to validate)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--report", metavar="DIR", help="write contact sheets of kept and rejected photos here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def options_from_args(args: argparse.Namespace):
    """The FaceOptions the flags ask for (defaults from the dataclasses where a flag is absent)."""
    from dataclasses import replace

    from preprocessing.detect import CropOptions, DetectOptions, FaceOptions

    face = FaceOptions()
    detect = DetectOptions(detector=args.detector or ("mtcnn" if args.align else "haar"), eye_check=args.eye_check)
    if args.min_neighbors is not None:
        detect = replace(detect, min_neighbors=args.min_neighbors)
    crop = CropOptions(size=args.size, level=args.align)
    if args.margin is not None:
        crop = replace(crop, margin=args.margin)
    return replace(face, detect=detect, crop=crop,
                   min_face=face.min_face if args.min_face is None else args.min_face,
                   policy="largest" if args.keep_largest else "single")


def _check(args: argparse.Namespace) -> None:
    from img2caricature.dataset import IMAGE_SIZE

    if args.size != IMAGE_SIZE:
        raise UserError(f"--size {args.size}: the dataset format holds {IMAGE_SIZE}x{IMAGE_SIZE} images")
    if args.margin is not None and not 0 <= args.margin <= 2:
        raise UserError(f"--margin {args.margin}: use a fraction of the face box between 0 and 2 (e.g. 0.3)")
    if args.min_face is not None and args.min_face < 1:
        raise UserError("--min-face must be at least 1 pixel")
    if args.min_per_identity < 1:
        raise UserError("--min-per-identity must be at least 1")
    if args.workers is not None and args.workers < 1:
        raise UserError("--workers must be at least 1")
    if args.eye_check and (args.detector == "mtcnn" or args.align):
        raise UserError("--eye-check works with --detector haar only")
    if args.align and args.detector == "haar":
        raise UserError("--align needs MTCNN's landmarks: use --detector mtcnn (or leave --detector out)")


def run(args: argparse.Namespace) -> int:
    _check(args)
    from img2caricature.dataset import check_replaceable

    check_replaceable(args.out, "faces")  # before the long work, not after it
    from img2caricature.runtime import default_workers
    from preprocessing.layouts import walk
    from preprocessing.pipeline import PreprocessOptions, preprocess

    photos = walk(args.input, args.identities)
    options = PreprocessOptions(
        faces=options_from_args(args),
        min_per_identity=args.min_per_identity,
        workers=min(args.workers or default_workers(), len(photos)),
    )
    sheets = None
    if args.report:
        from preprocessing.report import ContactSheets

        sheets = ContactSheets()
    summary = preprocess(photos, Path(args.out), options, observe=sheets.observe if sheets else None,
                         progress=not args.no_progress)
    print(f"wrote {args.out}")
    for line in summary.lines():
        print(line)
    if sheets:
        for path in sheets.write(args.report):
            print(f"report: {path}")
    if summary.kept == 0:
        raise UserError(f"no faces kept from {len(photos)} photos in {args.input}: nothing to train on")
    return 1 if summary.failures else 0
