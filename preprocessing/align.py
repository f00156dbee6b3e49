"""Framing a face from MTCNN's five landmarks the way the training crops were framed.

The training crops (`img2car preprocess`, Haar boxes) are squares cut around OpenCV's
cascade box. MTCNN's own box is another shape (narrower, taller, lower), so cropping it
the Haar way frames the face differently from every face f was trained on. Instead, the
landmarks give a Haar-equivalent square: its side is a fixed mix of the eye distance and
the eye-to-mouth height, its centre a fixed offset from the eyes along the face's own axes,
and its angle levels the eyes. The constants were fitted on photos both detectors find
(`python benchmarks/detection.py --fit`, figures in docs/DETECTION.md).

Landmarks are MTCNN's order: left eye, right eye, nose, left mouth corner, right mouth
corner, as (x, y) in image pixels (a pixel's centre is at +0.5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Framing:
    """The face square in image pixels: centre, side and rotation (degrees; positive when
    the right eye sits lower than the left, as the eyes' line turns clockwise on screen)."""

    cx: float
    cy: float
    side: float
    angle: float = 0.0

    def corners(self) -> np.ndarray:
        ex, ey = _axes(self.angle)
        h = self.side / 2
        c = np.array([self.cx, self.cy])
        return np.stack([c + h * (sx * ex + sy * ey) for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))])


@dataclass(frozen=True)
class Calibration:
    """Landmarks -> the Haar box of the same face (see `landmark_framing`)."""

    per_eye_distance: float     # side = a * eye distance + b * eye-to-mouth height
    per_eye_mouth: float
    across: float               # centre = eyes' midpoint + (across, down) * side, in the face's axes
    down: float


# Fitted on the 396 faces Haar and MTCNN both found in a 500-photo sample of
# ../shared/data/celeba-identities (benchmarks/detection.py --limit 500 --fit).
HAAR_FRAMING = Calibration(per_eye_distance=2.016, per_eye_mouth=0.611, across=-0.006, down=0.110)


def _axes(angle: float) -> tuple[np.ndarray, np.ndarray]:
    """The face's x axis (along the eyes) and y axis (down the face) in image coordinates."""
    a = math.radians(angle)
    return np.array([math.cos(a), math.sin(a)]), np.array([-math.sin(a), math.cos(a)])


def eye_measures(landmarks) -> tuple[np.ndarray, float, float, float]:
    """Eyes' midpoint, eye distance, eye-to-mouth height (along the face's axis), eye angle."""
    p = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    eyes = (p[0] + p[1]) / 2
    v = p[1] - p[0]
    distance = max(float(np.hypot(*v)), 1e-6)
    angle = math.degrees(math.atan2(v[1], v[0]))
    _, down = _axes(angle)
    height = float((p[3] + p[4]) / 2 @ down - eyes @ down)
    return eyes, distance, height, angle


def landmark_framing(landmarks, level: bool = True, cal: Calibration = HAAR_FRAMING) -> Framing:
    """The Haar-equivalent square of a face from its five landmarks; `level` keeps the
    eyes' angle (the crop turns it level), otherwise the square stays upright."""
    eyes, distance, height, angle = eye_measures(landmarks)
    side = cal.per_eye_distance * distance + cal.per_eye_mouth * max(height, 0.0)
    ex, ey = _axes(angle)
    c = eyes + side * (cal.across * ex + cal.down * ey)
    return Framing(float(c[0]), float(c[1]), float(side), angle if level else 0.0)


def box_framing(x: float, y: float, w: float, h: float) -> Framing:
    """A detector's box as the crop sees it: a square of the longer side, same centre."""
    return Framing(x + w / 2, y + h / 2, float(max(w, h)))


def fit_calibration(framings: list[Framing], landmarks: list) -> Calibration:
    """Least-squares side, median offsets: the calibration that maps each face's landmarks
    onto the square another detector gave the same face."""
    m = [eye_measures(l) for l in landmarks]
    features = np.array([[d, max(h, 0.0)] for _, d, h, _ in m])
    sides = np.array([f.side for f in framings])
    (a, b), *_ = np.linalg.lstsq(features, sides, rcond=None)
    across, down = [], []
    for (eyes, _, _, angle), f in zip(m, framings):
        ex, ey = _axes(angle)
        d = np.array([f.cx, f.cy]) - eyes
        across.append(d @ ex / f.side)
        down.append(d @ ey / f.side)
    return Calibration(round(float(a), 3), round(float(b), 3), round(float(np.median(across)), 3),
                       round(float(np.median(down)), 3))


def framing_iou(a: Framing, b: Framing) -> float:
    """Intersection over union of two (possibly turned) squares."""
    import cv2

    ra = ((a.cx, a.cy), (a.side, a.side), a.angle)
    rb = ((b.cx, b.cy), (b.side, b.side), b.angle)
    kind, points = cv2.rotatedRectangleIntersection(ra, rb)
    if kind == cv2.INTERSECT_NONE or points is None:
        return 0.0
    inter = cv2.contourArea(cv2.convexHull(points.astype(np.float32)))
    return float(inter / (a.side ** 2 + b.side ** 2 - inter))


def crop_framing(rgb: np.ndarray, f: Framing, size: int = 152, margin: float = 0.3,
                 shift: float = -0.05) -> np.ndarray:
    """The square of `f` grown by `margin` on each side and moved by `shift` of its side along
    the face's own vertical, turned upright and resized to size x size. Outside the photo is
    black, so the face stays where the framing puts it."""
    side = f.side * (1.0 + 2.0 * margin)
    ex, ey = _axes(f.angle)
    c = np.array([f.cx, f.cy]) + shift * side * ey
    if f.angle == 0.0:
        return _crop_upright(rgb, float(c[0]), float(c[1]), side, size)
    return _crop_turned(rgb, c, side, ex, ey, size)


def _crop_upright(rgb: np.ndarray, cx: float, cy: float, side: float, size: int) -> np.ndarray:
    # Integer square, sliced and resized: exactly how the training crops were cut.
    import cv2

    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = max(1, int(round(side)))
    h, w = rgb.shape[:2]
    pad = max(0, -x0, -y0, x0 + s - w, y0 + s - h)
    if pad:
        rgb = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        x0, y0 = x0 + pad, y0 + pad
    square = rgb[y0:y0 + s, x0:x0 + s]
    interp = cv2.INTER_AREA if s > size else cv2.INTER_CUBIC
    return np.ascontiguousarray(cv2.resize(square, (size, size), interpolation=interp), dtype=np.uint8)


def _crop_turned(rgb: np.ndarray, c: np.ndarray, side: float, ex: np.ndarray, ey: np.ndarray,
                 size: int) -> np.ndarray:
    import cv2

    # Only the region under the turned square is touched: a huge photo costs no more.
    half = side / 2 * (abs(ex) + abs(ey))
    h, w = rgb.shape[:2]
    x0, y0 = max(0, int(math.floor(c[0] - half[0])) - 1), max(0, int(math.floor(c[1] - half[1])) - 1)
    x1, y1 = min(w, int(math.ceil(c[0] + half[0])) + 1), min(h, int(math.ceil(c[1] + half[1])) + 1)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((size, size, 3), np.uint8)
    region, origin, scale = rgb[y0:y1, x0:x1], np.array([x0, y0], np.float64), 1.0
    shrink = side / size
    if shrink > 1.5:  # shrink with an area filter first: a bilinear warp alone would alias
        scale = 1.0 / shrink
        rw, rh = max(1, round(region.shape[1] * scale)), max(1, round(region.shape[0] * scale))
        region = cv2.resize(region, (rw, rh), interpolation=cv2.INTER_AREA)
        scale = rw / (x1 - x0)
    # Output pixel (u, v) -> region pixel; both in "pixel centre at +0.5" coordinates.
    k = side / size * scale
    centre = (c - origin) * scale
    offset = centre - k * size / 2 * (ex + ey) + k * 0.5 * (ex + ey) - 0.5
    m = np.array([[k * ex[0], k * ey[0], offset[0]], [k * ex[1], k * ey[1], offset[1]]])
    out = cv2.warpAffine(region, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return np.ascontiguousarray(out, dtype=np.uint8)
