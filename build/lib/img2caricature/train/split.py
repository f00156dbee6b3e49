"""Deterministic splits of a faces dataset: identities held out whole (for verification and
for judging emoji of people no model saw), and a few images of every training identity
for validation accuracy; and the people the translators keep out of training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from img2caricature import dataset


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


def split_faces_by_heldout(faces: Path, heldout_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Training faces exclude the identities the encoder held out: those stay unseen by every model."""
    labels = dataset.read_column(faces, "labels", "faces")
    names = dataset.info(faces).names
    held = {i for i, n in enumerate(names) if n in set(heldout_names)}
    is_held = np.isin(labels, list(held))
    return np.flatnonzero(~is_held), np.flatnonzero(is_held)


def first_per_identity(indices: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """Up to n records of different people, for sample grids."""
    seen, chosen = set(), []
    for i in indices:
        if labels[i] not in seen:
            seen.add(labels[i])
            chosen.append(i)
    return np.array(chosen[:n] if len(chosen) >= n else list(chosen) + list(indices[:n - len(chosen)]), dtype=np.int64)
