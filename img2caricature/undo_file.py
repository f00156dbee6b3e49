"""A file that can be put back as it was at the last commit: what makes in-place HDF5
appends safe on a full disk.

HDF5 updates its index (B-trees, object headers, heaps) in place, and a write that fails
half-way through a flush (ENOSPC, a quota, EIO) can leave pointers to blocks that never
reached the disk: every record of the file, old ones included, becomes unreadable. So a
dataset writer hands h5py this object (h5py's `fileobj` driver) instead of a path:

- before overwriting a byte that existed at the last commit, the page it lies in is copied
  to an in-memory undo log (only metadata pages in practice: records go at the end);
- a write that fails is not reported to HDF5 (its error handling is what corrupts the file
  and then crashes): it and every later write go to an in-memory overlay, so HDF5 goes on
  reading what it believes it wrote and can close cleanly;
- `rollback()` writes the logged pages back and truncates to the committed size, which
  needs no new space: the file is then byte for byte what it was at the last commit.

The file is locked (`flock`, as HDF5 locks) so two writers never share it.

A writer killed mid-flush (SIGKILL, OOM, a closed laptop) cannot roll back in memory, and HDF5
may have rewritten half of an index that earlier records hang from. So every page is also
copied to a journal beside the file (`NAME.undo`) before it is overwritten, and the journal is
deleted at commit: the next writer or reader that finds one puts the file back first
(`recover`). Writing to the OS is enough for a killed process; a power cut is not covered.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from pathlib import Path

PAGE = 4096
_HEADER = struct.Struct("<Q")      # the journal: the committed size, then records
_RECORD = struct.Struct("<QI")     # page number, length; then that page's committed bytes


def journal_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".undo")


def _roll_back_journal(fd: int, path: Path) -> bool:
    """Put the file (open as `fd`, locked) back as its journal recorded it; True if there was one."""
    journal = journal_path(path)
    try:
        data = journal.read_bytes()
    except FileNotFoundError:
        return False
    if len(data) >= _HEADER.size:      # shorter: killed before the header, nothing overwritten yet
        (committed,) = _HEADER.unpack_from(data)
        at = _HEADER.size
        while at + _RECORD.size <= len(data):
            page, n = _RECORD.unpack_from(data, at)
            at += _RECORD.size
            if at + n > len(data):
                break                  # a record cut short: its page was never overwritten
            _pwrite_all(fd, data[at:at + n], page * PAGE)
            at += n
        os.ftruncate(fd, committed)
        os.fsync(fd)
    journal.unlink()
    return True


def recover(path: str | Path) -> bool:
    """Before reading: a writer killed mid-append left a journal; put the file back (unless a
    live writer holds it). True if a journal was rolled back."""
    if not journal_path(path).exists():
        return False
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False                   # read-only place: read it as it is
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False                   # a live writer: its journal is its own
    try:
        return _roll_back_journal(fd, Path(path))
    finally:
        os.close(fd)                   # also drops the lock


class UndoFile:
    """A seekable binary file object over `path` (which must exist) for h5py's fileobj driver."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.fd = os.open(self.path, os.O_RDWR)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self.fd)
            raise
        try:
            _roll_back_journal(self.fd, self.path)   # a writer killed mid-append: back to its last commit
        except OSError:
            os.close(self.fd)
            raise
        self._journal: int | None = None
        self.size = os.fstat(self.fd).st_size  # as HDF5 sees it (overlay writes included)
        self.pos = 0
        self.failure: OSError | None = None      # the first write that failed since the last commit
        self._overlay: list[tuple[int, bytes]] = []
        self._commit_state()

    # ---- transactions -------------------------------------------------------------

    def _commit_state(self) -> None:
        self.committed_size = self.size
        self._undo: dict[int, bytes] = {}        # page number -> its bytes at the last commit

    def commit(self) -> None:
        """What is on disk now is the state to come back to. Only after a write-free flush."""
        if self.failure is not None:
            raise RuntimeError("commit after a failed write: roll back instead")
        self._drop_journal()
        self._commit_state()

    def _journal_fd(self) -> int:
        """The journal of this transaction, begun (with the committed size) on its first write."""
        if self._journal is None:
            fd = os.open(journal_path(self.path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                _write_journal(fd, _HEADER.pack(self.committed_size))
            except OSError:
                os.close(fd)
                raise
            self._journal = fd
        return self._journal

    def _drop_journal(self) -> None:
        if self._journal is not None:
            os.close(self._journal)
            self._journal = None
            journal_path(self.path).unlink(missing_ok=True)

    def rollback(self) -> None:
        """Put the file back as it was at the last commit (needs no new disk space)."""
        for page, old in sorted(self._undo.items()):
            _pwrite_all(self.fd, old, page * PAGE)
        os.ftruncate(self.fd, self.committed_size)
        os.fsync(self.fd)
        self._drop_journal()
        self.size, self.failure, self._overlay = self.committed_size, None, []
        self._commit_state()

    def _save_pages(self, start: int, end: int) -> None:
        """Log the committed bytes of [start, end) that are not logged yet."""
        journal = self._journal_fd()   # begun on any write: a kill after it trims what was appended
        end = min(end, self.committed_size)
        for page in range(start // PAGE, (end - 1) // PAGE + 1 if end > start else 0):
            if page not in self._undo:
                old = os.pread(self.fd, PAGE, page * PAGE)
                _write_journal(journal, _RECORD.pack(page, len(old)) + old)   # on its way before the page is
                self._undo[page] = old

    # ---- the file-object interface h5py uses ----------------------------------------

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self.pos = {os.SEEK_SET: 0, os.SEEK_CUR: self.pos, os.SEEK_END: self.size}[whence] + offset
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self._read(self.pos, len(view))
        view[:len(data)] = data
        self.pos += len(data)
        return len(data)

    def read(self, size: int = -1) -> bytes:
        size = self.size - self.pos if size < 0 else size
        data = self._read(self.pos, size)
        self.pos += len(data)
        return data

    def _read(self, offset: int, size: int) -> bytes:
        size = max(0, min(size, self.size - offset))
        data = bytearray(os.pread(self.fd, size, offset))
        data.extend(bytes(size - len(data)))  # past the real end: only overlay bytes live there
        for start, chunk in self._overlay:
            lo, hi = max(start, offset), min(start + len(chunk), offset + size)
            if lo < hi:
                data[lo - offset:hi - offset] = chunk[lo - start:hi - start]
        return bytes(data)

    def write(self, data) -> int:
        data = bytes(data)
        if self.failure is None:
            try:
                self._save_pages(self.pos, self.pos + len(data))
                _pwrite_all(self.fd, data, self.pos)
            except OSError as err:
                self.failure = err
        if self.failure is not None:
            self._overlay.append((self.pos, data))
        self.pos += len(data)
        self.size = max(self.size, self.pos)
        return len(data)

    def truncate(self, size: int | None = None) -> int:
        size = self.pos if size is None else size
        if self.failure is None:
            try:
                self._save_pages(size, self.committed_size)
                os.ftruncate(self.fd, size)
            except OSError as err:
                self.failure = err
        if self.failure is not None:  # HDF5's view only; the overlay keeps what lies past it
            self._overlay = [(s, c[:max(0, size - s)]) for s, c in self._overlay if s < size]
        self.size = size
        return size

    def flush(self) -> None:
        pass  # writes go straight to the OS, as with HDF5's own driver

    def close(self) -> None:
        if self._journal is not None:   # closed uncommitted: the journal stays for the next opener
            os.close(self._journal)
            self._journal = None
        if self.fd >= 0:
            os.close(self.fd)  # also drops the lock
            self.fd = -1

    @property
    def closed(self) -> bool:
        return self.fd < 0

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True


def _pwrite_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        if n <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view, offset = view[n:], offset + n


def _write_journal(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        view = view[n:]

