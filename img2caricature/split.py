"""The held-out split: the people and the emoji no model trains on, in one small JSON file.

Made once, by the first stage that needs it (or by `img2car split`), and read by
`pretrain-encoder`, `train-dtn`, `train-cyclegan` and `evaluate`, so a frozen published f
needs no pretraining run and every model holds out the same people. Its two parts are
written once each and never changed: the faces part when a faces file first meets it,
the part for an emoji file (by file name) when that file first does. Snapshots record
each part's hash, so `evaluate` can refuse models trained on different splits.

    {"format": "img2caricature-split", "version": 1, "settings": {...},
     "faces": {"file": "faces.h5", "identities": 259, "heldout": ["id07202", ...]},
     "emoji": {"bitmoji.h5": {"count": 3573, "heldout": [21, 28, ...]}}}
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from img2caricature import dataset
from img2caricature.errors import UserError
from img2caricature.runtime import log

FORMAT = "img2caricature-split"
VERSION = 1
FILE_NAME = "split.json"


@dataclass
class SplitConfig:
    """How a new split is drawn (an existing file is never redrawn)."""
    heldout_fraction: float = 0.12   # share of people held out whole ...
    min_heldout: int = 2             # ... but at least this many (verification needs two people)
    min_train: int = 2               # ... and never so many that fewer than this are left to train on
    emoji_fraction: float = 0.02     # share of emoji held out ...
    min_heldout_emoji: int = 8       # ... but at least this many (never more than half of either)
    seed: int = 0


def heldout_count(n: int, fraction: float, floor: int, keep: int) -> int:
    """round(fraction * n), at least `floor`, but never more than half, and leaving `keep` to train on."""
    return max(0, min(max(floor, round(fraction * n)), n - keep, n // 2))


def identity_names(faces: Path) -> list[str]:
    """Names of the identities by label; a label without a name is called by its number."""
    names = dataset.info(faces, "faces").names
    labels = dataset.read_column(faces, "labels", "faces")
    n = int(labels.max()) + 1 if len(labels) else 0
    return [names[i] if i < len(names) else str(i) for i in range(max(n, len(names)))]


def section_hash(section: dict[str, Any] | None) -> str | None:
    """A short hash of one part's content (not of the file, which gains parts over time)."""
    if section is None:
        return None
    text = json.dumps(section, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class Split:
    path: Path
    settings: dict[str, Any]
    faces: dict[str, Any] | None = None
    emoji: dict[str, dict[str, Any]] = field(default_factory=dict)

    # -- what the trainers ask --------------------------------------------------------------
    def face_records(self, faces: Path) -> tuple[np.ndarray, np.ndarray]:
        """(training, held-out) record indices of `faces`."""
        labels = dataset.read_column(faces, "labels", "faces")
        held = self.heldout_labels(faces)
        is_held = np.isin(labels, held)
        return np.flatnonzero(~is_held), np.flatnonzero(is_held)

    def heldout_labels(self, faces: Path) -> np.ndarray:
        if self.faces is None:
            raise UserError(f"{self.path} holds no held-out people yet")
        names = identity_names(faces)
        held = set(self.faces["heldout"])
        missing = held - set(names)
        if missing:
            raise UserError(f"{self.path} holds out people {faces} does not have ({len(missing)} of {len(held)}, "
                            f"e.g. {sorted(missing)[0]}): it was made for another faces file; pass --split")
        return np.array([i for i, n in enumerate(names) if n in held], dtype=np.int64)

    def emoji_records(self, emoji: Path) -> tuple[np.ndarray, np.ndarray]:
        """(training, held-out) record indices of `emoji`."""
        part = self.emoji.get(Path(emoji).name)
        if part is None:
            raise UserError(f"{self.path} holds no held-out emoji for {Path(emoji).name}")
        count = dataset.info(emoji, "emoji").count
        if count < part["count"]:
            raise UserError(f"{self.path} was made for a {Path(emoji).name} of {part['count']} emoji; "
                            f"{emoji} has {count}: pass another --split")
        held = np.array(sorted(part["heldout"]), dtype=np.int64)
        return np.setdiff1d(np.arange(count), held), held

    def record(self, emoji: Path | None = None) -> dict[str, Any]:
        """What a snapshot keeps: the file and the hashes of the parts the model used."""
        out: dict[str, Any] = {"file": str(self.path), "faces": section_hash(self.faces)}
        if emoji is not None:
            out["emoji"] = section_hash(self.emoji.get(Path(emoji).name))
            out["emoji_file"] = Path(emoji).name
        return out

    @property
    def heldout_identities(self) -> list[str]:
        return list(self.faces["heldout"]) if self.faces else []

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "settings": self.settings,
                "faces": self.faces, "emoji": self.emoji}


def default_path(faces: Path) -> Path:
    """Where a split lives unless told: beside the faces file (data/faces.h5 -> data/split.json)."""
    return Path(faces).parent / FILE_NAME


def read_split(path: Path) -> Split:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"split file not found: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{path} is not a split file (not JSON)") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UserError(f"{path} is not a split file (no \"format\": \"{FORMAT}\")")
    if data.get("version", 0) > VERSION:
        raise UserError(f"{path} is a newer split file (version {data['version']}); update img2caricature")
    return Split(path, data.get("settings", {}), data.get("faces"), data.get("emoji") or {})


def _write(split: Split) -> None:
    split.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = split.path.with_name(split.path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(split.to_json(), indent=1) + "\n")
    tmp.replace(split.path)


def draw_faces(faces: Path, cfg: SplitConfig, adopt: list[str] | None = None) -> dict[str, Any]:
    """The faces part: `adopt` (an older encoder's held-out people) or a seeded draw."""
    names = identity_names(faces)
    present = sorted(set(names[int(l)] for l in np.unique(dataset.read_column(faces, "labels", "faces"))))
    if adopt is not None:
        held = sorted(set(adopt) & set(present))
    else:
        n = heldout_count(len(present), cfg.heldout_fraction, cfg.min_heldout, cfg.min_train)
        held = sorted(np.random.default_rng(cfg.seed).permutation(present)[:n].tolist())
    return {"file": Path(faces).name, "identities": len(present), "heldout": held}


def draw_emoji(emoji: Path, cfg: SplitConfig) -> dict[str, Any]:
    count = dataset.info(emoji, "emoji").count
    n = heldout_count(count, cfg.emoji_fraction, cfg.min_heldout_emoji, 1)
    # the first n of a seeded permutation: the rule the trainers used before the split file
    held = np.sort(np.random.default_rng(cfg.seed).permutation(count)[:n])
    return {"count": count, "heldout": held.tolist()}


def load_or_create(path: Path | None, faces: Path | None = None, emoji: Path | None = None,
                   cfg: SplitConfig | None = None, adopt: list[str] | None = None,
                   write: bool = True) -> Split:
    """The split at `path` (default: beside `faces`), with the parts for `faces` and `emoji`
    drawn and written now if they are missing. `adopt`: held-out people to take instead of
    drawing (an encoder trained before split files existed recorded its own)."""
    if path is None:
        if faces is None:
            raise UserError("no split file given and no faces file to put one beside")
        path = default_path(faces)
    path = Path(path)
    cfg = cfg or SplitConfig()
    split = read_split(path) if path.exists() else Split(path, dataclasses.asdict(cfg))
    changed = False
    if faces is not None and split.faces is None:
        split.faces = draw_faces(faces, cfg, adopt)
        changed = True
    if emoji is not None and Path(emoji).name not in split.emoji:
        split.emoji[Path(emoji).name] = draw_emoji(emoji, cfg)
        changed = True
    if changed and write:
        _write(split)
        log.info(f"split: wrote {path} (held-out people and emoji; every later run reads it)")
    return split


def split_like(path: Path, snapshot: dict[str, Any], name: str, faces: Path, emoji: list[Path]) -> Split:
    """The split a model trained on, rebuilt at `path` from what its snapshot records (its held-out
    people and emoji), each part checked against the snapshot's hash of it, so a fresh checkout can
    hold out exactly what the model did (`img2car split --like MODEL.pt`)."""
    record, held_people = snapshot.get("split") or {}, snapshot.get("heldout_identities")
    if not record.get("faces") or not held_people:
        raise UserError(f"{name} records no held-out people (a model from `img2car train-dtn` or "
                        "`train-cyclegan` does)")
    split = Split(Path(path), dataclasses.asdict(SplitConfig()), draw_faces(faces, SplitConfig(), held_people))
    if section_hash(split.faces) != record["faces"]:
        raise UserError(f"{faces} is not the faces file {name} trained on (its held-out part hashes "
                        f"{section_hash(split.faces)}, the model's {record['faces']})")
    for e in emoji:
        if Path(e).name != record.get("emoji_file") or snapshot.get("heldout_emoji") is None:
            raise UserError(f"{name} trained on emoji {record.get('emoji_file')!r}, not {Path(e).name}")
        split.emoji[Path(e).name] = {"count": dataset.info(e, "emoji").count, "heldout": list(snapshot["heldout_emoji"])}
        if section_hash(split.emoji[Path(e).name]) != record.get("emoji"):
            raise UserError(f"{e} is not the emoji file {name} trained on (its held-out part hashes "
                            f"{section_hash(split.emoji[Path(e).name])}, the model's {record.get('emoji')})")
    if split.path.exists():
        old = read_split(split.path)
        if old.faces != split.faces or any(old.emoji.get(k) not in (None, v) for k, v in split.emoji.items()):
            raise UserError(f"{split.path} already holds another split; pass --out")
        split.emoji = old.emoji | split.emoji
    _write(split)
    return split


def describe_faces(split: Split, faces: Path, train: np.ndarray, held: np.ndarray) -> str:
    labels = dataset.read_column(faces, "labels", "faces")
    return (f"faces: training on {len(np.unique(labels[train]))} people ({len(train)} photos), holding out "
            f"{len(np.unique(labels[held]))} people ({len(held)} photos) [split {split.path}, "
            f"{section_hash(split.faces)}]")


def describe_emoji(split: Split, emoji: Path, train: np.ndarray, held: np.ndarray) -> str:
    return (f"emoji: training on {len(train)}, holding out {len(held)} "
            f"[split {split.path}, {section_hash(split.emoji.get(Path(emoji).name))}]")


def split_faces_by_heldout(faces: Path, heldout_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Training faces exclude the identities the encoder held out: those stay unseen by every model."""
    labels = dataset.read_column(faces, "labels", "faces")
    names = dataset.info(faces).names
    held = {i for i, n in enumerate(names) if n in set(heldout_names)}
    is_held = np.isin(labels, list(held))
    return np.flatnonzero(~is_held), np.flatnonzero(is_held)
