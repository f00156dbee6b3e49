"""Photo -> face crops for `img2car caricature`: which detector, which face, and what to
say on a miss.

MTCNN is the default: on the 5,267 photos of ../shared/data/celeba-identities it finds a
usable face in far more photos than the Haar cascade, and a Haar pass first (MTCNN only on
its misses) saves no time (docs/DETECTION.md). Whichever detector finds the face, the crop
is framed like the training crops (Haar boxes, `align.py`); MTCNN's landmarks also level
the eyes. `min_face` is the side of that Haar-style square, in photo pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Literal

import numpy as np

from preprocessing.detect import Box, CropOptions, DetectOptions, FaceResult, crop_face, detect_faces

Choice = Literal["mtcnn", "haar", "cascade"]
CHOICES: tuple[Choice, ...] = ("mtcnn", "haar", "cascade")

HAAR_FAST = DetectOptions(max_side=320, scale_factor=1.2)  # the cascade's first pass (caricature's old default)
HAAR = DetectOptions()                                     # the settings that made the training crops
MTCNN = DetectOptions(detector="mtcnn")


@dataclass(frozen=True)
class FinderOptions:
    detector: Choice = "mtcnn"
    all_faces: bool = False
    min_face: int = 24          # Haar-style face side, photo pixels: below this the emoji is guesswork
    crop: CropOptions = CropOptions(level=True)


def detect(rgb: np.ndarray, detector: Choice, min_face: int) -> list[Box]:
    """Every face the choice sees (the cascade: the fast Haar pass, or MTCNN when that finds
    no face of at least `min_face`)."""
    if detector == "cascade":
        boxes = detect_faces(rgb, HAAR_FAST)
        return boxes if any(b.side >= min_face for b in boxes) else detect_faces(rgb, MTCNN)
    return detect_faces(rgb, MTCNN if detector == "mtcnn" else HAAR)


def prominence(box: Box, shape: tuple[int, ...]) -> float:
    """Size, discounted by distance from the photo's centre (down to half at a corner)."""
    h, w = shape[:2]
    off = math.hypot(box.x + box.w / 2 - w / 2, box.y + box.h / 2 - h / 2) / math.hypot(w / 2, h / 2)
    return box.side * (1.0 - 0.5 * min(off, 1.0))


def select(boxes: list[Box], shape: tuple[int, ...], min_face: int, all_faces: bool) -> tuple[str, list[Box]]:
    """(status, faces to crop): faces of at least `min_face`, the most prominent first;
    only that one unless `all_faces`."""
    usable = sorted((b for b in boxes if b.side >= min_face), key=lambda b: -prominence(b, shape))
    if not usable:
        return ("too small" if boxes else "no face"), []
    return "ok", usable if all_faces else usable[:1]


def find_photo_faces(rgb: np.ndarray, options: FinderOptions = FinderOptions()) -> FaceResult:
    """Detect, keep faces of at least `min_face`, take the most prominent (or all, most
    prominent first), crop each as the training crops were framed."""
    boxes = detect(rgb, options.detector, options.min_face)
    status, chosen = select(boxes, rgb.shape, options.min_face, options.all_faces)
    if not chosen:
        return FaceResult(status, boxes, [], [])  # type: ignore[arg-type]
    c = options.crop
    return FaceResult("ok", boxes, chosen, [crop_face(rgb, b, c.size, c.margin, c.shift, c.level) for b in chosen])


def miss_hint(rgb: np.ndarray, result: FaceResult, options: FinderOptions) -> str:
    """What to try, checked on this photo where it can be: only advice that would work."""
    if result.status == "too small":
        largest = max(b.side for b in result.boxes)
        return f"the largest face is {largest} px: --min-face {largest} takes it"
    for other in ("haar", "mtcnn"):
        if other != options.detector and find_photo_faces(rgb, replace(options, detector=other)).crops:
            return f"--detector {other} finds one"
    return "no detector finds one; if the photo is already a face crop, --no-detect uses it whole"


def crop_finder(detector: Choice = "mtcnn", all_faces: bool = False, min_face: int = 24,
                no_detect: bool = False) -> Callable[[np.ndarray], list[np.ndarray]]:
    """photo (RGB uint8) -> 152x152 face crops; a miss raises ImageError with what to try."""
    from img2caricature.images import ImageError, resize_square

    if no_detect:
        return lambda rgb: [resize_square(rgb, CropOptions().size)]
    options = FinderOptions(detector, all_faces, min_face)

    def find(rgb: np.ndarray) -> list[np.ndarray]:
        result = find_photo_faces(rgb, options)
        if not result.crops:
            raise ImageError(result.status, miss_hint(rgb, result, options))
        return result.crops
    return find


def warm_up(detector: Choice) -> None:
    """Load the detectors a choice can use now, not on the first photo."""
    from preprocessing.detect import warm_up as load

    for opt in {"mtcnn": [MTCNN], "haar": [HAAR], "cascade": [HAAR_FAST, MTCNN]}[detector]:
        load(opt)
