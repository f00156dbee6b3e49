"""Photos the preprocessing tests make from the shipped astronaut (a real, public-domain face)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

ASTRONAUT = Path(__file__).resolve().parents[1] / "examples" / "astronaut.jpg"


def astronaut(side: int = 320) -> np.ndarray:
    """The astronaut at `side` x `side` (320: face about 58 px, above the default 48 px floor)."""
    with Image.open(ASTRONAUT) as img:
        return np.asarray(img.convert("RGB").resize((side, side), Image.Resampling.LANCZOS))


def two_faces(rgb: np.ndarray, second_scale: float = 0.8) -> np.ndarray:
    """Two people side by side: the photo, then a smaller mirrored copy on white."""
    h, w = rgb.shape[:2]
    small = np.asarray(Image.fromarray(rgb[:, ::-1]).resize((round(w * second_scale), round(h * second_scale))))
    right = np.full((h, small.shape[1], 3), 255, np.uint8)
    right[: small.shape[0]] = small
    return np.ascontiguousarray(np.concatenate([rgb, right], axis=1))


def turned(rgb: np.ndarray, degrees: float) -> np.ndarray:
    """The astronaut photo turned counter-clockwise on screen about her face."""
    import cv2

    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((0.47 * w, 0.28 * h), degrees, 1.0)
    return cv2.warpAffine(rgb, m, (w, h), borderMode=cv2.BORDER_REFLECT)


def eye_angle(rgb: np.ndarray) -> float:
    """The eyes' angle in degrees (0: level) of the one face MTCNN finds in `rgb`."""
    from preprocessing.align import eye_measures
    from preprocessing.detect import DetectOptions, detect_faces

    (face,) = detect_faces(rgb, DetectOptions(detector="mtcnn"))
    return eye_measures(face.landmarks)[3]


def save(rgb: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, quality=95)
    return path


def save_rotated_exif(rgb: np.ndarray, path: Path) -> Path:
    """Pixels stored turned a quarter left, with EXIF orientation 6 ("turn right to view"),
    as phone cameras write portraits. Only a reader that applies the tag sees it upright."""
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = Image.fromarray(rgb).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(path, quality=95, exif=exif)
    return path


def save_corrupt(path: Path) -> Path:
    """A JPEG cut off half way, as an interrupted download leaves it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = ASTRONAUT.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def save_not_image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("this is a text file with an image's name\n")
    return path
