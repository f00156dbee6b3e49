"""What a retrieval ruler can read from a photo once the background is gone: each held-out
photo, with everything outside an ellipse around the face (and hair) replaced by the near-white
of Bitmoji backgrounds, is the query; the gallery is the untouched photos of the 30 held-out
people, as in `img2car evaluate`'s retrieval. No emoji keeps a photo's background, lighting
or clothes, so a ruler's figure here bounds from above what it can give any emoji, however
like the person.

    python benchmarks/judge_ceiling.py --judge runs/judge/encoder.pt --split runs/split.json \\
        [--faces data/faces.h5] [--scales 1.0 1.25 1.5] [--also dlib-resnet-v1]

Prints top-1 with its 95% interval (people resampled) per ruler and ellipse size, and writes
the masked queries of the first people to judge_ceiling.png (--picture) to look at."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torchvision.utils import save_image

from img2caricature import dataset, registry
from img2caricature.batches import map_batches
from img2caricature.evaluate import intervals
from img2caricature.evaluate.retrieval import identity_retrieval
from img2caricature.split import read_split

BACKGROUND = 0.9   # [-1, 1]: the near-white behind Bitmoji heads


def without_background(photos: torch.Tensor, scale: float) -> torch.Tensor:
    """Everything outside an ellipse centred a little below the crop's middle (where the Haar
    crop puts the face), with half-axes 0.36 x 0.47 of the side times `scale`, set to BACKGROUND."""
    side = photos.shape[-1]
    y, x = torch.meshgrid(torch.linspace(0, 1, side), torch.linspace(0, 1, side), indexing="ij")
    inside = ((x - 0.5) / (0.36 * scale)) ** 2 + ((y - 0.52) / (0.47 * scale)) ** 2 <= 1
    return torch.where(inside, photos, torch.full_like(photos, BACKGROUND))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--judge", required=True, help="the judge's encoder.pt")
    p.add_argument("--split", default="runs/split.json")
    p.add_argument("--faces", default="data/faces.h5")
    p.add_argument("--scales", type=float, nargs="*", default=[1.0, 1.25, 1.5])
    p.add_argument("--also", nargs="*", default=["dlib-resnet-v1"], help="more rulers: published f names")
    p.add_argument("--picture", default="judge_ceiling.png")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    records = read_split(Path(args.split)).face_records(Path(args.faces))[1]
    labels = dataset.read_column(Path(args.faces), "labels", "faces")[records]
    photos = dataset.to_float(dataset.load_images(Path(args.faces), "faces", records))
    rulers = {"judge": registry.encoder_from_snapshot(registry.load_snapshot(args.judge, "cpu"))}
    rulers |= {name: registry.encoder_from_snapshot(registry.load_encoder_snapshot(name)) for name in args.also}
    queries = {"photo itself": photos} | {f"background gone, ellipse x{s}": without_background(photos, s)
                                           for s in args.scales}
    print(f"{len(photos)} photos of {len(np.unique(labels))} held-out people")
    for name, ruler in rulers.items():
        encode = lambda x, r=ruler.eval(): r.encode(x)  # noqa: E731
        gallery = map_batches(encode, photos, 64)
        for query_name, query in queries.items():
            r = identity_retrieval(map_batches(encode, query, 64), gallery, labels)
            lo, hi = intervals.top1_interval(np.array(r["ranks"]), np.array(r["query_people"]))
            print(f"{name:16s} {query_name:32s} top-1 {100 * r['top1']:5.1f}% ({100 * lo:.1f} to {100 * hi:.1f}), "
                  f"top-5 {100 * r['top5']:5.1f}%", flush=True)
    first = np.unique(labels, return_index=True)[1][:8]
    save_image(torch.cat([q[first] for q in queries.values()]) * 0.5 + 0.5, args.picture, nrow=len(first))
    print(f"masked queries: {args.picture}")


if __name__ == "__main__":
    main()
