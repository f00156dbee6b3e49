"""How often `img2car caricature` finds a face, per detector choice, and how MTCNN's framing
compares with the Haar framing the training crops have.

    nice -n 15 python benchmarks/detection.py ../shared/data/celeba-identities \\
        --sheet docs/detection-missed.jpg --json reports/detection.json
    python benchmarks/detection.py ../shared/data/celeba-identities --limit 500 --fit   # refit align.py's constants

Per photo each detector runs once (its CPU time recorded, OpenCV and torch on one thread,
so the figure holds on a machine busy with other jobs); every choice then goes through the
finder's own code (`preprocessing.finder.find_photo_faces`) with those detections, so the
rates are what the CLI does. "old" is caricature's previous default (Haar on a 320-px copy
with a 1.2 scale step, faces of 32 px and up, no landmarks). The cascade's time is the fast
Haar pass, plus MTCNN's where it had to ask MTCNN.

Framing, on photos where Haar (training settings) and MTCNN both find the chosen face: IoU
of the Haar square with the MTCNN-derived square (upright, and turned to level the eyes),
and the cosine between f's embeddings of the Haar crop and the MTCNN crop, beside the
cosines of two photos of one person and of two people, for the shipped model's f and
(when installed) dlib's face ResNet.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import preprocessing.detect as detect_module  # noqa: E402
import preprocessing.finder as finder  # noqa: E402
from img2caricature.images import ImageError, read_image  # noqa: E402
from preprocessing.align import Framing, fit_calibration, framing_iou, landmark_framing  # noqa: E402
from preprocessing.detect import Box, FaceOptions, crop_face  # noqa: E402
from preprocessing.layouts import Photo, walk  # noqa: E402
from preprocessing.worker import Outcome  # noqa: E402

OLD = FaceOptions(detect=finder.HAAR_FAST, min_face=32, policy="largest")
CHOICES = ("old",) + finder.CHOICES
FRAMINGS = ("haar", "mtcnn upright", "mtcnn levelled")


class Detections:
    """Runs each detector once per photo and times it; the finder then reuses the result."""

    def __init__(self):
        self.real = detect_module.detect_faces
        self.rgb, self.found, self.seconds, self.asked = None, {}, {}, set()
        detect_module.detect_faces = finder.detect_faces = self

    def photo(self, rgb: np.ndarray) -> None:
        self.rgb, self.found, self.seconds = rgb, {}, {}

    def __call__(self, rgb, options):
        assert rgb is self.rgb
        self.asked.add(options)
        if options not in self.found:
            start = time.process_time()
            self.found[options] = self.real(rgb, options)
            self.seconds[options] = time.process_time() - start
        return self.found[options]

    def run(self, find, *args):
        """find(*args), and the detection CPU seconds it needed."""
        self.asked = set()
        result = find(*args)
        return result, sum(self.seconds[o] for o in self.asked)


@dataclass
class Measured:
    """One photo's figures, sent back from a worker."""

    photo: Photo
    readable: bool = True
    found: dict[str, bool] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    unconfirmed: dict[str, bool] = field(default_factory=dict)
    missed: Outcome | None = None
    pair: tuple[Framing, tuple, dict[str, np.ndarray]] | None = None   # haar framing, landmarks, crops


def same_face(haar: Box, faces: list[Box]) -> Box | None:
    best = max(faces, key=lambda b: framing_iou(haar.framing(), b.framing()), default=None)
    return best if best is not None and framing_iou(haar.framing(), best.framing()) > 0.3 else None


_det: Detections | None = None


def init_worker() -> None:
    import cv2

    global _det
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    for choice in finder.CHOICES:
        finder.warm_up(choice)
    _det = Detections()


def measure(photo: Photo) -> Measured:
    m = Measured(photo)
    try:
        rgb = read_image(photo.path)
    except ImageError:
        m.readable = False
        return m
    _det.photo(rgb)
    results = {}
    for choice in CHOICES:
        if choice == "old":
            results[choice], m.seconds[choice] = _det.run(detect_module.find_faces, rgb, OLD)
        else:
            results[choice], m.seconds[choice] = _det.run(finder.find_photo_faces, rgb, finder.FinderOptions(choice))
        m.found[choice] = bool(results[choice].crops)
    mtcnn_faces = _det(rgb, finder.MTCNN)
    for choice, result in results.items():
        # a Haar pick MTCNN does not see at all: most likely not a face (hair, a print, a pattern)
        pick = result.chosen[0] if result.chosen else None
        m.unconfirmed[choice] = pick is not None and pick.landmarks is None and same_face(pick, mtcnn_faces) is None
    if not results["mtcnn"].crops:
        m.missed = Outcome(photo, results["mtcnn"].status, boxes=results["mtcnn"].boxes)
    if results["haar"].crops and results["mtcnn"].crops:
        haar = results["haar"].chosen[0]
        mt = same_face(haar, mtcnn_faces)
        if mt is not None:
            crops = {"haar": crop_face(rgb, haar), "mtcnn upright": crop_face(rgb, mt),
                     "mtcnn levelled": crop_face(rgb, mt, level=True)}
            m.pair = (haar.framing(), mt.landmarks, crops)
    return m


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def encoders(model: str | None) -> dict[str, tuple[object, set[str] | None]]:
    """name -> (encoder, the people to judge identity on: those it never trained on)."""
    from img2caricature import checkpoint
    from img2caricature.caricature import default_model_path
    from img2caricature.evaluate.heldout import heldout_identities
    from img2caricature.nets import dlib_resnet
    from img2caricature.nets.encoder import dlib_encoder_snapshot, encoder_from_snapshot
    from img2caricature.translate import translator_from_snapshot

    snapshot = checkpoint.load(model or default_model_path())
    found = {"shipped f": (translator_from_snapshot(snapshot).encoder, set(heldout_identities(snapshot) or []) or None)}
    if dlib_resnet.installed_weights() is not None:
        found["dlib-resnet-v1"] = (encoder_from_snapshot(dlib_encoder_snapshot()).eval(), None)
    return found


@torch.no_grad()
def embed(f, crops: list[np.ndarray]) -> np.ndarray:
    from img2caricature import dataset

    x = dataset.to_float(torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2))
    return f.encode(x).float().numpy()


def framing_figures(emb: dict[str, np.ndarray], ids: np.ndarray, people: set[str] | None) -> dict[str, dict]:
    """Cosine of each photo's Haar crop with its MTCNN crops; and per framing, how well the
    embeddings keep identity among `people` (verification ROC AUC, nearest-neighbour top-1)."""
    from img2caricature.metrics import retrieval_top1, verification

    out = {}
    for name in FRAMINGS[1:]:
        c = cosine(emb["haar"], emb[name])
        out[f"cosine, haar vs {name} crop of the same photo"] = {"mean": float(c.mean()), "median": float(np.median(c))}
    keep = np.array([people is None or i in people for i in ids])
    labels = np.unique(ids[keep], return_inverse=True)[1]
    if len(labels) == 0 or np.bincount(labels).max() < 2:
        return out  # nobody with two photos in this sample
    for name in FRAMINGS:
        e = torch.from_numpy(emb[name][keep])
        out[f"identity, {name} framing"] = {"roc_auc": verification(e, labels)["roc_auc"],
                                            "top1": retrieval_top1(e, labels), "faces": int(keep.sum()),
                                            "people": int(labels.max() + 1)}
    return out


def missed_sheet(missed: list[Outcome], path: Path, columns: int = 12) -> None:
    from PIL import Image

    from preprocessing.report import _font, _tile

    font, size, pad = _font(11), 112, 2
    tiles = [_tile(o, o.status, size, font) for o in missed]
    rows = max(1, (len(tiles) + columns - 1) // columns)
    sheet = Image.new("RGB", (columns * (size + pad) + pad, rows * (size + 20 + pad) + pad), "white")
    for i, t in enumerate(tiles):
        sheet.paste(t, (pad + (i % columns) * (size + pad), pad + (i // columns) * (size + 20 + pad)))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, quality=80)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", nargs="?", default="../shared/data/celeba-identities")
    p.add_argument("--limit", type=int, default=None, help="a seeded random sample of this many photos")
    p.add_argument("--fit", action="store_true", help="fit align.py's calibration on this run's pairs and print it")
    p.add_argument("--model", default=None, help="whose encoder f measures the crops (default: the shipped model)")
    p.add_argument("--sheet", default=None, help="contact sheet (JPEG) of the photos the default still misses")
    p.add_argument("--json", default=None, help="write every figure here")
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()

    from tqdm import tqdm

    photos = walk(args.folder)
    if args.limit:
        photos = sorted(random.Random(0).sample(photos, min(args.limit, len(photos))), key=lambda ph: ph.source)
    torch.set_num_threads(1)
    fs = encoders(args.model)
    found, seconds, unconfirmed, unreadable = Counter(), defaultdict(list), Counter(), 0
    missed: list[Outcome] = []
    pairs = []            # (haar framing, landmarks, identity)
    batch, emb = defaultdict(list), {e: defaultdict(list) for e in fs}

    def flush():
        for e, (f, _) in fs.items():
            for k, crops in batch.items():
                emb[e][k].append(embed(f, crops))
        batch.clear()

    ctx = multiprocessing.get_context("forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn")
    with ctx.Pool(args.workers, initializer=init_worker) as pool:
        bar = tqdm(pool.imap(measure, photos, chunksize=4), total=len(photos), unit="photo", desc="detection",
                   dynamic_ncols=True)
        for m in bar:
            if not m.readable:
                unreadable += 1
                continue
            for choice in CHOICES:
                found[choice] += m.found[choice]
                seconds[choice].append(m.seconds[choice])
                unconfirmed[choice] += m.unconfirmed[choice]
            if m.missed is not None:
                missed.append(m.missed)
            if m.pair is not None:
                framing, marks, crops = m.pair
                pairs.append((framing, marks, m.photo.identity))
                for k, crop in crops.items():
                    batch[k].append(crop)
                if len(batch["haar"]) >= 64:
                    flush()
            bar.set_postfix(mtcnn=f"{found['mtcnn'] / (bar.n + 1):.3f}", refresh=False)
    if batch:
        flush()
    emb = {e: {k: np.concatenate(v) for k, v in per.items()} for e, per in emb.items()}

    n = len(photos) - unreadable
    report = {"photos": len(photos), "unreadable": unreadable, "rates": {}, "cpu_ms": {}, "framing": {},
              "cosine": {}, "haar_picks_mtcnn_does_not_see": dict(unconfirmed)}
    print(f"\n{len(photos)} photos ({unreadable} unreadable); an emoji is written when a face is found")
    for choice in CHOICES:
        rate, ms = found[choice] / n, 1000 * statistics.mean(seconds[choice])
        report["rates"][choice], report["cpu_ms"][choice] = rate, ms
        print(f"  {choice:8s} {found[choice]:5d} / {n} = {100 * rate:5.1f}%   detection {ms:6.1f} CPU ms/photo "
              f"({ms / report['cpu_ms']['old']:.2f}x old)   Haar picks MTCNN does not see: {unconfirmed[choice]}")

    for name, level in (("mtcnn upright", False), ("mtcnn levelled", True)):
        ious = [framing_iou(h, landmark_framing(l, level)) for h, l, _ in pairs]
        report["framing"][name] = {"mean_iou": float(np.mean(ious)), "median_iou": float(np.median(ious)),
                                   "p10_iou": float(np.percentile(ious, 10))}
    print(f"\nframing, {len(pairs)} faces both find (Haar box vs the MTCNN-derived square):")
    for name, v in report["framing"].items():
        print(f"  {name:15s} IoU mean {v['mean_iou']:.3f}  median {v['median_iou']:.3f}  10th percentile {v['p10_iou']:.3f}")

    ids = np.array([i for _, _, i in pairs])
    for e, (_, people) in fs.items():
        report["cosine"][e] = figures = framing_figures(emb[e], ids, people)
        print(f"\n{e}:")
        for name, v in figures.items():
            print(f"  {name:48s} " + "  ".join(f"{k} {x:.3f}" if isinstance(x, float) else f"{k} {x}"
                                               for k, x in v.items()))

    if args.fit:
        cal = fit_calibration([h for h, _, _ in pairs], [l for _, l, _ in pairs])
        ious = [framing_iou(h, landmark_framing(l, False, cal)) for h, l, _ in pairs]
        print(f"\nfitted on these {len(pairs)} faces: {cal} (upright IoU mean {np.mean(ious):.3f})")
        report["fitted"] = cal.__dict__
    if args.sheet:
        missed_sheet(missed, Path(args.sheet))
        print(f"\n{len(missed)} photos the default misses: {args.sheet}")
    report["missed"] = [{"source": o.photo.source, "status": o.status,
                         "boxes": [[b.x, b.y, b.w, b.h] for b in o.boxes]} for o in missed]
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
