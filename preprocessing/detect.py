"""Finding faces in a photo and cropping them the one way the whole project uses.

`detect_faces(rgb)` returns boxes, `select_faces` applies the policy (one face only,
the largest, or all), and `crop_face(rgb, box)` cuts a square with a margin and resizes
it to 152x152. `img2car preprocess` goes through `find_faces`; `img2car caricature`
through `preprocessing.finder`, with the same boxes and crop.

Every box is in the Haar cascade's framing, the one the training crops have: MTCNN's own
box is replaced by the Haar-equivalent square its five landmarks give (`align.py`), and the
landmarks ride along on the box so the crop can also level the eyes.

Detectors and their models are loaded once per process (the Haar XML parse and the
MTCNN weights would otherwise dominate per-photo time).
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from preprocessing.align import Framing, box_framing, crop_framing, landmark_framing

Detector = Literal["haar", "mtcnn"]
Policy = Literal["single", "largest", "all"]

HAAR_FILE = "haarcascade_frontalface_default.xml"
EYE_FILE = "haarcascade_eye.xml"


@dataclass(frozen=True)
class Box:
    """A detected face in image pixels (x, y = top-left corner)."""

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0
    landmarks: tuple[tuple[float, float], ...] | None = None   # MTCNN's five points, image pixels

    def framing(self, level: bool = False) -> Framing:
        """The square the crop is cut around (from the landmarks when there are some)."""
        if self.landmarks is not None:
            return landmark_framing(self.landmarks, level)
        return box_framing(self.x, self.y, self.w, self.h)

    @property
    def side(self) -> int:
        return min(self.w, self.h)

    @property
    def area(self) -> int:
        return self.w * self.h


@dataclass(frozen=True)
class DetectOptions:
    """How to find faces. The Haar defaults favour precision: wild photos hold many
    face-like textures (prints, hair, foliage), and a wrong crop poisons identity labels."""

    detector: Detector = "haar"
    scale_factor: float = 1.1
    min_neighbors: int = 8          # 4-6 kept bodies and prints as faces; 8 cost no net recall on the CelebA sample
    min_detect: int = 24            # Haar: smallest box searched for, in pixels of the detection image
    max_side: int = 640             # big photos are searched on a copy this size (speed)
    mtcnn_min_fraction: float = 1 / 8  # MTCNN's pyramid starts at faces this share of the searched side
    eye_check: bool = False         # keep only boxes where the eye cascade fires (Haar only); cost ~25% recall on CelebA
    mtcnn_threshold: float = 0.95   # face probability for MTCNN boxes


@dataclass(frozen=True)
class CropOptions:
    size: int = 152
    margin: float = 0.3             # extra on each side, as a fraction of the box side
    shift: float = -0.05            # move the centre up (fraction of the side): Haar boxes sit low on the brow
    level: bool = False             # turn the crop so the eyes are level (needs landmarks: MTCNN)


@dataclass(frozen=True)
class FaceOptions:
    """Everything that turns a photo into face crops."""

    detect: DetectOptions = field(default_factory=DetectOptions)
    crop: CropOptions = field(default_factory=CropOptions)
    min_face: int = 48              # faces smaller than this (original pixels) are "too small"
    policy: Policy = "single"


@dataclass
class FaceResult:
    """What `find_faces` concluded about one photo."""

    status: Literal["ok", "no face", "several faces", "too small"]
    boxes: list[Box]                # every detection (for reports)
    chosen: list[Box]               # the faces that were cropped
    crops: list[np.ndarray]


# ---- detectors --------------------------------------------------------------------

_per_thread = threading.local()
_loading = threading.Lock()


def _cascade(name: str):
    """One classifier per thread: OpenCV's CascadeClassifier keeps scratch state per call, so
    threads sharing one fail ("scaleIdx" assertion) or find wrong boxes (`img2car serve` and
    the Python API draw in threads). Loading is locked: cv2's first import is not thread-safe."""
    cascades = _per_thread.__dict__.setdefault("cascades", {})
    if name not in cascades:
        with _loading:
            import cv2

            path = cv2.data.haarcascades + name
            cascade = cv2.CascadeClassifier(path)
        if cascade.empty():
            raise RuntimeError(f"OpenCV could not load its Haar cascade {path}")
        cascades[name] = cascade
    return cascades[name]


@functools.lru_cache(maxsize=None)
def _mtcnn():
    from preprocessing.mtcnn import MTCNN  # facenet-pytorch's nets and weights, without its slow import

    return MTCNN()


def _gray(rgb: np.ndarray) -> np.ndarray:
    import cv2

    # Histogram equalisation helps the cascade on dim and washed-out photos.
    return cv2.equalizeHist(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))


def _has_eye(gray: np.ndarray, box: Box) -> bool:
    # Eyes lie in the upper half of a frontal face box.
    top = gray[box.y: box.y + box.h // 2 + box.h // 8, box.x: box.x + box.w]
    side = max(8, box.w // 8)
    eyes = _cascade(EYE_FILE).detectMultiScale(top, scaleFactor=1.1, minNeighbors=3, minSize=(side, side))
    return len(eyes) > 0


def _drop_nested(boxes: list[Box], overlap: float = 0.5) -> list[Box]:
    """Drop a box mostly inside a larger one: the cascade's grouping leaves such duplicates
    (a face inside a head-and-hair box), and they would count as a second face."""
    kept: list[Box] = []
    for b in sorted(boxes, key=lambda b: -b.area):
        if all(_intersection(b, k) < overlap * b.area for k in kept):
            kept.append(b)
    return kept


def _intersection(a: Box, b: Box) -> int:
    w = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    h = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    return max(0, w) * max(0, h)


def _haar(rgb: np.ndarray, opt: DetectOptions) -> list[Box]:
    gray = _gray(rgb)
    found = _cascade(HAAR_FILE).detectMultiScale(
        gray, scaleFactor=opt.scale_factor, minNeighbors=opt.min_neighbors,
        minSize=(opt.min_detect, opt.min_detect))
    boxes = _drop_nested([Box(int(x), int(y), int(w), int(h)) for x, y, w, h in found])
    if opt.eye_check:
        boxes = [b for b in boxes if _has_eye(gray, b)]
    return boxes


def _mtcnn_detect(rgb: np.ndarray, opt: DetectOptions) -> list[Box]:
    import torch

    h, w = rgb.shape[:2]
    if min(h, w) < 12:  # below MTCNN's smallest window: nothing to find (and its pyramid would be empty)
        return []
    net = _mtcnn()
    # Faces smaller than the pyramid's start are still often found; starting lower costs
    # time on every photo. Never above the short side, or a panorama would get no pyramid.
    min_face_size = max(12.0, min(max(h, w) * opt.mtcnn_min_fraction, min(h, w)))
    # One thread: MTCNN is hundreds of tiny ops, and on a busy 2-core machine each op's wait
    # for a second thread made it 6x slower (docs/DETECTION.md).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            found = net.detect(rgb, min_face_size)
    finally:
        torch.set_num_threads(threads)
    boxes = []
    for p, marks in zip(found.probs, found.landmarks):
        if p < opt.mtcnn_threshold:
            continue
        f = landmark_framing(marks, level=False)  # the Haar box this face would have had
        boxes.append(Box(int(round(f.cx - f.side / 2)), int(round(f.cy - f.side / 2)), int(round(f.side)),
                         int(round(f.side)), float(p), tuple((float(x), float(y)) for x, y in marks)))
    return boxes


def detect_faces(rgb: np.ndarray, options: DetectOptions = DetectOptions()) -> list[Box]:
    """Faces in an RGB uint8 image, largest first, in the image's own pixels."""
    import cv2

    h, w = rgb.shape[:2]
    scale = min(1.0, options.max_side / max(h, w))
    # max(1, ...): a panorama's short side must not round to nothing
    small = rgb if scale == 1.0 else cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                                                interpolation=cv2.INTER_AREA)
    boxes = _mtcnn_detect(small, options) if options.detector == "mtcnn" else _haar(small, options)
    if scale != 1.0:
        boxes = [_rescale(b, 1.0 / scale) for b in boxes]
    # Sorted by area, then position, so ties resolve the same way every run.
    return sorted(boxes, key=lambda b: (-b.area, b.y, b.x))


def _rescale(b: Box, k: float) -> Box:
    marks = None if b.landmarks is None else tuple((x * k, y * k) for x, y in b.landmarks)
    return Box(round(b.x * k), round(b.y * k), round(b.w * k), round(b.h * k), b.score, marks)


def warm_up(options: DetectOptions) -> None:
    """Load the detector now (e.g. in a worker initialiser) rather than on the first photo."""
    if options.detector == "mtcnn":
        _mtcnn()
    else:
        _cascade(HAAR_FILE)
        if options.eye_check:
            _cascade(EYE_FILE)


# ---- cropping ---------------------------------------------------------------------

def crop_face(rgb: np.ndarray, box: Box, size: int = 152, margin: float = 0.3, shift: float = -0.05,
              level: bool = False) -> np.ndarray:
    """A square around `box` (side grown by `margin` on each side), resized to size x size;
    `level` turns it so the eyes are level when the box has landmarks.

    Parts of the square outside the photo are filled black rather than moving the square,
    so the face stays centred the same way in every crop.
    """
    return crop_framing(rgb, box.framing(level), size, margin, shift)


# ---- policy -----------------------------------------------------------------------

def select_faces(boxes: list[Box], min_face: int, policy: Policy = "single") -> tuple[str, list[Box]]:
    """Apply the size floor and the one-face policy. Returns (status, chosen boxes).

    Detections below `min_face` are ignored when a usable face exists: a tiny face in the
    background does not make the photo ambiguous, and most tiny detections are false.
    """
    usable = [b for b in boxes if b.side >= min_face]
    if not usable:
        return ("too small" if boxes else "no face"), []
    if len(usable) > 1 and policy == "single":
        return "several faces", []
    if policy == "all":
        return "ok", usable
    return "ok", usable[:1]  # boxes come largest first


def find_faces(rgb: np.ndarray, options: FaceOptions = FaceOptions()) -> FaceResult:
    """Detect, select and crop: the whole photo -> face-crops step."""
    boxes = detect_faces(rgb, options.detect)
    status, chosen = select_faces(boxes, options.min_face, options.policy)
    c = options.crop
    crops = [crop_face(rgb, b, c.size, c.margin, c.shift, c.level) for b in chosen]
    return FaceResult(status, boxes, chosen, crops)  # type: ignore[arg-type]
