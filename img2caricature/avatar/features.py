"""f of a dataset's images (and the images at the imitator's size), computed once and kept
on disk: f is frozen, and on a small CPU encoding a 20,000-avatar crawl costs more than
training e. Entries are keyed by f's fingerprint, the file, its record count and the
records asked for, so a changed f or a grown crawl never reads a stale entry.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from img2caricature import checkpoint, dataset
from img2caricature.batches import downscale, map_batches


def _key(f_key: str, path: Path, indices: np.ndarray, size: int) -> str:
    info = dataset.info(path)
    h = hashlib.sha256(np.ascontiguousarray(indices, dtype=np.int64).tobytes()).hexdigest()[:12]
    return f"{Path(path).stem}-{info.count}-{h}-{f_key}-{size}"


def encode_records(f: nn.Module, f_key: str, path: Path, kind: str, indices: np.ndarray, size: int,
                   cache_dir: Path | None, device: torch.device | str = "cpu",
                   desc: str = "f") -> tuple[torch.Tensor, torch.Tensor]:
    """(f of each record's image at full size, the images area-downscaled to `size`, uint8)."""
    indices = np.asarray(indices, dtype=np.int64)
    path_cache = Path(cache_dir) / f"{_key(f_key, path, indices, size)}.pt" if cache_dir else None
    if path_cache is not None and path_cache.is_file():
        cached = checkpoint.load(path_cache)
        return cached["features"], cached["small"]
    feats, small = [], []
    for start in tqdm(range(0, len(indices), 256), desc=desc, unit="chunk", leave=False):
        images = dataset.load_images(path, kind, indices[start:start + 256])
        feats.append(map_batches(lambda x: f.encode(dataset.to_float(x)), images, 64, device))
        small.append(downscale(images, size))
    features = torch.cat(feats) if feats else torch.empty(0)
    thumbs = torch.cat(small) if small else torch.empty(0, 3, size, size, dtype=torch.uint8)
    if path_cache is not None:
        checkpoint.save_atomic({"features": features, "small": thumbs}, path_cache)
    return features, thumbs
