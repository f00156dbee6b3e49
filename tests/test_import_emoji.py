"""`img2car import-emoji`: a folder of images into an emoji dataset without parameters."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from img2caricature import dataset
from img2caricature.cli import main
from img2caricature.images import sha256
from tests.conftest import SHARED_DATA


def make_folder(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (128, 128, 3), dtype=np.uint8)).save(folder / f"e{i}.png")
    shutil.copy(folder / "e0.png", folder / "copy_of_e0.png")         # a duplicate
    rgba = np.zeros((100, 100, 4), np.uint8)
    rgba[25:75, 25:75] = (200, 0, 0, 255)                             # red square on transparency
    (folder / "sub").mkdir()
    Image.fromarray(rgba, "RGBA").save(folder / "sub" / "alpha.png")
    Image.fromarray(rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)).save(folder / "wide.jpg")
    (folder / "error.png").write_text("<html>not found</html>")        # an HTML page saved as .png
    good = (folder / "e1.png").read_bytes()
    (folder / "truncated.png").write_bytes(good[: len(good) // 2])
    (folder / "notes.txt").write_text("ignored: not an image extension")
    return folder


def test_import_validates_converts_and_deduplicates(tmp_path, capsys):
    folder = make_folder(tmp_path / "emoji")
    out = tmp_path / "b.h5"
    assert main(["import-emoji", str(folder), "--out", str(out), "--no-progress"]) == 1  # two files failed
    summary = capsys.readouterr().out
    assert "stored:     6 new" in summary and "duplicates: 1" in summary
    assert "failed:     2" in summary and "not an image: 1" in summary and "corrupt: 1" in summary
    info = dataset.info(out, "emoji")
    assert info.count == 6 and info.names == []
    assert dataset.read_column(out, "params").shape == (6, 0)
    urls = list(dataset.read_column(out, "urls"))
    assert str((folder / "sub" / "alpha.png").resolve()) in urls
    images = dataset.load_images(out).permute(0, 2, 3, 1).numpy()
    assert images.shape == (6, 152, 152, 3)
    alpha = images[urls.index(str((folder / "sub" / "alpha.png").resolve()))]
    assert (alpha[0, 0] == 255).all() and tuple(alpha[76, 76]) == (200, 0, 0)  # white background
    assert list(dataset.read_column(out, "sha256")) == [sha256(im) for im in images]


def test_import_resumes_and_adds_only_new_files(tmp_path, capsys):
    folder = make_folder(tmp_path / "emoji")
    out = tmp_path / "b.h5"
    main(["import-emoji", str(folder), "--out", str(out), "--no-progress"])
    before = dataset.load_images(out)
    capsys.readouterr()
    Image.fromarray(np.full((80, 80, 3), 7, np.uint8)).save(folder / "new.png")
    main(["import-emoji", str(folder), "--out", str(out), "--no-progress"])
    summary = capsys.readouterr().out
    assert "stored:     1 new (7 in the file)" in summary and "resumed:    6 already in the file" in summary
    assert (dataset.load_images(out)[:6] == before).all()


def test_import_errors_are_one_line(tmp_path, capsys):
    assert main(["import-emoji", str(tmp_path / "missing"), "--out", str(tmp_path / "b.h5")]) == 2
    assert "emoji folder not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["import-emoji", str(tmp_path / "empty"), "--out", str(tmp_path / "b.h5")]) == 2
    assert "no images in" in capsys.readouterr().err
    crawled = tmp_path / "crawled.h5"
    dataset.create(crawled, "emoji", "test", param_names=["top"])
    folder = make_folder(tmp_path / "emoji")
    assert main(["import-emoji", str(folder), "--out", str(crawled)]) == 2
    err = capsys.readouterr().err
    assert "holds emoji with parameters [top], not [none]" in err and len(err.strip().splitlines()) == 1


@pytest.mark.skipif(not (SHARED_DATA / "bitmoji-faces").is_dir(), reason="../shared/data is absent")
def test_import_real_bitmoji_faces(tmp_path, capsys):
    folder = tmp_path / "faces"
    folder.mkdir()
    for path in sorted((SHARED_DATA / "bitmoji-faces").glob("*.jpg"))[:12]:
        (folder / path.name).symlink_to(path)
    out = tmp_path / "b.h5"
    assert main(["import-emoji", str(folder), "--out", str(out), "--no-progress"]) == 0
    images = dataset.load_images(out)
    assert images.shape == (12, 3, 152, 152)
    assert images[:, :, 70:80, 70:80].float().mean() < 240  # a face in the middle, not blank
