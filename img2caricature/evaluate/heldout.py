"""Which faces and emoji none of the evaluated models trained on: the split file's held-out
part (--split), else what the models' snapshots record. Models whose snapshots record
different splits are refused: their held-out people would only partly overlap."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from img2caricature import dataset
from img2caricature.errors import UserError
from img2caricature.split import Split, section_hash


def heldout_identities(snapshot: dict) -> list[str] | None:
    """Identity names the model never trained on; None when the snapshot does not say."""
    if "heldout_identities" in snapshot:  # CycleGAN trained with --encoder
        return list(snapshot["heldout_identities"])
    encoder = snapshot.get("encoder")
    if isinstance(encoder, dict) and "heldout_identities" in encoder:  # DTN: its f's held-out people
        return list(encoder["heldout_identities"])
    return None


def split_record(snapshot: dict) -> dict | None:
    """The split a model trained on: its own record, else (a DTN) its f's."""
    if snapshot.get("split"):
        return snapshot["split"]
    encoder = snapshot.get("encoder")
    return encoder.get("split") if isinstance(encoder, dict) else None


def check_same_split(snapshots: dict[str, dict], split: Split | None = None) -> None:
    """One line, and no evaluation, when two models (or a model and --split) held out different
    people or different emoji of the same file."""
    seen: dict[tuple[str, str], tuple[str, str]] = {}   # (part, emoji file) -> (hash, who)
    if split is not None:
        seen[("faces", "")] = (section_hash(split.faces), f"--split {split.path}")
        for name, part in split.emoji.items():
            seen[("emoji", name)] = (section_hash(part), f"--split {split.path}")
    for model, snap in snapshots.items():
        record = split_record(snap) or {}
        parts = [(("faces", ""), record.get("faces"))]
        if record.get("emoji_file"):
            parts.append((("emoji", record["emoji_file"]), record.get("emoji")))
        for key, value in parts:
            if value is None:
                continue
            if key in seen and seen[key][0] != value:
                what = "people" if key[0] == "faces" else f"emoji of {key[1]}"
                raise UserError(f"{seen[key][1]} and {model} hold out different {what} (split {seen[key][0]} vs "
                                f"{value}): evaluate them separately, or train them on one split file")
            seen.setdefault(key, (value, model))


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


def select_heldout(snapshots: dict[str, dict], faces: Path, emoji: Path, split: Split | None = None) -> Selection:
    check_same_split(snapshots, split)
    if split is not None:
        return _from_split(split, faces, emoji)
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


def _from_split(split: Split, faces: Path, emoji: Path) -> Selection:
    """The split file's held-out records; an emoji file it has no part for counts as held out."""
    face_idx = split.face_records(faces)[1]
    notes = [f"faces: {len(face_idx)} photos of the {len(split.heldout_identities)} people {split.path} holds out"]
    if Path(emoji).name in split.emoji:
        emoji_idx = split.emoji_records(emoji)[1]
        notes.append(f"emoji: the {len(emoji_idx)} records {split.path} holds out")
    else:
        emoji_idx = np.arange(dataset.info(emoji, "emoji").count)
        notes.append(f"emoji: {split.path} has no part for {Path(emoji).name}: all of it is taken as held out")
    return Selection(face_idx, emoji_idx, notes)
