"""Whole files or none: write to a temporary file beside the target, rename it into place."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yields `path.tmp` to write; it becomes `path` when the block ends, and is removed if the
    block fails (a full disk leaves no half file behind, and gets its space back)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        tmp.replace(path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError) and err.filename is None:
            err.filename = str(path)  # a write through a file object doesn't say where
        raise
