"""The undo file under a dataset writer: a write refused at any point of an append puts the
file back byte for byte (issue 17, class 1, at every failure point, not only the first)."""

import errno
import shutil

import numpy as np
import pytest

from img2caricature import dataset, undo_file
from img2caricature.errors import DiskError
from tests.conftest import make_emoji


def append_three(path):
    rng = np.random.default_rng(7)
    with dataset.Writer(path, "emoji") as w:
        w.append(images=rng.integers(0, 256, (3, 152, 152, 3), dtype=np.uint8),
                 params=np.ones((3, 2), np.int32), urls=["x", "y", "z"], sha256=["a", "b", "c"])


def check_whole(path, first_images):
    images = dataset.load_images(path)
    assert (images[:5] == first_images).all()
    assert len(dataset.read_column(path, "sha256")) == len(images)


def test_a_refused_write_anywhere_in_an_append_restores_the_file_exactly(tmp_path, monkeypatch):
    original = make_emoji(tmp_path / "e.h5", n=5)
    before = original.read_bytes()
    real = undo_file._pwrite_all
    calls = []

    def counting(fd, data, offset):
        calls.append(offset)
        return real(fd, data, offset)

    monkeypatch.setattr(undo_file, "_pwrite_all", counting)
    append_three(shutil.copy(original, tmp_path / "count.h5"))
    n_writes = len(calls)
    assert n_writes > 5 and any(offset < len(before) for offset in calls)  # some writes land in place

    refused = []
    before_images = dataset.load_images(original)
    for k in range(n_writes):
        path = shutil.copy(original, tmp_path / f"fail{k}.h5")
        seen = []

        def failing(fd, data, offset):
            seen.append(offset)
            if len(seen) == k + 1:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(fd, data, offset)

        monkeypatch.setattr(undo_file, "_pwrite_all", failing)
        try:
            append_three(path)
        except DiskError as err:
            assert "with its 5 complete records" in str(err)
            assert path.read_bytes() == before, f"write {k + 1} of {n_writes}"
            refused.append(k)
        monkeypatch.setattr(undo_file, "_pwrite_all", real)
        # either way whole records only: the 5 before, or (a write on closing, after the last
        # flush, was refused) all 8, which that flush had already put on disk
        assert dataset.info(path).count in (5, 8)
        check_whole(path, before_images)
    assert len(refused) >= n_writes - 3  # nearly every write belongs to the append itself
    path = shutil.copy(original, tmp_path / "after.h5")
    append_three(path)  # and the file still takes appends
    assert dataset.info(path).count == 8
