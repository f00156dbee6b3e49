"""The Python API: the README's example as written, every input kind, and the CLI's errors."""

import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import img2caricature
from img2caricature.cli import main
from tests.preprocess_photos import ASTRONAUT, astronaut, save, save_corrupt, save_not_image, save_rotated_exif, two_faces
from tests.shipped_model import shipped_model

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def model():
    return shipped_model()


def readme_python_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    example = [b for b in blocks if "img2caricature.load(" in b]
    assert example, "README has no ```python block using img2caricature.load"
    return example[0]


def test_readme_example_runs_as_written(tmp_path, monkeypatch):
    code = readme_python_example()
    assert len(code.strip().splitlines()) == 5
    (tmp_path / "examples").mkdir()
    shutil.copy(ASTRONAUT, tmp_path / "examples" / "astronaut.jpg")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    with Image.open(tmp_path / "examples" / "astronaut.emoji.png") as img:
        assert img.size == (256, 256) and img.mode == "RGB"


def test_every_input_kind_gives_the_same_emoji(model):
    rgb = img2caricature.api.to_rgb(ASTRONAUT)
    expected = np.asarray(model(ASTRONAUT))
    assert expected.shape == (256, 256, 3)
    with Image.open(ASTRONAUT) as pil:
        inputs = [str(ASTRONAUT), ASTRONAUT.read_bytes(), pil, rgb, np.ascontiguousarray(rgb[:, :, :1])]
        for photo in inputs[:4]:
            assert np.array_equal(np.asarray(model(photo)), expected), type(photo)
        assert model(inputs[4]).size == (256, 256)  # one channel: read as grey, still a face


def test_a_pil_image_is_turned_upright_by_its_exif_tag(model, tmp_path):
    # stored sideways, where a frontal-face detector finds nothing; upright it holds a face
    path = save_rotated_exif(astronaut(320), tmp_path / "rotated.jpg")
    with Image.open(path) as pil:
        assert pil.width == 320 and len(model.faces(pil)) == 1


def same_picture(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to float rounding: dlib's f sums its convolutions in an order that depends on
    the threads free (1e-7 in f(x), 3e-5 in the emoji), which can move a pixel by a level.
    Another face's emoji, or a mixed-up one, differs by far more."""
    diff = np.abs(a.astype(int) - b.astype(int))
    return a.shape == b.shape and diff.max() <= 1 and (diff > 0).mean() < 0.001


def test_same_pixels_as_the_cli(model, tmp_path, capsys):
    photo = save(two_faces(astronaut(320)), tmp_path / "two.jpg")
    assert main(["caricature", str(photo), "--all-faces", "--device", "cpu", "-o", str(tmp_path / "out")]) == 0
    from_cli = [np.asarray(Image.open(tmp_path / "out" / n)) for n in ("two.emoji.png", "two.emoji-1.png")]
    from_api = model(photo, all_faces=True)
    assert len(from_api) == 2
    assert all(same_picture(np.asarray(a), c) for a, c in zip(from_api, from_cli))


def test_calls_from_several_threads_match_calls_one_by_one(model):
    photos = [two_faces(astronaut(side)) for side in (300, 360, 420)]
    as_arrays = lambda photo: [np.asarray(e) for e in model(photo, all_faces=True)]  # noqa: E731
    one_by_one = [as_arrays(p) for p in photos]
    with ThreadPoolExecutor(3) as pool:
        for _ in range(3):
            for got, want in zip(pool.map(as_arrays, photos * 2), one_by_one * 2):
                assert len(got) == len(want) and all(same_picture(a, b) for a, b in zip(got, want))


def test_faces_sizes_and_options(model):
    photo = two_faces(astronaut(320))
    largest, = model.faces(photo)
    both = model.faces(photo, all_faces=True)
    assert largest.size == (152, 152) and len(both) == 2
    assert isinstance(model(photo), Image.Image)
    assert model(photo, size=64, side_by_side=True).size == (128, 64)
    wall = np.full((200, 300, 3), 200, np.uint8)
    assert model(wall, detect=False).size == (256, 256)  # the whole photo as the face
    assert [e.size for e in model.draw([largest, largest], size=32)] == [(32, 32), (32, 32)]


@pytest.mark.parametrize("make, reason", [
    (lambda d: save_not_image(d / "notes.jpg"), "not an image"),
    (lambda d: b"plain text, not a picture", "not an image"),
    (lambda d: save_corrupt(d / "cut.jpg"), "corrupt"),
    (lambda d: d / "missing.jpg", "missing"),
    (lambda d: np.zeros((4, 4, 3), np.uint8), "too small"),
    (lambda d: np.zeros((64, 64, 3), np.float32), "not an image"),
    (lambda d: np.full((240, 240, 3), 127, np.uint8), "no face"),
])
def test_bad_photos_raise_image_error_with_the_clis_reason(model, tmp_path, make, reason):
    with pytest.raises(img2caricature.ImageError) as err:
        model(make(tmp_path))
    assert err.value.reason == reason
    if reason == "no face":
        assert "detect=False" in err.value.detail  # the hint in the API's terms, not --no-detect


def test_programming_mistakes_and_model_problems(model, tmp_path):
    with pytest.raises(TypeError, match="PIL image"):
        model(42)
    with pytest.raises(ValueError, match="size"):
        model(ASTRONAUT, size=4)
    with pytest.raises(img2caricature.UserError, match="checkpoint not found"):
        img2caricature.load(tmp_path / "nope.pt")
    if not torch.cuda.is_available():
        with pytest.raises(img2caricature.UserError, match="no CUDA device"):
            img2caricature.load(device="cuda")


def test_import_stays_light():
    """`import img2caricature` (and so `img2car --help`) must not pull in torch."""
    code = "import sys, img2caricature; assert 'torch' not in sys.modules; img2caricature.ImageError; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "ok", out.stderr
