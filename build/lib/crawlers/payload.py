"""From a payload (bytes off the network, or a file) to the record we store.

One function, so the crawler and the folder importer validate and convert alike:
decode fully (HTML error pages and truncated files fail here), flatten alpha onto
white, centre-crop and resize to 152x152, hash the stored pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from img2caricature import images
from img2caricature.dataset import IMAGE_SIZE


def to_record(data: bytes | Path, expected_format: str | None = None) -> tuple[np.ndarray, str]:
    """-> (uint8 RGB (152, 152, 3), sha256 of those pixels). Raises images.ImageError."""
    rgb = images.decode(data, expected_format)
    square = images.resize_square(rgb, IMAGE_SIZE)
    return square, images.sha256(square)
