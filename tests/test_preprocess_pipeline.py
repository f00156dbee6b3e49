"""Input layouts, the parallel pipeline, its summary, the dataset it writes, and the report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from img2caricature import dataset
from img2caricature.errors import UserError
from preprocessing.layouts import identity_folders, identity_list, natural_key, walk
from preprocessing.pipeline import PreprocessOptions, preprocess
from preprocessing.report import ContactSheets
from tests.preprocess_photos import (astronaut, save, save_corrupt, save_not_image, save_rotated_exif,
                                     two_faces)


@pytest.fixture(scope="module")
def photos_dir(tmp_path_factory) -> Path:
    """Three people: alice (2 faces + junk), bob (1 face, several, blank), carol (1 face: dropped)."""
    root = tmp_path_factory.mktemp("photos")
    face = astronaut()
    save(face, root / "alice" / "a1.jpg")
    save_rotated_exif(face, root / "alice" / "a2_portrait.jpg")
    save_corrupt(root / "alice" / "a3_truncated.jpg")
    save_not_image(root / "alice" / "a4_notes.png")
    save(face[:, ::-1], root / "bob" / "b1.jpg")
    save(np.ascontiguousarray(face[:, ::-1]), root / "bob" / "b2.png")
    save(two_faces(face), root / "bob" / "b3_pair.jpg")
    save(np.full((200, 200, 3), 128, np.uint8), root / "bob" / "b4_blank.png")
    save(face, root / "carol" / "c1.jpg")
    (root / "carol" / "readme.txt").write_text("not an image extension: never listed")
    return root


def test_identity_folders_lists_every_image_sorted(photos_dir):
    photos = identity_folders(photos_dir)
    assert [p.source for p in photos] == [
        "alice/a1.jpg", "alice/a2_portrait.jpg", "alice/a3_truncated.jpg", "alice/a4_notes.png",
        "bob/b1.jpg", "bob/b2.png", "bob/b3_pair.jpg", "bob/b4_blank.png", "carol/c1.jpg"]
    assert {p.identity for p in photos} == {"alice", "bob", "carol"}


def test_identity_list_layout(tmp_path):
    face = astronaut()
    for name in ("000001.jpg", "000002.jpg", "000010.jpg"):
        save(face, tmp_path / "img" / name)
    listing = tmp_path / "identity_CelebA.txt"
    listing.write_text("000010.jpg 10\n000001.jpg 2\n\n000002.jpg 2\n000003.jpg 10\n")
    photos = identity_list(tmp_path / "img", listing)
    # Identities sort numerically ("2" before "10"); a listed but missing file is kept to be counted.
    assert [(p.identity, p.source) for p in photos] == [
        ("2", "000001.jpg"), ("2", "000002.jpg"), ("10", "000003.jpg"), ("10", "000010.jpg")]
    summary = preprocess(photos, tmp_path / "faces.h5", progress=False)
    assert summary.counts["ok"] == 3 and summary.unreadable == {"missing": 1}
    assert (summary.kept, summary.dropped) == (2, 1)
    assert summary.identities_kept == 1  # identity 10 has one readable face: dropped
    assert dataset.info(tmp_path / "faces.h5").names == ["2"]


def test_layout_errors_are_user_errors(tmp_path):
    save(astronaut(), tmp_path / "flat" / "x.jpg")
    with pytest.raises(UserError, match="--identities"):
        identity_folders(tmp_path / "flat")
    with pytest.raises(UserError, match="not found"):
        walk(tmp_path / "nowhere")
    bad = tmp_path / "ids.txt"
    bad.write_text("x.jpg\n")
    with pytest.raises(UserError, match="expected 'image identity'"):
        identity_list(tmp_path / "flat", bad)


def test_natural_key():
    assert sorted(["id10", "id2", "id1"], key=natural_key) == ["id1", "id2", "id10"]


@pytest.mark.parametrize("workers", [1, 2])
def test_pipeline_counts_writes_and_drops(photos_dir, tmp_path, workers):
    out = tmp_path / "faces.h5"
    summary = preprocess(walk(photos_dir), out, PreprocessOptions(workers=workers), progress=False)
    assert summary.photos == 9
    assert summary.counts == {"ok": 5, "unreadable": 2, "several faces": 1, "no face": 1}
    assert summary.unreadable == {"corrupt": 1, "not an image": 1}
    assert (summary.kept, summary.dropped, summary.identities, summary.identities_kept) == (4, 1, 3, 2)
    assert summary.kept_rate == pytest.approx(4 / 9)
    text = "\n".join(summary.lines())
    assert "kept:            4 (44.4%)" in text and "corrupt 1, not an image 1" in text

    info = dataset.info(out, "faces")
    assert info.count == 4 and info.names == ["alice", "bob"]
    labels = dataset.read_column(out, "labels")
    assert labels.tolist() == [0, 0, 1, 1]  # dense, in name order
    assert dataset.read_column(out, "sources").tolist() == ["alice/a1.jpg", "alice/a2_portrait.jpg",
                                                           "bob/b1.jpg", "bob/b2.png"]
    images = dataset.load_images(out)
    assert images.shape == (4, 3, 152, 152)
    # The EXIF portrait was cropped upright: its crop matches the plain photo's.
    diff = (images[0].float() - images[1].float()).abs().mean()
    assert diff < 12, diff
    assert not out.with_name(out.name + ".partial").exists()


def test_rerun_gives_the_same_file(photos_dir, tmp_path):
    photos = walk(photos_dir)
    preprocess(photos, tmp_path / "a.h5", PreprocessOptions(workers=1), progress=False)
    preprocess(photos, tmp_path / "b.h5", PreprocessOptions(workers=2), progress=False)
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()


def test_keep_largest_keeps_the_pair(photos_dir, tmp_path):
    from preprocessing.detect import FaceOptions

    options = PreprocessOptions(faces=FaceOptions(policy="largest"), min_per_identity=1)
    summary = preprocess(walk(photos_dir), tmp_path / "f.h5", options, progress=False)
    assert summary.counts["several faces"] == 0 and summary.kept == 6 and summary.identities_kept == 3


def test_contact_sheets(photos_dir, tmp_path):
    sheets = ContactSheets(kept_count=3)
    preprocess(walk(photos_dir), tmp_path / "f.h5", observe=sheets.observe, progress=False)
    kept, rejected = sheets.write(tmp_path / "report")
    assert len(sheets.kept.items) == 3
    assert set(sheets.rejected) == {"unreadable: corrupt", "unreadable: not an image", "several faces",
                                    "no face", "too few for identity"}
    with Image.open(kept) as k, Image.open(rejected) as r:
        assert k.format == r.format == "PNG"
        assert k.size == (8 * 154 + 2, 154 + 2)   # one row of 8 slots, 3 filled
        assert r.size[1] == 5 * (200 + 3) + 3      # a row per reason
        # Reason text is drawn in white on the black strip under each tile.
        strip = np.asarray(r)[3 + 181: 3 + 200, 3: 3 + 180]
        assert strip.max() > 200
