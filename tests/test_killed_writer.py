"""A dataset writer killed at any page write of an append (SIGKILL, OOM): the file it leaves
reads as its last whole records, and the next writer continues from them. Without
undo_file's journal, a kill inside the first append's index update left a file HDF5 could
not open ("addr overflow ... eoa")."""

import os
import shutil

import numpy as np
import pytest

from img2caricature import dataset, undo_file

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="kills a forked writer")


def append_batch(w):
    k = w.count // 5   # batch k: 5 records whose pixels and labels say k
    w.append(images=np.full((5, 152, 152, 3), k % 256, np.uint8), labels=np.full(5, k, np.int32),
             sources=[f"batch{k}"] * 5)


def page_writes_of_an_append(path):
    writes, real = [0], undo_file._pwrite_all

    def counting(fd, data, offset):
        writes[0] += 1
        real(fd, data, offset)
    undo_file._pwrite_all = counting
    try:
        with dataset.Writer(path, "faces") as w:
            append_batch(w)
    finally:
        undo_file._pwrite_all = real
    return writes[0]


def killed_at(path, die_at):
    """A forked writer appends one batch and dies on the spot at its `die_at`-th page write,
    half of which reaches the file: no flush, no rollback, no exit handlers."""
    pid = os.fork()
    if pid == 0:
        real, writes = undo_file._pwrite_all, [0]

        def dying(fd, data, offset):
            writes[0] += 1
            if writes[0] == die_at:
                real(fd, data[:len(data) // 2], offset)
                os._exit(9)
            real(fd, data, offset)
        undo_file._pwrite_all = dying
        try:
            w = dataset.Writer(path, "faces")
            append_batch(w)
            w.close()
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def whole_records(path):
    count = dataset.info(path).count
    images, labels = dataset.load_images(path), dataset.read_column(path, "labels")
    assert count % 5 == 0 and len(images) == count == len(labels)
    for k in range(count // 5):
        assert (labels[5 * k:5 * k + 5] == k).all() and (images[5 * k:5 * k + 5] == k % 256).all()
    return count


@pytest.mark.parametrize("batches_before", [0, 3])
def test_a_writer_killed_at_any_page_write_leaves_whole_records(tmp_path, batches_before):
    base = tmp_path / "base.h5"
    dataset.create(base, "faces", producer="tests")
    with dataset.Writer(base, "faces") as w:
        for _ in range(batches_before):
            append_batch(w)
    probe = tmp_path / "probe.h5"
    shutil.copy(base, probe)
    n_writes = page_writes_of_an_append(probe)
    assert n_writes >= 3
    before = 5 * batches_before
    for die_at in range(1, n_writes + 1):
        path = tmp_path / f"killed-{die_at}.h5"
        shutil.copy(base, path)
        assert killed_at(path, die_at) == 9
        assert whole_records(path) in (before, before + 5), die_at   # a reader puts it back first
        assert not undo_file.journal_path(path).exists()
        with dataset.Writer(path, "faces") as w:                     # and a writer continues
            append_batch(w)
        assert whole_records(path) in (before + 5, before + 10)


def test_a_journal_left_beside_a_replaced_file_is_not_applied(tmp_path):
    path = tmp_path / "f.h5"
    dataset.create(path, "faces", producer="tests")
    undo_file.journal_path(path).write_bytes(b"\0" * 64)   # stale: a killed writer of an older file
    dataset.create(path, "faces", producer="tests")
    assert not undo_file.journal_path(path).exists() and dataset.info(path).count == 0
