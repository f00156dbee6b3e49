"""The project's dataset format: one HDF5 file per dataset (see DESIGN.md).

- `images`: uint8 (N, 152, 152, 3) RGB, one image per chunk so any image reads alone.
- faces: `labels` int32 (N,), `sources` (original path) and a `names` table.
- emoji: `params` int32 (N, K) with the names in `attrs["param_names"]`, `urls`, `sha256`.
- file attributes: `format_version`, `kind`, `producer`, `image_size`, `count`.

Appends are crash-safe: data is written and flushed first, and only then is
`attrs["count"]` bumped and flushed. Readers trust `count`, and a writer reopening
the file trims anything past it, so a killed writer leaves only whole records.
Writers go through an `UndoFile`: a write the disk refuses (full, quota, I/O error) puts
the file back as it was at the last flush, so earlier records survive a full disk too.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from img2caricature.errors import DiskError, UserError, short_reason
from img2caricature import undo_file
from img2caricature.undo_file import UndoFile

FORMAT_VERSION = 1
IMAGE_SIZE = 152
Kind = Literal["faces", "emoji"]

_STR = h5py.string_dtype()


def _columns(kind: Kind, n_params: int) -> dict[str, tuple[tuple[int, ...], object]]:
    """Per-record columns: name -> (shape of one record, dtype)."""
    image = ((IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    if kind == "faces":
        return {"images": image, "labels": ((), np.int32), "sources": ((), _STR)}
    return {
        "images": image,
        "params": ((n_params,), np.int32),
        "urls": ((), _STR),
        "sha256": ((), _STR),
    }


def create(
    path: str | Path,
    kind: Kind,
    producer: str,
    param_names: list[str] | None = None,
) -> None:
    """Create an empty dataset file (replaces `path`). Emoji datasets name their parameters.

    Written beside `path` and renamed into place, so a failure leaves no half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".creating")
    param_names = list(param_names or [])
    tmp.write_bytes(b"")
    undo_file.journal_path(tmp).unlink(missing_ok=True)   # a killed create's: not this file's
    try:
        with _Transactional(tmp, "w") as t:
            f = t.file
            f.attrs.update(
                format_version=FORMAT_VERSION, kind=kind, producer=producer,
                image_size=IMAGE_SIZE, count=0,
            )
            for name, (shape, dtype) in _columns(kind, len(param_names)).items():
                chunks = (1, *shape) if name == "images" else (1024, *(max(1, s) for s in shape))
                # HDF5 has no zero-width chunks: an emoji set without parameters gets an open width
                maxshape = (None, *(s if s else None for s in shape))
                f.create_dataset(name, shape=(0, *shape), maxshape=maxshape, dtype=dtype, chunks=chunks)
            if kind == "faces":
                f.create_dataset("names", shape=(0,), maxshape=(None,), dtype=_STR, chunks=(256,))
            else:
                f.attrs["param_names"] = param_names
        undo_file.journal_path(path).unlink(missing_ok=True)   # the replaced file's, if it was killed
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_replaceable(path: str | Path, kind: Kind, flag: str = "--out") -> None:
    """`path` may be replaced by a new dataset of `kind`: it is absent, or a dataset of that kind
    (rebuilding one is the point). Anything else (emoji, a photo, a model) is refused."""
    path = Path(path)
    if not path.exists():
        return
    if path.is_dir():
        raise UserError(f"{flag} {path} is a folder: give the dataset's file name, e.g. {path / f'{kind}.h5'}")
    try:
        undo_file.recover(path)
        with h5py.File(path, "r") as f:
            held = str(f.attrs["kind"]) if "kind" in f.attrs else "an HDF5 file that is not an img2caricature dataset"
    except OSError:
        held = "a file that is not a dataset"
    if held != kind:
        raise UserError(f"{flag} {path} already holds {held}: it would be replaced by {kind}; "
                        "choose another name (or delete it first)")


class _Transactional:
    """An HDF5 file open for writing through an `UndoFile`. `commit()` flushes; if the disk
    refused any write since the last commit, the file goes back to that commit, is closed,
    and DiskError says so (HDF5 itself never sees the error, so it never half-writes its index)."""

    def __init__(self, path: Path, mode: str = "r+"):
        self.path = path
        try:
            self.raw = UndoFile(path)
        except BlockingIOError:
            raise UserError(f"{path} is being written by another process: wait for it to finish, "
                            "or use another file") from None
        except OSError as err:
            raise UserError(f"cannot open {path} for writing ({err.strerror})") from None
        try:
            self.file = h5py.File(self.raw, mode)
        except OSError as err:
            self.raw.close()
            raise UserError(f"{path} is not a readable HDF5 dataset ({err})") from None
        self.on_rollback = "nothing was written"

    @property
    def closed(self) -> bool:
        return self.raw.closed

    def flush(self) -> None:
        """Flush; if the disk refused a write since the last commit, go back to that commit."""
        self.file.flush()
        failure = self.raw.failure
        if failure is None:
            return
        self.file.close()  # HDF5 finishes into the undo file's overlay, never onto the disk
        self.raw.rollback()
        self.raw.close()
        raise DiskError(f"{self.path}: {failure.strerror or failure} while writing; "
                        f"the file is as it was before, {self.on_rollback}")

    def commit(self) -> None:
        """Flush, and make what is on disk the state a later failure goes back to."""
        self.flush()
        self.raw.commit()

    def close(self) -> None:
        if self.closed:
            return
        try:
            self.commit()
        finally:
            if not self.closed:
                self.file.close()
                if self.raw.failure is not None:  # a write HDF5 makes on closing: the flushed file stands
                    self.raw.rollback()
                else:
                    self.raw.commit()   # HDF5's closing writes are the file now: their journal goes
                self.raw.close()

    def __enter__(self) -> "_Transactional":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open(path: str | Path, mode: str) -> h5py.File:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"dataset not found: {path}")
    undo_file.recover(path)   # a writer killed mid-append: back to its last whole record
    try:
        f = h5py.File(path, mode)
    except OSError as err:
        raise UserError(f"{path} is not a readable HDF5 dataset ({err})") from None
    try:
        check_header(f, path)
    except BaseException:
        f.close()
        raise
    return f


@contextmanager
def _reading(path: str | Path) -> Iterator[h5py.File]:
    """A dataset open for reading; damage found while reading it is one line, not a traceback."""
    with _open(path, "r") as f:
        try:
            yield f
        except (OSError, RuntimeError, KeyError) as err:  # h5py on a damaged index, chunk or heap
            raise UserError(f"{path} is damaged ({short_reason(err)})") from None


def _plain(value: object) -> object:
    return np.asarray(value).tolist()  # np.int64(3) -> 3, for messages


def check_header(f: h5py.File, path: str | Path) -> None:
    """The file attributes make sense and agree with the columns, or a one-line UserError.
    (A bad `count` would otherwise read past the data, or make a writer grow the file.)"""
    try:
        if "kind" not in f.attrs or "count" not in f.attrs:
            raise UserError(f"{path} is an HDF5 file but not an img2caricature dataset")
        kind, count = f.attrs["kind"], f.attrs["count"]
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if not isinstance(kind, str) or kind not in ("faces", "emoji"):
            raise UserError(f"{path} is damaged: its kind is {_plain(kind)!r}, neither faces nor emoji")
        if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or count < 0:
            raise UserError(f"{path} is damaged: its record count is {_plain(count)!r}")
        names = np.asarray(f.attrs.get("param_names", []))
        if kind == "emoji" and (names.ndim != 1 or (names.size and names.dtype.kind not in "OUS")):
            raise UserError(f"{path} is damaged: its parameter names are {_plain(names)!r:.60}")
        for name in [*_columns(kind, 0), *(["names"] if kind == "faces" else [])]:
            if name not in f or not isinstance(f[name], h5py.Dataset):
                raise UserError(f"{path} is damaged: it has no {name!r} column")
            if name != "names" and f[name].shape[0] < count:
                raise UserError(f"{path} is damaged: it counts {int(count)} records but holds {f[name].shape[0]} {name}")
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as err:  # h5py on damaged metadata
        raise UserError(f"{path} is damaged ({short_reason(err)})") from None


def check_kind(f: h5py.File, expected: Kind | None, path: str | Path) -> Kind:
    kind = str(f.attrs["kind"])
    if expected is not None and kind != expected:
        hint = "faces (from `img2car preprocess`)" if expected == "faces" else "emoji (from `img2car crawl` or `img2car import-emoji`)"
        raise UserError(f"{path} holds {kind}, but {expected} were expected: pass a dataset of {hint}")
    return kind  # type: ignore[return-value]


class Writer:
    """Appends whole records to an existing dataset; use as a context manager.

    Each append is written, flushed, and only then counted. A disk that refuses a write
    (full, quota, I/O error) makes the append raise DiskError with the file put back as it
    was before that append, and the writer closed."""

    def __init__(self, path: str | Path, kind: Kind | None = None):
        self.path = Path(path)
        if not self.path.is_file():
            raise UserError(f"dataset not found: {self.path}")
        self._t = _Transactional(self.path)
        self.file = self._t.file
        try:
            check_header(self.file, self.path)
            self.kind = check_kind(self.file, kind, self.path)
        except BaseException:
            self.file.close()
            self._t.raw.close()
            raise
        self._note_committed()
        self._trim_to_count()

    def _note_committed(self) -> None:
        n = self.count
        self._t.on_rollback = f"with its {n} complete records: free some space and run the command again to continue"

    def _trim_to_count(self) -> None:
        """Drop a partial append left by a writer that was killed before bumping `count`."""
        n = self.count
        for name in _columns(self.kind, 0):
            if self.file[name].shape[0] != n:
                self.file[name].resize(n, axis=0)
        self._t.commit()

    @property
    def count(self) -> int:
        return int(self.file.attrs["count"])

    @property
    def closed(self) -> bool:
        return self._t.closed

    def append(self, **columns: np.ndarray | list) -> int:
        """Append records: every column of this kind, all the same length. Returns the new count."""
        expected = set(_columns(self.kind, 0))
        if set(columns) != expected:
            raise ValueError(f"append to a {self.kind} dataset needs columns {sorted(expected)}, got {sorted(columns)}")
        lengths = {len(v) for v in columns.values()}
        if len(lengths) != 1:
            raise ValueError(f"columns have different lengths: { {k: len(v) for k, v in columns.items()} }")
        (n_new,) = lengths
        if n_new == 0:
            return self.count
        start = self.count
        for name, values in columns.items():
            ds = self.file[name]
            ds.resize(start + n_new, axis=0)
            ds[start:] = values
        self._t.flush()  # the records are on disk ...
        self.file.attrs["count"] = start + n_new
        self._t.commit()  # ... before the count that makes them visible (a refused write undoes both)
        self._note_committed()
        return start + n_new

    def set_names(self, names: list[str]) -> None:
        """Write the identity table of a faces dataset (label i -> names[i])."""
        ds = self.file["names"]
        ds.resize(len(names), axis=0)
        ds[:] = names
        self._t.commit()

    def close(self) -> None:
        self._t.close()

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Info:
    path: Path
    kind: Kind
    count: int
    producer: str
    names: list[str]          # faces: identity names; emoji: parameter names
    n_identities: int
    size_bytes: int


def info(path: str | Path, kind: Kind | None = None) -> Info:
    with _reading(path) as f:
        k = check_kind(f, kind, path)
        count = int(f.attrs["count"])
        if k == "faces":
            names = [n.decode() if isinstance(n, bytes) else n for n in f["names"][:]]
            n_ids = len(np.unique(f["labels"][:count]))
        else:
            names = [str(n) for n in f.attrs.get("param_names", [])]
            n_ids = 0
        return Info(Path(path), k, count, str(f.attrs["producer"]), names, n_ids, os.path.getsize(path))


def read_column(path: str | Path, name: str, kind: Kind | None = None) -> np.ndarray:
    """One whole column (up to `count`), e.g. labels, params or sha256."""
    with _reading(path) as f:
        check_kind(f, kind, path)
        values = f[name][: int(f.attrs["count"])]
    if values.dtype == object:
        values = np.array([v.decode() if isinstance(v, bytes) else v for v in values], dtype=object)
    return values


def load_images(path: str | Path, kind: Kind | None = None, indices: np.ndarray | None = None) -> torch.Tensor:
    """Images into RAM as a uint8 tensor (N, 3, 152, 152)."""
    with _reading(path) as f:
        check_kind(f, kind, path)
        count = int(f.attrs["count"])
        if indices is None:
            images = f["images"][:count]
        else:
            unique, inverse = np.unique(np.asarray(indices), return_inverse=True)  # h5py wants increasing
            images = f["images"][unique][inverse] if len(unique) else np.empty((0, IMAGE_SIZE, IMAGE_SIZE, 3), np.uint8)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float in [-1, 1], the range every network here works in."""
    return images.float().div_(127.5).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    return images.detach().clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)


class ImageDataset(Dataset):
    """A dataset as a torch Dataset of (uint8 image (3, H, W), label).

    From disk, each DataLoader worker opens its own handle (h5py handles don't survive
    fork); with `in_memory=True` everything is read once. Emoji have label -1.
    """

    def __init__(self, path: str | Path, kind: Kind | None = None, in_memory: bool = False,
                 indices: np.ndarray | None = None):
        self.path = Path(path)
        with _reading(self.path) as f:
            self.kind = check_kind(f, kind, self.path)
            count = int(f.attrs["count"])
            labels = f["labels"][:count] if self.kind == "faces" else np.full(count, -1, np.int32)
        self.indices = np.arange(count) if indices is None else np.asarray(indices)
        self.labels = torch.from_numpy(labels[self.indices].astype(np.int64))
        self.images = load_images(self.path, self.kind, self.indices) if in_memory else None
        self._file: h5py.File | None = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.indices)

    def _handle(self) -> h5py.File:
        if self._file is None or self._pid != os.getpid():
            undo_file.recover(self.path)
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        if self.images is not None:
            return self.images[i], int(self.labels[i])
        image = self._handle()["images"][int(self.indices[i])]
        return torch.from_numpy(image).permute(2, 0, 1), int(self.labels[i])

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_file"] = None
        return state
