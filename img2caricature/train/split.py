"""The split as the trainers use it: the split file's held-out people and emoji (read, or
made now: img2caricature/split.py), counted in the log, and a few images of every training
identity kept back for the encoder's validation accuracy; sample sets for the translators."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from img2caricature.errors import UserError
from img2caricature.grids import first_per_identity
from img2caricature.runtime import log
from img2caricature.split import Split, describe_emoji, describe_faces, load_or_create, section_hash


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


def split_faces(labels: np.ndarray, heldout_labels: np.ndarray, val_per_identity: int, seed: int) -> FaceSplit:
    """Identities in `heldout_labels` held out whole; `val_per_identity` images of each other one
    kept back for validation (a seeded draw)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    identities = np.unique(labels)
    held = np.intersect1d(identities, heldout_labels)
    kept = np.setdiff1d(identities, held)
    train, val = [], []
    for identity in kept:
        records = rng.permutation(np.flatnonzero(labels == identity))
        n_val = min(val_per_identity, len(records) - 1)  # always leave one to train on
        val.extend(records[:n_val])
        train.extend(records[n_val:])
    heldout = np.flatnonzero(np.isin(labels, held))
    return FaceSplit(np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(val, dtype=np.int64)),
                     heldout, kept, held)


def training_split(path: Path | None, faces: Path, emoji: Path | None = None,
                   adopt: list[str] | None = None) -> Split:
    """The split file (made now if missing; `adopt`: held-out people an older encoder recorded),
    with how many people and emoji the run trains on and holds out, in the log."""
    split = load_or_create(path, faces=faces, emoji=emoji, adopt=adopt)
    train, held = split.face_records(faces)
    log.info(describe_faces(split, faces, train, held))
    if emoji is not None:
        log.info(describe_emoji(split, emoji, *split.emoji_records(emoji)))
    if len(train) == 0:
        raise UserError(f"{faces}: every person is held out by {split.path}: nothing to train on")
    return split


def encoder_split(path: Path | None, faces: Path, emoji: Path | None, enc_snapshot: dict | None) -> Split:
    """The split of a run on a frozen f, checked against the people f trained on: f's own split
    (an encoder.pt records its hash), or, for an encoder from before split files, the people it
    recorded as held out (taken as the split's when the file is made now). A published f
    records neither: it trained on other data."""
    record = (enc_snapshot or {}).get("split")
    legacy = None if record else (enc_snapshot or {}).get("heldout_identities")
    split = training_split(path, faces, emoji, adopt=legacy)
    if record and record.get("faces") != section_hash(split.faces):
        raise UserError(f"f was trained with another split ({record.get('file')}, {record.get('faces')}) than "
                        f"{split.path} ({section_hash(split.faces)}): pass --split {record.get('file')}")
    if legacy is not None and not set(split.heldout_identities) <= set(legacy):
        seen = len(set(split.heldout_identities) - set(legacy))
        raise UserError(f"f trained on {seen} of the people {split.path} holds out: use that encoder's split "
                        f"(a new split file beside another faces path), or pretrain f on this split")
    return split


@dataclass
class TranslatorData:
    """What a photo->emoji trainer trains on and keeps out (record indices), and its sample sets."""
    split: Split
    faces: Path
    emoji: Path
    train_faces: np.ndarray
    held_faces: np.ndarray
    train_emoji: np.ndarray
    held_emoji: np.ndarray
    sample_faces: torch.Tensor     # photos of different held-out people, in [-1, 1]
    sample_emoji: torch.Tensor     # held-out emoji, in [-1, 1]

    def snapshot_extras(self) -> dict:
        """What a translator's snapshot records about its data: `evaluate` reads it."""
        return {"split": self.split.record(self.emoji), "faces": str(self.faces), "emoji": str(self.emoji),
                "heldout_identities": self.split.heldout_identities, "heldout_emoji": self.held_emoji.tolist()}


def translator_data(split_path: Path | None, faces: Path, emoji: Path, n_samples: int,
                    enc_snapshot: dict | None = None) -> TranslatorData:
    from img2caricature import dataset

    dataset.info(faces, "faces"), dataset.info(emoji, "emoji")  # kind checks before any heavy work
    split = encoder_split(split_path, faces, emoji, enc_snapshot)
    (train_faces, held_faces), (train_emoji, held_emoji) = split.face_records(faces), split.emoji_records(emoji)
    if len(train_faces) == 0 or len(train_emoji) == 0:
        raise UserError("no training faces or emoji left after holding some out")
    labels = dataset.read_column(faces, "labels", "faces")
    shown_faces = first_per_identity(held_faces if len(held_faces) else train_faces, labels, n_samples)
    shown_emoji = (held_emoji if len(held_emoji) else train_emoji)[:n_samples]
    load = lambda path, kind, idx: dataset.to_float(dataset.load_images(path, kind, idx))  # noqa: E731
    return TranslatorData(split, Path(faces), Path(emoji), train_faces, held_faces, train_emoji, held_emoji,
                          load(faces, "faces", shown_faces), load(emoji, "emoji", shown_emoji))
