"""Deterministic splits of a faces dataset: identities held out whole (for verification and
for judging emoji of people no model saw), and a few images of every training identity
for validation accuracy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class FaceSplit:
    train: np.ndarray           # record indices
    val: np.ndarray             # record indices, identities also in train
    heldout: np.ndarray         # record indices, identities never trained on
    train_identities: np.ndarray  # original labels in training order (dense new label = position)
    heldout_identities: np.ndarray

    def train_labels(self, labels: np.ndarray, which: np.ndarray) -> np.ndarray:
        """Original labels of records `which` -> dense labels 0..K-1 of the classifier."""
        lookup = {int(l): i for i, l in enumerate(self.train_identities)}
        return np.array([lookup[int(l)] for l in labels[which]], dtype=np.int64)


def split_faces(labels: np.ndarray, heldout_identities: int, val_per_identity: int, seed: int) -> FaceSplit:
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    identities = np.unique(labels)
    if heldout_identities >= len(identities):
        heldout_identities = max(0, len(identities) // 5)
    shuffled = rng.permutation(identities)
    held = np.sort(shuffled[:heldout_identities])
    kept = np.sort(shuffled[heldout_identities:])
    train, val = [], []
    for identity in kept:
        records = rng.permutation(np.flatnonzero(labels == identity))
        n_val = min(val_per_identity, len(records) - 1)  # always leave one to train on
        val.extend(records[:n_val])
        train.extend(records[n_val:])
    heldout = np.flatnonzero(np.isin(labels, held))
    return FaceSplit(np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(val, dtype=np.int64)),
                     heldout, kept, held)
