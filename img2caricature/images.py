"""Reading images robustly, as every stage must: photos from the wild, payloads from the
network, files from users. One place decides what counts as a readable image.

`read_image` honours EXIF orientation and converts any mode (grayscale, palette,
RGBA, CMYK, 16-bit) to 8-bit RGB; transparent parts go onto a white background,
as emoji are drawn. Failures are `ImageError` with a short reason a summary can count.
"""

from __future__ import annotations

import hashlib
import io
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
MAX_PIXELS = 50_000_000  # larger than any real photo; above this we assume a decompression bomb
MIN_SIDE = 8


class ImageError(Exception):
    """An input that is not a usable image. `reason` is a short key for summaries."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def _to_rgb(img: Image.Image, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(img, dtype=np.float64)
        hi = a.max() if a.max() > 0 else 1.0
        img = Image.fromarray((a * (255.0 / hi)).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return img.convert("RGB")


def decode(data: bytes | Path | str, expected_format: str | None = None) -> np.ndarray:
    """Bytes or a path -> uint8 RGB array (H, W, 3). Raises ImageError with a reason."""
    if not isinstance(data, (bytes, bytearray)):
        _check_regular_file(Path(data))
    source = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                if expected_format and img.format != expected_format.upper():
                    raise ImageError("wrong format", f"{img.format}, expected {expected_format.upper()}")
                if img.width * img.height > MAX_PIXELS:
                    raise ImageError("too large", f"{img.width}x{img.height}")
                img.load()  # decodes fully: truncated files fail here
                return from_pil(img)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError("missing", str(data)) from None
    except IsADirectoryError:
        raise ImageError("not an image", "a directory") from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ImageError("too large", "decompression bomb") from None
    except Image.UnidentifiedImageError:
        raise ImageError("not an image") from None
    except Exception as err:  # truncated or corrupt data (PIL's plugins raise many kinds)
        raise ImageError("corrupt", str(err)[:80]) from None


def from_pil(img: Image.Image) -> np.ndarray:
    """An opened PIL image -> uint8 RGB array, upright by its EXIF tag, as `decode` reads files."""
    rgb = _to_rgb(ImageOps.exif_transpose(img))
    if min(rgb.size) < MIN_SIDE:
        raise ImageError("too small", f"{rgb.width}x{rgb.height}")
    return np.asarray(rgb)


def _check_regular_file(path: Path) -> None:
    """Only regular files are read: opening a FIFO named f.jpg would wait for a writer forever."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ImageError("missing", str(path)) from None
    except OSError as err:
        raise ImageError("unreadable", err.strerror or str(err)) from None
    if stat.S_ISDIR(mode):
        raise ImageError("not an image", "a directory")
    if not stat.S_ISREG(mode):
        raise ImageError("not a regular file", "a pipe, socket or device")


def read_image(path: str | Path) -> np.ndarray:
    return decode(Path(path))


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square, then resize to size x size (area filter when shrinking)."""
    h, w = image.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    square = image[top:top + side, left:left + side]
    if side == size:
        return np.ascontiguousarray(square)
    import cv2

    interp = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
    return cv2.resize(square, (size, size), interpolation=interp)


def sha256(image: np.ndarray) -> str:
    """Hash of the decoded pixels, so the same picture in two encodings is one image."""
    return hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest()


def list_images(folder: str | Path) -> list[Path]:
    """Image files under `folder`, sorted, so every run sees the same order."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
