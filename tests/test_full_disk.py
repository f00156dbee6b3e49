"""A full disk in the middle of an in-place append (issue 17, class 1): one line on stderr,
a non-zero exit, and a file that reopens with every record that was complete before."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from img2caricature import dataset
from img2caricature.images import sha256
from tests.full_disk import SmallDisk


def random_pngs(folder: Path, n: int, seed: int) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / f"{seed}-{i:04d}.png")
    return folder


@pytest.fixture(params=["tmpfs", "injected"])
def disk(tmp_path, request):
    """20 MB: about 290 records of 152x152x3. A tmpfs where mounting is permitted (root),
    else (and always for "injected") ENOSPC injected at the writes past 20 MB."""
    d = SmallDisk(tmp_path / "disk", size_mb=20, mount=request.param == "tmpfs")
    yield d
    d.close()


def check_whole(path: Path) -> np.ndarray:
    """Every record up to `count` reads, and its pixels are the pixels it was hashed from."""
    images = dataset.load_images(path).permute(0, 2, 3, 1).numpy()
    assert [sha256(im) for im in images] == list(dataset.read_column(path, "sha256"))
    return images


def test_full_disk_keeps_every_earlier_record_and_a_rerun_continues(tmp_path, disk):
    first, second = random_pngs(tmp_path / "a", 100, 1), random_pngs(tmp_path / "b", 300, 2)
    out = disk.path / "e.h5"
    done = disk.run("import-emoji", str(first), "--out", str(out), "--no-progress")
    assert done.returncode == 0, done.stderr
    before = check_whole(out)
    assert len(before) == 100

    full = disk.run("import-emoji", str(second), "--out", str(out), "--no-progress")
    assert full.returncode > 0, (full.returncode, full.stderr[-2000:])  # an exit code, not a signal
    lines = full.stderr.strip().splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0], full.stderr[-2000:]
    after = check_whole(out)
    assert f"with its {len(after)} complete records" in lines[0]
    assert len(after) >= 100 and (after[:100] == before).all()

    disk.grow(60)
    again = disk.run("import-emoji", str(second), "--out", str(out), "--no-progress")
    assert again.returncode == 0, again.stderr[-2000:]
    final = check_whole(out)
    assert len(final) == 400 and (final[:100] == before).all()


def test_other_writes_on_a_full_disk_are_one_line_and_leave_no_half_file(tmp_path, faces_h5):
    """A training run whose disk is full: its checkpoint write fails as one line, exit 2."""
    from tests.conftest import TINY_ENCODER

    disk = SmallDisk(tmp_path / "disk", size_mb=2)
    if not disk.mounted:
        pytest.skip("needs a tmpfs (root); writes through torch.save cannot be injected")
    try:
        with open(disk.path / "filler", "wb") as fh:  # fill the disk
            with pytest.raises(OSError):
                while True:
                    fh.write(bytes(2**16))
                    fh.flush()
        overrides = [a for o in TINY_ENCODER for a in ("--set", o)]
        run = disk.run("pretrain-encoder", "--faces", str(faces_h5), "--out", str(disk.path / "run"),
                       *overrides, "--steps", "2")
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 2 and len(lines) == 1, run.stderr[-2000:]
        assert "No space left on device" in lines[0] and str(disk.path / "run") in lines[0]
        assert not list((disk.path / "run").glob("*.tmp"))
    finally:
        disk.close()
