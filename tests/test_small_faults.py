"""The smaller faults of issue 17 (class 8): a FIFO named like a photo, a damaged dataset
header, a nonsense numeric option, and a raw pickle as --model: each one line, no hang."""

import os
import pickle
import threading

import h5py
import numpy as np
import pytest

from img2caricature import dataset, images
from img2caricature.cli import main
from tests.conftest import make_emoji
from tests.preprocess_photos import ASTRONAUT


def finishes(fn, fifo, seconds: float = 60):
    """Run fn in a thread; if it is stuck opening `fifo`, unblock it and fail."""
    result = {}

    def run():
        try:
            result["value"] = fn()
        except BaseException as err:
            result["error"] = err

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        with open(fifo, "wb"):  # a writer at last: the stuck reader gets EOF
            pass
        thread.join(10)
        pytest.fail("hung on a FIFO")
    if "error" in result:
        raise result["error"]
    return result.get("value")


def test_a_fifo_named_like_a_photo_is_refused_not_waited_on(tmp_path, capsys):
    fifo = tmp_path / "f.jpg"
    os.mkfifo(fifo)
    with pytest.raises(images.ImageError, match="not a regular file"):
        finishes(lambda: images.read_image(fifo), fifo)
    assert finishes(lambda: main(["caricature", str(fifo)]), fifo) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"{fifo}: not a regular file (a pipe, socket or device)"]


HEADER_DAMAGE = {
    "count not a number": ("count", "abc"),
    "count negative": ("count", -3),
    "count past the data": ("count", 10**9),
    "count fractional": ("count", 2.5),
    "count an array": ("count", np.arange(3)),
    "kind a number": ("kind", 3),
    "kind unknown": ("kind", "cats"),
    "parameter names a number": ("param_names", 7),
}


@pytest.mark.parametrize("case", sorted(HEADER_DAMAGE))
def test_a_damaged_header_is_one_line_and_the_file_is_left_alone(tmp_path, capsys, case):
    path = make_emoji(tmp_path / "e.h5", n=3)
    key, value = HEADER_DAMAGE[case]
    with h5py.File(path, "a") as f:
        f.attrs[key] = value
    before = path.read_bytes()
    for args in (["info", str(path)], ["import-emoji", str(ASTRONAUT.parent), "--out", str(path), "--no-progress"]):
        assert main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "is damaged" in err[0], err
    with pytest.raises(dataset.UserError, match="is damaged"):
        dataset.load_images(path)
    assert path.read_bytes() == before


def test_damaged_attribute_bytes_are_one_line(tmp_path, capsys):
    path = make_emoji(tmp_path / "e.h5", n=3)
    data = bytearray(path.read_bytes())
    at = data.find(b"count")
    data[at + 8:at + 16] = bytes(b ^ 0xFF for b in data[at + 8:at + 16])
    path.write_bytes(bytes(data))
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is damaged" in err[0], err


@pytest.mark.parametrize("args", [
    ["caricature", str(ASTRONAUT), "--min-face", "-5"],
    ["caricature", str(ASTRONAUT), "--min-face", "0"],
    ["pretrain-encoder", "--steps", "0"],
    ["pretrain-encoder", "--time-limit", "-1"],
    ["pretrain-encoder", "--time-limit", "nan"],
    ["crawl", "--count", "3", "--max-failures", "0"],
    ["preprocess", "photos", "--min-neighbors", "-1"],
])
def test_nonsense_numbers_are_refused_in_one_line(capsys, args):
    with pytest.raises(SystemExit) as exit_:
        main(args)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and "must be" in err[0], err


def test_a_raw_pickle_model_is_exactly_one_line(tmp_path, capsys, recwarn):
    model = tmp_path / "raw.pt"
    model.write_bytes(pickle.dumps({"kind": "dtn", "generator": [1, 2, 3]}, protocol=4))
    assert main(["caricature", str(ASTRONAUT), "--model", str(model)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a readable checkpoint" in err[0], err
    assert not [str(w.message) for w in recwarn if "pickle" in str(w.message)]  # torch's 2-line warning
