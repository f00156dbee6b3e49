"""preprocessing/mtcnn.py: facenet-pytorch's MTCNN, bit for bit, without its torchvision import."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from preprocessing.mtcnn import MTCNN, nms
from tests.preprocess_photos import astronaut, turned, two_faces


@pytest.fixture(scope="module")
def both():
    pytest.importorskip("facenet_pytorch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from facenet_pytorch import MTCNN as FacenetMTCNN

        return FacenetMTCNN(keep_all=True, device="cpu"), MTCNN()


def _photos() -> dict[str, np.ndarray]:
    face = astronaut(320)
    return {"astronaut": face, "large": astronaut(900), "turned 30": turned(face, 30),
            "two faces": two_faces(face), "blank": np.full((200, 300, 3), 128, np.uint8)}


@pytest.mark.parametrize("name", list(_photos()))
def test_same_faces_as_facenet_pytorch(both, name):
    theirs, ours = both
    rgb = _photos()[name]
    for min_face in (12.0, 40.0):  # 12: every pyramid scale, hundreds of P-net windows
        theirs.min_face_size = min_face
        with torch.no_grad():
            boxes, probs, points = theirs.detect(rgb, landmarks=True)
        found = ours.detect(rgb, min_face)
        if boxes is None:
            assert name == "blank" and found.probs.shape == (0,) and found.landmarks.shape == (0, 5, 2)
            continue
        assert len(boxes) >= 1 and name != "blank"
        for expected, got in ((boxes, found.boxes), (probs, found.probs), (points, found.landmarks)):
            expected = np.array(expected.tolist(), np.float64)
            assert expected.shape == got.shape
            assert np.array_equal(expected, got)  # exact: the same operations on the same values


def test_nms_is_torchvisions(both):
    from torchvision.ops import batched_nms

    g = torch.Generator().manual_seed(0)
    for trial in range(60):
        k = [3, 40, 400, 1200][trial % 4]  # 1,200 boxes: torchvision's other code path
        xy = torch.randint(0, 40, (k, 2), generator=g).float()
        boxes = torch.cat([xy, xy + torch.randint(0, 20, (k, 2), generator=g).float()], 1)  # empty boxes too
        if trial % 3 == 0:
            boxes = boxes + torch.rand(k, 4, generator=g)
        scores = torch.rand(k, generator=g)
        if trial % 2 == 0:
            scores = (scores * 4).round() / 4  # many equal scores
        for threshold in (0.5, 0.7):
            expected = batched_nms(boxes, scores, torch.zeros(k, dtype=torch.int64), threshold)
            assert torch.equal(nms(boxes, scores, threshold), expected), (trial, threshold)


def test_nms_compares_in_double_as_torchvision():
    from torchvision.ops import batched_nms

    # IoU 30/100 is float32(0.3), just over the double 0.3: torchvision drops the second box
    boxes, scores = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 3]]), torch.tensor([0.9, 0.8])
    expected = batched_nms(boxes, scores, torch.zeros(2, dtype=torch.int64), 0.3)
    assert expected.tolist() == [0] and torch.equal(nms(boxes, scores, 0.3), expected)


def test_equal_areas_come_out_in_facenet_pytorchs_order(both, monkeypatch):
    """Given the same cascade output, the same faces in the same order (largest first, ties as
    facenet-pytorch breaks them)."""
    import facenet_pytorch.models.mtcnn as facenet_mtcnn

    import preprocessing.mtcnn

    theirs, ours = both
    rng = np.random.default_rng(0)
    corner = rng.integers(0, 200, (40, 2)).astype(np.float32)
    side = rng.choice(np.array([20, 20.5, 31], np.float32), (40, 1))  # many equal areas
    boxes = np.concatenate([corner, corner + side, rng.random((40, 1), np.float32)], axis=1)
    points = rng.random((40, 5, 2), np.float32) * 200
    monkeypatch.setattr(facenet_mtcnn, "detect_face", lambda *args: (np.array([boxes.copy()], dtype=object),
                                                                     np.array([points.copy()], dtype=object)))
    monkeypatch.setattr(preprocessing.mtcnn, "_cascade", lambda *args: (boxes.copy(), points.copy()))
    rgb = np.zeros((240, 240, 3), np.uint8)
    expected, found = theirs.detect(rgb, landmarks=True), ours.detect(rgb)
    for e, got in zip(expected, (found.boxes, found.probs, found.landmarks)):
        assert np.array_equal(np.array(e.tolist(), np.float64), got)
