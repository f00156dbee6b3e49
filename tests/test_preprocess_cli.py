"""`img2car preprocess` end to end: both layouts, flags, user errors, and the shared real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from img2caricature import dataset
from img2caricature.cli import main
from tests.conftest import SHARED_DATA
from tests.preprocess_photos import astronaut, eye_angle, save, save_corrupt, turned, two_faces


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("people")
    face = astronaut()
    for person in ("p1", "p2"):
        save(face, root / person / "front.jpg")
        save(face[:, ::-1], root / person / "mirror.jpg")
    save(two_faces(face), root / "p2" / "pair.jpg")
    save_corrupt(root / "p2" / "broken.jpg")
    return root


def test_identity_folders_with_report(folders, tmp_path, capsys):
    out, report = tmp_path / "faces.h5", tmp_path / "report"
    code = main(["preprocess", str(folders), "--out", str(out), "--workers", "2", "--report", str(report),
                 "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "kept:            4 (66.7%)" in printed
    assert "several faces:   1" in printed and "unreadable:      1 (corrupt 1)" in printed
    assert "identities kept: 2 of 2" in printed
    assert dataset.info(out).names == ["p1", "p2"]
    assert (report / "kept.png").stat().st_size > 0 and (report / "rejected.png").stat().st_size > 0


def test_keep_largest_flag(folders, tmp_path, capsys):
    out = tmp_path / "faces.h5"
    assert main(["preprocess", str(folders), "--out", str(out), "--keep-largest", "--workers", "1",
                 "--no-progress"]) == 0
    assert dataset.info(out).count == 5


def test_flat_folder_with_identity_list(tmp_path, capsys):
    face = astronaut()
    for i in range(3):
        save(np.roll(face, 5 * i, axis=1), tmp_path / "flat" / f"{i:06d}.jpg")
    ids = tmp_path / "identity_CelebA.txt"
    ids.write_text("000000.jpg 7\n000001.jpg 7\n000002.jpg 8\n")
    out = tmp_path / "faces.h5"
    code = main(["preprocess", str(tmp_path / "flat"), "--identities", str(ids), "--out", str(out),
                 "--min-per-identity", "1", "--workers", "1", "--no-progress"])
    assert code == 0
    assert dataset.read_column(out, "labels").tolist() == [0, 0, 1]
    assert dataset.info(out).names == ["7", "8"]


@pytest.mark.parametrize("argv, message", [
    (["preprocess", "{tmp}/missing"], "input folder not found"),
    (["preprocess", "{tmp}", "--size", "100"], "152x152"),
    (["preprocess", "{tmp}", "--margin", "-1"], "--margin"),
    (["preprocess", "{tmp}", "--identities", "{tmp}/nope.txt"], "identity list not found"),
    (["preprocess", "{tmp}", "--align", "--detector", "haar"], "--align needs MTCNN's landmarks"),
])
def test_user_errors_are_one_line(tmp_path, capsys, argv, message):
    code = main([a.format(tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_align_levels_the_eyes(tmp_path, capsys):
    face = astronaut(512)
    for degrees in (-25, 25):
        save(turned(face, degrees), tmp_path / "in" / "p1" / f"tilted{degrees}.jpg")
    out = tmp_path / "faces.h5"
    code = main(["preprocess", str(tmp_path / "in"), "--out", str(out), "--align", "--workers", "1", "--no-progress"])
    assert code == 0 and dataset.info(out).count == 2
    for crop in dataset.read_column(out, "images"):
        assert abs(eye_angle(crop)) < 5


def test_no_face_anywhere_is_a_user_error(tmp_path, capsys):
    save(np.full((100, 100, 3), 90, np.uint8), tmp_path / "in" / "x" / "blank.jpg")
    code = main(["preprocess", str(tmp_path / "in"), "--out", str(tmp_path / "f.h5"), "--no-progress"])
    assert code == 2 and "no faces kept" in capsys.readouterr().err


CELEBA = SHARED_DATA / "celeba-identities"


@pytest.mark.skipif(not CELEBA.is_dir(), reason="shared data not present")
def test_real_wild_photos(tmp_path, capsys):
    """Three identities of the shared CelebA photos: most kept, and every crop is a centred face."""
    from preprocessing.detect import DetectOptions, detect_faces

    root = tmp_path / "in"
    root.mkdir()
    for name in sorted(p.name for p in CELEBA.iterdir())[:3]:
        (root / name).symlink_to(CELEBA / name)
    out = tmp_path / "faces.h5"
    assert main(["preprocess", str(root), "--out", str(out), "--workers", "2", "--no-progress"]) == 0
    info = dataset.info(out)
    photos = sum(1 for p in root.rglob("*.jpg"))
    assert info.count >= 0.6 * photos and info.n_identities == 3
    # An independent look at the crops: a lenient cascade finds one face near the centre of nearly all.
    lenient = DetectOptions(min_neighbors=3, min_detect=40)
    centred = 0
    for crop in dataset.load_images(out).permute(0, 2, 3, 1).numpy():
        boxes = detect_faces(np.ascontiguousarray(crop), lenient)
        centred += any(abs(b.x + b.w / 2 - 76) < 20 and abs(b.y + b.h / 2 - 76) < 25 for b in boxes)
    assert centred >= 0.9 * info.count
