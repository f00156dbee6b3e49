"""Preprocessing throughput on the shared CelebA photos (run by hand, prints figures).

    .venv/bin/python benchmarks/preprocess.py                 # whole set, all cores, Haar
    .venv/bin/python benchmarks/preprocess.py --limit 500 --detector mtcnn

Prints photos per second for the full pipeline (read, detect, crop, write; wall clock,
so it is only meaningful on an otherwise idle machine: the load average is printed),
then a per-stage split in CPU time on a sample, so a slowdown can be placed and the
idle-machine rate estimated even while other jobs run.
Target: >= 25 photos/s with Haar on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from img2caricature.images import read_image  # noqa: E402
from img2caricature.runtime import default_workers  # noqa: E402
from preprocessing.detect import DetectOptions, FaceOptions, crop_face, detect_faces, select_faces, warm_up  # noqa: E402
from preprocessing.layouts import walk  # noqa: E402
from preprocessing.pipeline import PreprocessOptions, preprocess  # noqa: E402


def stages(photos, options: FaceOptions, n: int) -> dict[str, float]:
    """CPU milliseconds per photo for each stage, one process on one thread.

    CPU time, not wall time: on a machine shared with a training job the wall clock
    measures the neighbours; CPU time per photo is what the work itself costs.
    """
    import cv2

    cv2.setNumThreads(1)
    warm_up(options.detect)
    totals = {"read": 0.0, "detect": 0.0, "crop": 0.0}
    clock = time.process_time
    for photo in photos[:n]:
        t0 = clock()
        try:
            rgb = read_image(photo.path)
        except Exception:
            continue
        t1 = clock()
        boxes = detect_faces(rgb, options.detect)
        t2 = clock()
        _, chosen = select_faces(boxes, options.min_face, options.policy)
        for b in chosen:
            crop_face(rgb, b, options.crop.size, options.crop.margin, options.crop.shift, options.crop.level)
        t3 = clock()
        totals["read"] += t1 - t0
        totals["detect"] += t2 - t1
        totals["crop"] += t3 - t2
    return {k: 1000 * v / min(n, len(photos)) for k, v in totals.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", default=str(ROOT.parent / "shared" / "data" / "celeba-identities"))
    p.add_argument("--detector", choices=("haar", "mtcnn"), default="haar")
    p.add_argument("--workers", type=int, default=default_workers())
    p.add_argument("--limit", type=int, default=0, help="only the first N photos (0: all)")
    p.add_argument("--sample", type=int, default=300, help="photos for the per-stage split")
    args = p.parse_args()

    photos = walk(args.input)
    if args.limit:
        photos = photos[: args.limit]
    faces = FaceOptions(detect=DetectOptions(detector=args.detector))
    options = PreprocessOptions(faces=faces, workers=args.workers)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        summary = preprocess(photos, Path(tmp) / "faces.h5", options, progress=False)
        seconds = time.perf_counter() - start
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"detector {args.detector}, {args.workers} workers, {len(photos)} photos from {args.input}"
          f" (load average {load:.1f} on {os.cpu_count()} cores)")
    print(f"pipeline: {len(photos) / seconds:.1f} photos/s ({seconds:.1f} s), "
          f"kept {summary.kept} ({100 * summary.kept_rate:.1f}%), identities {summary.identities_kept}")
    split = stages(photos[:: max(1, len(photos) // args.sample)], faces, args.sample)
    per_core = 1000 / sum(split.values())
    print("one thread, CPU ms/photo: " + ", ".join(f"{k} {v:.1f}" for k, v in split.items())
          + f" (= {per_core:.1f} photos/s per core, {args.workers * per_core:.1f} photos/s on {args.workers} idle cores)")


if __name__ == "__main__":
    main()
