"""One run per run directory: two trainers writing one folder interleave their states and
delete each other's temporary files. The first takes an exclusive lock on `<run>/.lock`
(flock: the kernel drops it when the process ends, however it ends); a second one stops
with one line."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from img2caricature.errors import UserError

_held: dict[Path, int] = {}  # run directory -> open lock file, kept for the life of the process


def lock_run_dir(out: Path) -> None:
    """Lock `out` (which must exist) for this process; a no-op if this process holds it already."""
    out = Path(out).resolve()
    if out in _held:
        return
    path = out / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise UserError(f"{out} is in use by another run ({holder}): wait for it to finish, "
                        "or give this one another --out") from None
    try:  # who holds it, for the second run's message; a full disk only loses that detail
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
    except OSError:
        pass
    _held[out] = fd
