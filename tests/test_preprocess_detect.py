"""Face detection, the one-face policy and the crop, on real and made photos."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from img2caricature.images import read_image
from preprocessing.detect import Box, DetectOptions, FaceOptions, crop_face, detect_faces, find_faces, select_faces
from tests.preprocess_photos import astronaut, save_rotated_exif, two_faces


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return astronaut()


def test_astronaut_has_one_face_cropped_to_152(photo):
    result = find_faces(photo)
    assert result.status == "ok"
    assert len(result.boxes) == 1
    (box,) = result.chosen
    # Her face lies left of centre, in the upper third of the photo.
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    assert 0.35 * 320 < cx < 0.55 * 320 and 0.15 * 320 < cy < 0.35 * 320
    (crop,) = result.crops
    assert crop.shape == (152, 152, 3) and crop.dtype == np.uint8
    # The crop is a face again: the detector finds it, centred and filling most of it.
    again = detect_faces(crop)
    assert len(again) == 1
    b = again[0]
    assert abs(b.x + b.w / 2 - 76) < 15 and abs(b.y + b.h / 2 - 76) < 20
    assert 0.45 < b.w / 152 < 0.85


def test_blank_photo_has_no_face():
    blank = np.full((240, 320, 3), 200, np.uint8)
    result = find_faces(blank)
    assert (result.status, result.boxes, result.crops) == ("no face", [], [])


def test_two_faces_rejected_unless_keep_largest(photo):
    pair = two_faces(photo)
    assert find_faces(pair).status == "several faces"
    result = find_faces(pair, FaceOptions(policy="largest"))
    assert result.status == "ok" and len(result.crops) == 1
    assert result.chosen[0].x < photo.shape[1]  # the full-size (left) face, not the smaller copy
    both = find_faces(pair, FaceOptions(policy="all"))
    assert len(both.crops) == 2


def test_small_face_is_too_small(photo):
    result = find_faces(photo, FaceOptions(min_face=200))
    assert result.status == "too small" and len(result.boxes) == 1 and not result.crops


def test_exif_rotation_is_applied_before_detection(photo, tmp_path):
    path = save_rotated_exif(photo, tmp_path / "portrait.jpg")
    with Image.open(path) as raw:  # as stored, ignoring the tag: face on its side
        assert detect_faces(np.asarray(raw.convert("RGB"))) == []
    assert find_faces(read_image(path)).status == "ok"


def test_big_photos_are_searched_downscaled_but_boxes_are_in_photo_pixels(photo):
    big = np.asarray(Image.fromarray(photo).resize((1280, 1280)))
    (small_box,) = detect_faces(photo)
    (big_box,) = detect_faces(big, DetectOptions(max_side=320))
    assert abs(big_box.x - 4 * small_box.x) <= 8 and abs(big_box.w - 4 * small_box.w) <= 8


def test_crop_geometry():
    image = np.zeros((100, 200, 3), np.uint8)
    image[20:60, 50:90] = 255  # a white 40x40 "face"
    box = Box(50, 20, 40, 40)
    tight = crop_face(image, box, size=40, margin=0.0, shift=0.0)
    assert tight.shape == (40, 40, 3) and tight.min() == 255
    wide = crop_face(image, box, size=80, margin=0.5, shift=0.0)  # 80 px square, face in the middle half
    assert wide[20:60, 20:60].min() == 255 and wide[:18].max() == 0 and wide[:, :18].max() == 0
    # Near the edge the square runs off the photo: black fill, the face stays centred.
    corner = np.full((100, 200, 3), 255, np.uint8)
    edge = crop_face(corner, Box(0, 0, 40, 40), size=80, margin=0.5, shift=0.0)
    assert edge[:20].max() == 0 and edge[:, :20].max() == 0 and edge[22:58, 22:58].min() == 255


def test_select_faces_policy():
    big, small, tiny = Box(0, 0, 100, 100), Box(200, 0, 60, 60), Box(300, 0, 20, 20)
    assert select_faces([big, small, tiny], 48) == ("several faces", [])
    assert select_faces([big, small, tiny], 48, "largest") == ("ok", [big])
    assert select_faces([big, tiny], 48) == ("ok", [big])  # a tiny extra face does not count
    assert select_faces([tiny], 48) == ("too small", [])
    assert select_faces([], 48) == ("no face", [])


def test_mtcnn_finds_the_astronaut(photo):
    pytest.importorskip("facenet_pytorch")
    result = find_faces(photo, FaceOptions(detect=DetectOptions(detector="mtcnn")))
    assert result.status == "ok" and result.crops[0].shape == (152, 152, 3)
    box = result.chosen[0]
    assert 0.35 * 320 < box.x + box.w / 2 < 0.55 * 320
