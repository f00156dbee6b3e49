"""Images per second from an HDF5 faces dataset into normalised float tensors, from disk
(DataLoader, 0 and 2 workers) and from RAM. Targets on a 2-core CPU: >= 1,500/s from
disk and >= 5,000/s from RAM.

    python benchmarks/data_loading.py [--faces data/faces.h5] [--images 3000]

Without --faces it writes a synthetic dataset of --images random crops first."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from img2caricature import dataset


def synthetic(path: Path, n: int) -> Path:
    dataset.create(path, "faces", producer="benchmark")
    rng = np.random.default_rng(0)
    with dataset.Writer(path, "faces") as w:
        for start in range(0, n, 500):
            k = min(500, n - start)
            w.append(images=rng.integers(0, 256, (k, 152, 152, 3), dtype=np.uint8),
                     labels=np.zeros(k, np.int32), sources=["synthetic"] * k)
    return path


def rate(loader, n_images: int) -> float:
    start = time.perf_counter()
    seen = 0
    for images, _ in loader:
        x = dataset.to_float(images)
        seen += len(x)
    assert seen == n_images
    return seen / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--faces", type=Path, default=None)
    p.add_argument("--images", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=64)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.faces or synthetic(Path(tmp) / "faces.h5", args.images)
        n = dataset.info(path).count
        print(f"dataset: {path} ({n} images of 152x152)")
        for workers in (0, 2):
            ds = dataset.ImageDataset(path, "faces")
            loader = DataLoader(ds, batch_size=args.batch_size, num_workers=workers, shuffle=True)
            print(f"disk, {workers} workers: {rate(loader, n):8.0f} images/s")
        t0 = time.perf_counter()
        ds = dataset.ImageDataset(path, "faces", in_memory=True)
        print(f"(loading into RAM took {time.perf_counter() - t0:.1f}s)")
        loader = DataLoader(ds, batch_size=args.batch_size, shuffle=True)
        print(f"RAM, DataLoader:    {rate(loader, n):8.0f} images/s")
        # The trainers index the RAM tensor by batch directly, without per-item collation.
        images = ds.images
        start = time.perf_counter()
        for _ in range(0, n, args.batch_size):
            dataset.to_float(images[torch.randint(n, (args.batch_size,))])
        print(f"RAM, batch indexing: {n / (time.perf_counter() - start):8.0f} images/s")


if __name__ == "__main__":
    main()
