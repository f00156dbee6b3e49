"""Which faces and emoji none of the evaluated models trained on, read from their snapshots."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from img2caricature import dataset
from img2caricature.errors import UserError


def heldout_identities(snapshot: dict) -> list[str] | None:
    """Identity names the model never trained on; None when the snapshot does not say."""
    if "heldout_identities" in snapshot:  # CycleGAN trained with --encoder
        return list(snapshot["heldout_identities"])
    encoder = snapshot.get("encoder")
    if isinstance(encoder, dict) and "heldout_identities" in encoder:  # DTN: its f's held-out people
        return list(encoder["heldout_identities"])
    return None


def _trained_on(snapshot: dict, key: str, path: Path) -> bool:
    """Whether the file `path` is the one the model trained on (by file name; an old
    snapshot without a record is assumed to be)."""
    recorded = snapshot.get(key)
    return recorded is None or Path(str(recorded)).name == Path(path).name


@dataclass
class Selection:
    faces: np.ndarray                 # record indices into --faces
    emoji: np.ndarray                 # record indices into --emoji
    notes: list[str] = field(default_factory=list)


def select_heldout(snapshots: dict[str, dict], faces: Path, emoji: Path) -> Selection:
    notes: list[str] = []
    labels = dataset.read_column(faces, "labels", "faces")
    names = dataset.info(faces, "faces").names
    keep_names: set[str] | None = None
    for model, snap in snapshots.items():
        held = heldout_identities(snap)
        if not _trained_on(snap, "faces", faces):
            continue
        if held is None:
            notes.append(f"{model} records no held-out identities: the faces are assumed unseen by it")
            continue
        keep_names = set(held) if keep_names is None else keep_names & set(held)
    face_idx = np.arange(len(labels))
    if keep_names is not None:
        keep = [i for i, n in enumerate(names) if n in keep_names]
        face_idx = np.flatnonzero(np.isin(labels, keep))
        notes.append(f"faces: {len(face_idx)} photos of {len(keep)} identities held out by every model")
        if len(face_idx) == 0:
            raise UserError(f"{faces}: no identity is held out by every model (train them with the same "
                            "encoder, or pass a faces file of other people)")

    n_emoji = dataset.info(emoji, "emoji").count
    keep_emoji: set[int] | None = None
    for model, snap in snapshots.items():
        if "heldout_emoji" in snap and _trained_on(snap, "emoji", emoji):
            held_e = {int(i) for i in snap["heldout_emoji"] if int(i) < n_emoji}
            keep_emoji = held_e if keep_emoji is None else keep_emoji & held_e
    emoji_idx = np.arange(n_emoji) if keep_emoji is None else np.array(sorted(keep_emoji), dtype=np.int64)
    if keep_emoji is not None:
        notes.append(f"emoji: {len(emoji_idx)} records held out by every model")
        if len(emoji_idx) == 0:
            raise UserError(f"{emoji}: no emoji is held out by every model (train them with the same "
                            "seed and heldout_emoji, or pass an emoji file none trained on)")
    return Selection(face_idx, emoji_idx, notes)
