"""Which part of the project's 152x152 Haar crops should dlib's face ResNet see?

Grid-searches the sub-crop (side as a share of the crop, centre moved down by a share of
that side) for same-vs-different verification ROC AUC on *training* identities, then
reports the chosen framing's AUC on the held-out identities (the figure the issue asks
for), so the held-out people never pick the framing.

    python benchmarks/dlib_framing.py --faces data/faces.h5 --heldout-from img2caricature/models/default.pt
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
import torch

from img2caricature import checkpoint, dataset
from img2caricature.evaluate.heldout import heldout_identities
from img2caricature.metrics import cosine_similarity_matrix, roc_auc
from img2caricature.nets.encoder import encoder_from_snapshot, dlib_encoder_snapshot
from img2caricature.train.common import map_batches


def verification_auc(embeddings: np.ndarray, labels: np.ndarray) -> float:
    """Same-vs-different ROC AUC over every pair, scored by cosine similarity."""
    sim = cosine_similarity_matrix(torch.from_numpy(embeddings), torch.from_numpy(embeddings)).numpy()
    i, j = np.triu_indices(len(embeddings), 1)
    return roc_auc(sim[i, j], labels[i] == labels[j])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--faces", default="data/faces.h5")
    p.add_argument("--heldout-from", default="img2caricature/models/default.pt",
                   help="a snapshot whose held-out identities are kept out of the search")
    p.add_argument("--train-identities", type=int, default=40)
    p.add_argument("--per-identity", type=int, default=10)
    p.add_argument("--sides", type=float, nargs="+", default=[0.55, 0.6, 0.65, 0.7, 0.8, 1.0])
    p.add_argument("--shifts", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.15, 0.2, 0.25])
    args = p.parse_args()
    torch.manual_seed(0)
    labels = dataset.read_column(args.faces, "labels", "faces")
    names = [str(n) for n in dataset.read_column(args.faces, "names", "faces")]
    held_names = set(heldout_identities(checkpoint.load(args.heldout_from)) or [])
    held = np.array([i for i, n in enumerate(names) if n in held_names])
    train_ids = np.random.default_rng(0).permutation(np.setdiff1d(np.unique(labels), held))[:args.train_identities]
    pick = np.concatenate([np.flatnonzero(labels == i)[:args.per_identity] for i in train_ids])
    held_pick = np.flatnonzero(np.isin(labels, held))
    snapshot = dlib_encoder_snapshot()
    f = encoder_from_snapshot(snapshot)

    def embed(idx: np.ndarray, fraction: float, shift: float) -> np.ndarray:
        f.cfg.crop_fraction, f.cfg.crop_shift = fraction, shift
        images = dataset.load_images(args.faces, "faces", idx)
        return map_batches(lambda x: f.encode(dataset.to_float(x)), images).numpy()

    print(f"search on {len(pick)} crops of {len(train_ids)} training identities; "
          f"report on {len(held_pick)} crops of {len(held)} held-out identities")
    results = {}
    for fraction, shift in itertools.product(args.sides, args.shifts):
        results[(fraction, shift)] = verification_auc(embed(pick, fraction, shift), labels[pick])
        print(f"side {fraction:.2f} shift {shift:.2f}: training-identity AUC {results[(fraction, shift)]:.4f}")
    best = max(results, key=results.get)
    print(f"best framing: side {best[0]}, shift {best[1]}")
    for framing in (best, (1.0, 0.0)):
        auc = verification_auc(embed(held_pick, *framing), labels[held_pick])
        print(f"held-out identities, side {framing[0]} shift {framing[1]}: ROC AUC {auc:.4f}")


if __name__ == "__main__":
    main()
