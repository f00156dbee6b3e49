import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from img2caricature import dataset
from img2caricature.errors import UserError
from tests.conftest import make_emoji, make_faces


def test_faces_round_trip(tmp_path):
    path = make_faces(tmp_path / "f.h5", n_ids=3, per_id=2)
    info = dataset.info(path)
    assert (info.kind, info.count, info.n_identities) == ("faces", 6, 3)
    assert info.names == ["person0", "person1", "person2"]
    assert list(dataset.read_column(path, "labels")) == [0, 0, 1, 1, 2, 2]
    assert dataset.read_column(path, "sources")[0] == "id0/0.jpg"
    images = dataset.load_images(path)
    assert images.shape == (6, 3, 152, 152) and images.dtype == torch.uint8
    subset = dataset.load_images(path, indices=np.array([4, 1]))
    assert torch.equal(subset[0], images[4]) and torch.equal(subset[1], images[1])


def test_emoji_round_trip(tmp_path):
    path = make_emoji(tmp_path / "e.h5", n=5)
    info = dataset.info(path)
    assert (info.kind, info.count, info.names) == ("emoji", 5, ["hair", "skin"])
    assert dataset.read_column(path, "params").shape == (5, 2)


def test_wrong_kind_is_a_clear_error(tmp_path):
    path = make_emoji(tmp_path / "e.h5")
    with pytest.raises(UserError, match="holds emoji, but faces were expected"):
        dataset.ImageDataset(path, kind="faces")
    with pytest.raises(UserError, match="not found"):
        dataset.info(tmp_path / "missing.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(UserError, match="not a readable HDF5"):
        dataset.info(tmp_path / "junk.h5")


def test_append_checks_columns(tmp_path):
    path = make_faces(tmp_path / "f.h5", n_ids=1, per_id=1)
    with dataset.Writer(path, "faces") as w, pytest.raises(ValueError):
        w.append(images=np.zeros((1, 152, 152, 3), np.uint8), labels=np.zeros(1, np.int32))


@pytest.mark.parametrize("in_memory, workers", [(True, 0), (False, 0), (False, 2)])
def test_torch_dataset_reads_the_same_images(tmp_path, in_memory, workers):
    path = make_faces(tmp_path / "f.h5", n_ids=2, per_id=3)
    expected = dataset.load_images(path)
    ds = dataset.ImageDataset(path, "faces", in_memory=in_memory)
    batches = list(DataLoader(ds, batch_size=4, num_workers=workers))
    images = torch.cat([b[0] for b in batches])
    labels = torch.cat([b[1] for b in batches])
    assert torch.equal(images, expected)
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]
    x = dataset.to_float(images)
    assert x.min() >= -1 and x.max() <= 1
    assert torch.equal(dataset.to_uint8(x), images)


WRITER = """
import sys, numpy as np
from img2caricature import dataset
w = dataset.Writer(sys.argv[1], "faces")
print("ready", flush=True)
while True:
    k = w.count // 5
    w.append(images=np.full((5, 152, 152, 3), k % 256, np.uint8),
             labels=np.full(5, k, np.int32), sources=[f"batch{k}"] * 5)
"""


def test_writer_killed_mid_append_leaves_whole_records(tmp_path):
    path = tmp_path / "f.h5"
    dataset.create(path, "faces", producer="tests")
    for _ in range(2):  # kill twice: the second writer also starts from a killed file
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE,
                                env={**os.environ, "PYTHONPATH": os.getcwd()})
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(0.7)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        count = dataset.info(path).count
        assert count > 0 and count % 5 == 0
        images = dataset.load_images(path)
        labels = dataset.read_column(path, "labels")
        for start in range(0, count, 5):  # every stored batch is whole and uncorrupted
            k = start // 5
            assert (labels[start:start + 5] == k).all()
            assert (images[start:start + 5] == k % 256).all()
    with dataset.Writer(path, "faces") as w:  # and the file still takes appends
        before = w.count
        w.append(images=np.zeros((1, 152, 152, 3), np.uint8), labels=np.zeros(1, np.int32), sources=["x"])
    assert dataset.info(path).count == before + 1
