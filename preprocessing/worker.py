"""The per-photo work, run in worker processes: read, detect, crop, never raise.

Kept free of torch and h5py imports so workers start fast (MTCNN imports torch itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from img2caricature.errors import short_reason
from img2caricature.images import ImageError, read_image
from preprocessing.detect import Box, FaceOptions, find_faces, warm_up
from preprocessing.layouts import Photo

STATUSES = ("ok", "no face", "several faces", "too small", "unreadable", "failed")


@dataclass
class Outcome:
    """What happened to one photo. `crop` is set only when status is "ok"."""

    photo: Photo
    status: str
    reason: str = ""                          # unreadable: the ImageError reason; failed: the error
    boxes: list[Box] = field(default_factory=list)
    chosen: Box | None = None
    crop: np.ndarray | None = None


_options: FaceOptions | None = None


def init_worker(options: FaceOptions, single_thread: bool) -> None:
    global _options
    _options = options
    if single_thread:  # one thread per process: N processes already fill N cores
        import cv2

        cv2.setNumThreads(1)
        if options.detect.detector == "mtcnn":
            import torch

            torch.set_num_threads(1)
    warm_up(options.detect)


def process_photo(photo: Photo, options: FaceOptions | None = None) -> Outcome:
    """Read one photo and crop its face. Never raises for a bad input: the outcome says why."""
    options = options or _options or FaceOptions()
    try:
        return _process(photo, options)
    except Exception as err:  # an odd photo (e.g. 20000x8) is that photo's failure, never the batch's
        return Outcome(photo, "failed", short_reason(err))


def _process(photo: Photo, options: FaceOptions) -> Outcome:
    try:
        rgb = read_image(photo.path)
    except ImageError as err:
        return Outcome(photo, "unreadable", err.reason)
    result = find_faces(rgb, options)
    if result.status != "ok":
        return Outcome(photo, result.status, boxes=result.boxes)
    return Outcome(photo, "ok", boxes=result.boxes, chosen=result.chosen[0], crop=result.crops[0])
