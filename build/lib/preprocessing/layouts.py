"""Input walkers: the ways a user's photos can be laid out, each -> a sorted list of `Photo`.

- a folder per identity (`INPUT/<name>/<image>`, the folder name is the label), as in
  MSRA-CFW and the shared CelebA set;
- a flat folder plus a CelebA-style identity list (`--identities FILE`, lines `image identity`).

Both return photos sorted by (identity, path), so a rerun sees the same order and the
pipeline can finish one identity before starting the next.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from img2caricature.errors import UserError
from img2caricature.images import list_images


@dataclass(frozen=True)
class Photo:
    path: Path          # where to read it
    source: str         # path relative to the input folder, stored in the dataset
    identity: str


def natural_key(text: str) -> list[object]:
    """'id2' < 'id10': numbers compare as numbers, so numeric identities sort as people expect."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def _sorted(photos: list[Photo]) -> list[Photo]:
    return sorted(photos, key=lambda p: (natural_key(p.identity), p.identity, p.source))


def identity_folders(root: str | Path) -> list[Photo]:
    """Photos under `root/<identity>/` (nested folders inside an identity are included)."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"input folder not found: {root}")
    photos = [
        Photo(path, path.relative_to(root).as_posix(), folder.name)
        for folder in root.iterdir() if folder.is_dir() and not folder.name.startswith(".")
        for path in list_images(folder)
    ]
    if not photos:
        loose = list_images(root)
        hint = " (they lie directly in it: pass --identities FILE to label a flat folder)" if loose else ""
        raise UserError(f"no images in identity folders under {root}{hint}")
    return _sorted(photos)


def identity_list(root: str | Path, identities: str | Path) -> list[Photo]:
    """Photos named in an identity list (`image identity` per line), relative to `root`.

    Listed files that are missing are kept, so the pipeline counts them as unreadable
    instead of silently shrinking the dataset.
    """
    root, identities = Path(root), Path(identities)
    if not root.is_dir():
        raise UserError(f"input folder not found: {root}")
    if not identities.is_file():
        raise UserError(f"identity list not found: {identities}")
    photos: dict[str, Photo] = {}
    with open(identities, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.split()
            if len(parts) != 2:
                raise UserError(f"{identities}:{number}: expected 'image identity', got {line.strip()!r}")
            name, identity = parts
            photos[name] = Photo(root / name, Path(name).as_posix(), identity)  # a repeated line: last wins
    if not photos:
        raise UserError(f"identity list {identities} names no images")
    return _sorted(list(photos.values()))


def walk(root: str | Path, identities: str | Path | None = None) -> list[Photo]:
    """The photos of either layout, sorted."""
    return identity_list(root, identities) if identities else identity_folders(root)
