"""`img2car caricature PHOTO [PHOTO ... | DIR]`"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Iterator

from img2caricature.commands.options import add_device, at_least


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", metavar="PHOTO", help="photos and/or folders of photos")
    p.add_argument("-o", "--out", default=None,
                   help="output folder (or a .png file for one photo); default: beside each photo as NAME.emoji.png")
    p.add_argument("--model", default=None, help="a dtn.pt or cyclegan.pt snapshot (default: the model shipped in the package)")
    p.add_argument("--size", type=int, default=256, help="side of the emoji PNG in pixels (default 256)")
    p.add_argument("--upscaler", default=None, metavar="UPSCALER.pt",
                   help="a learned 2x emoji upscaler applied to g's emoji before --size's bicubic resize "
                        "(off by default: it did not beat bicubic by the two-sample test, see docs/MODEL.md)")
    p.add_argument("--side-by-side", action="store_true", help="write the photo's face crop and the emoji together")
    p.add_argument("--detector", choices=("mtcnn", "haar", "cascade"), default="mtcnn",
                   help="mtcnn: facenet-pytorch's MTCNN, eyes levelled by its landmarks (default); haar: OpenCV's "
                        "cascade, as the training crops were found; cascade: haar first, mtcnn on a miss")
    p.add_argument("--all-faces", action="store_true",
                   help="an emoji for every face (default: the most prominent, i.e. largest and most central)")
    p.add_argument("--no-detect", action="store_true", help="use the whole image (centre square) as the face")
    p.add_argument("--min-face", type=at_least(1), default=24,
                   help="smallest face to use: side of its box in photo pixels (default 24)")
    add_device(p)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from img2caricature.caricature import Outputs, caricature_photo, collect_inputs, load_model
    from img2caricature.commands.per_photo import for_each_photo
    from img2caricature.errors import UserError
    from img2caricature.runtime import pick_device
    from preprocessing.finder import crop_finder

    if args.size < 8 or args.size > 4096:
        raise UserError(f"--size must be between 8 and 4096, got {args.size}")
    photos, problems = collect_inputs(args.inputs)
    for name, reason in problems:
        print(f"{name}: {reason}", file=sys.stderr)
    if not photos:
        return 1 if problems else 0
    outputs = Outputs(Path(args.out) if args.out else None, single=len(photos) == 1, inputs=photos)
    device = pick_device(args.device)
    with _one_thread_for_one_photo(len(photos), device):
        model = load_model(args.model, device)
        if args.upscaler:
            from img2caricature.nets.upscaler import Upscaled, load_upscaler

            model = Upscaled(model, load_upscaler(args.upscaler).to(device))
        find_crops = crop_finder(args.detector, args.all_faces, args.min_face, args.no_detect)
        failed = len(problems) + for_each_photo(
            photos, "caricature",
            lambda photo: caricature_photo(photo, model, find_crops, outputs, args.size, args.side_by_side, device),
            "emoji", getattr(args, "debug", False))
    return 1 if failed else 0


@contextlib.contextmanager
def _one_thread_for_one_photo(photos: int, device) -> Iterator[None]:
    """One photo is one small pass of f and g: a second thread mostly waits for its share, which
    cost 0.1-0.8 s of CPU on the busy 2-core machine, a sixth of the cold start
    (docs/DETECTION.md); the default's emoji come out the same (520 photos, 1 and 2 threads).
    Several photos keep torch's thread count; the count is put back for a caller that goes on."""
    import torch

    threads = torch.get_num_threads()
    if device.type == "cpu" and photos == 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
