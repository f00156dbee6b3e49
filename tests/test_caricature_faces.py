"""Finding the face for `img2car caricature`: MTCNN by default, the most prominent face,
framed like the training crops (eyes levelled), on photos the old fast Haar pass missed."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from preprocessing.align import Calibration, Framing, crop_framing, fit_calibration, landmark_framing
from preprocessing.detect import Box, crop_face, detect_faces
from preprocessing.finder import HAAR_FAST, CHOICES, FinderOptions, crop_finder, find_photo_faces, select
from tests.preprocess_photos import astronaut, eye_angle, turned

ASTRONAUT_FACE = 110  # side of the astronaut's face square (MTCNN's framing) in the 512-px photo


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return astronaut(512)


def place(rgb: np.ndarray, scale: float, width: int, height: int) -> np.ndarray:
    """The photo scaled by `scale`, top-left on a grey canvas of width x height."""
    big = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)[:height, :width]
    canvas = np.full((height, width, 3), 90, np.uint8)
    canvas[:big.shape[0], :big.shape[1]] = big
    return canvas


def difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


@pytest.fixture(scope="module")
def reference_crop(photo) -> np.ndarray:
    (crop,) = crop_finder()(photo)
    return crop


def test_fast_pass_misses_a_face_the_default_finds(photo, reference_crop):
    # A 270-px face in a 2400x1800 photo: the old 320-px Haar pass sees a 36-px face and misses it.
    big = place(photo, 270 / ASTRONAUT_FACE, 2400, 1800)
    assert [b for b in detect_faces(big, HAAR_FAST) if b.side >= 24] == []
    (crop,) = crop_finder()(big)
    assert difference(crop, reference_crop) < 12  # the same framing of the same face


def test_huge_photo_with_one_large_face(photo, reference_crop):
    huge = place(photo, 900 / ASTRONAUT_FACE, 8000, 6000)
    result = find_photo_faces(huge)
    assert result.status == "ok" and len(result.chosen) == 1
    assert abs(result.chosen[0].side - 900) < 90     # in the photo's own pixels
    assert difference(result.crops[0], reference_crop) < 12


@pytest.mark.parametrize("shape", [(40, 6000), (6000, 40), (13, 9000), (9000, 12)])
def test_very_wide_or_tall_photos_are_a_miss_not_a_crash(shape):
    from img2caricature.images import ImageError

    for detector in CHOICES:
        with pytest.raises(ImageError, match="no face"):
            crop_finder(detector)(np.full((*shape, 3), 128, np.uint8))


def test_rotated_face_comes_out_level(photo, reference_crop):
    tilted = turned(photo, 30)
    # MTCNN's landmarks are good to a few degrees
    assert abs(eye_angle(tilted) - eye_angle(photo) + 30) < 6   # on screen the eyes' line climbs 30 degrees more
    assert find_photo_faces(tilted, FinderOptions("haar")).status == "no face"   # the cascade cannot see it
    (crop,) = crop_finder()(tilted)
    assert abs(eye_angle(crop)) < 5
    assert difference(crop, reference_crop) < 20     # and framed as the upright photo is


def test_haar_and_mtcnn_frame_the_same_face_alike(photo):
    haar = find_photo_faces(photo, FinderOptions("haar")).chosen[0].framing()
    mtcnn = find_photo_faces(photo).chosen[0].framing()
    # Haar's box steps in 10% scales and sits one step smaller on this face than on the average
    # CelebA face (docs/DETECTION.md has the figures over thousands of faces).
    assert abs(mtcnn.side / haar.side - 1) < 0.2
    assert math.hypot(mtcnn.cx - haar.cx, mtcnn.cy - haar.cy) < 0.1 * haar.side


def test_a_miss_says_what_would_work(photo):
    from img2caricature.images import ImageError

    small = cv2.resize(photo, (200, 200), interpolation=cv2.INTER_AREA)   # a 36-px face
    with pytest.raises(ImageError, match="too small") as err:
        crop_finder(min_face=60)(small)
    advised = int(err.value.detail.split("--min-face ")[1].split()[0])
    assert len(crop_finder(min_face=advised)(small)) == 1
    with pytest.raises(ImageError) as err:
        crop_finder("haar")(turned(photo, 30))
    assert "--detector mtcnn" in err.value.detail
    with pytest.raises(ImageError) as err:
        crop_finder()(np.full((240, 240, 3), 127, np.uint8))
    assert "--no-detect" in err.value.detail


def test_the_most_prominent_face_is_chosen():
    shape = (600, 800, 3)
    central, corner, big_corner = Box(370, 270, 60, 60), Box(0, 0, 60, 60), Box(0, 0, 120, 120)
    assert select([corner, central], shape, 24, False) == ("ok", [central])
    assert select([central, big_corner], shape, 24, False) == ("ok", [big_corner])
    assert select([corner, central], shape, 24, True) == ("ok", [central, corner])
    assert select([corner], shape, 80, False) == ("too small", [])


# ---- the geometry, without a detector ----------------------------------------------

def test_turned_crop_levels_a_tilted_pair_of_dots():
    image = np.zeros((300, 400, 3), np.uint8)
    angle, centre = 25.0, np.array([200.0, 150.0])
    along = np.array([math.cos(math.radians(angle)), math.sin(math.radians(angle))])
    for sign in (-1, 1):
        x, y = centre + sign * 40 * along
        cv2.circle(image, (round(x), round(y)), 4, (255, 255, 255), -1)
    crop = crop_framing(image, Framing(200, 150, 100, angle), size=100, margin=0.0, shift=0.0)
    ys, xs = np.nonzero(crop[..., 0] > 128)
    left, right = xs < 50, xs >= 50
    assert abs(ys[left].mean() - ys[right].mean()) < 1.0            # level
    assert abs(xs[left].mean() - 10) < 1.5 and abs(xs[right].mean() - 90) < 1.5  # 40 px each side of the centre
    assert abs(ys.mean() - 50) < 1.0


def test_upright_framing_is_the_training_crop():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (200, 300, 3), dtype=np.uint8)
    box = Box(120, 40, 64, 64)
    assert np.array_equal(crop_face(image, box), crop_framing(image, Framing(152, 72, 64)))


def test_landmark_framing_turns_with_the_face():
    marks = np.array([[100, 100], [140, 100], [120, 125], [105, 145], [135, 145]], np.float64)
    upright = landmark_framing(marks)
    c = np.array([120.0, 120.0])
    t = math.radians(20)
    rot = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    tilted = landmark_framing((marks - c) @ rot.T + c)
    assert abs(tilted.angle - 20) < 1e-6 and abs(tilted.side - upright.side) < 1e-6
    expected = rot @ (np.array([upright.cx, upright.cy]) - c) + c
    assert np.allclose([tilted.cx, tilted.cy], expected)


def test_calibration_is_recovered_from_pairs():
    rng = np.random.default_rng(1)
    truth = Calibration(per_eye_distance=1.9, per_eye_mouth=0.7, across=0.01, down=0.12)
    marks, framings = [], []
    for _ in range(50):
        eye, mouth = rng.uniform(20, 60), rng.uniform(15, 50)
        x, y = rng.uniform(100, 300, 2)
        m = np.array([[x, y], [x + eye, y], [x + eye / 2, y + mouth / 2], [x + 5, y + mouth], [x + eye - 5, y + mouth]])
        marks.append(m)
        framings.append(landmark_framing(m, level=False, cal=truth))
    assert fit_calibration(framings, marks) == truth
