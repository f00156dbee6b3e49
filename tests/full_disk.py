"""A small, full disk for tests: a real tmpfs where the test may mount one (as root), else
ENOSPC injected at the writes the project makes past a size limit.

`python -m tests.full_disk LIMIT_BYTES DIR ARGS...` runs `img2car ARGS...` with every
`os.pwrite` / `os.write` / `os.ftruncate` to a file under DIR failing with ENOSPC once it
would take the file past LIMIT_BYTES.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class SmallDisk:
    """`path` is a folder on a filesystem of `size_mb`; `run` runs img2car in a subprocess
    (so a crash shows as a signal, not a dead test run); `grow` frees room."""

    def __init__(self, path: Path, size_mb: int, mount: bool = True):
        self.path, self.size_mb = path, size_mb
        path.mkdir(parents=True, exist_ok=True)
        self.mounted = mount and os.geteuid() == 0 and self._mount("size")

    def _mount(self, how: str) -> bool:
        options = f"size={self.size_mb}m" if how == "size" else f"remount,size={self.size_mb}m"
        args = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(self.path)]
        return subprocess.run(args, capture_output=True).returncode == 0

    def grow(self, size_mb: int) -> None:
        self.size_mb = size_mb
        if self.mounted:
            assert self._mount("remount")

    def run(self, *args: str) -> subprocess.CompletedProcess:
        if self.mounted:
            cmd = [sys.executable, "-m", "img2caricature", *args]
        else:
            cmd = [sys.executable, "-m", "tests.full_disk", str(self.size_mb * 2**20), str(self.path), *args]
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)

    def close(self) -> None:
        if self.mounted:
            subprocess.run(["umount", str(self.path)], check=True)


def _inject(limit: int, folder: str) -> None:
    real_pwrite, real_write, real_ftruncate = os.pwrite, os.write, os.ftruncate

    def under(fd: int) -> bool:
        try:
            return os.readlink(f"/proc/self/fd/{fd}").startswith(folder)
        except OSError:
            return False

    def full(fd: int, end: int) -> bool:
        return under(fd) and end > limit

    def pwrite(fd, data, offset):
        if full(fd, offset + len(data)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_pwrite(fd, data, offset)

    def write(fd, data):
        if full(fd, os.lseek(fd, 0, os.SEEK_CUR) + len(data)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    def ftruncate(fd, length):
        if full(fd, length):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_ftruncate(fd, length)

    os.pwrite, os.write, os.ftruncate = pwrite, write, ftruncate


if __name__ == "__main__":
    _inject(int(sys.argv[1]), str(Path(sys.argv[2]).resolve()))
    from img2caricature.cli import main

    sys.exit(main(sys.argv[3:]))
