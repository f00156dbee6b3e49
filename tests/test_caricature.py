"""`img2car caricature` on good and bad inputs, with a tiny DTN trained by the tests."""

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from img2caricature.cli import main
from img2caricature.config import load_config
from img2caricature.train.dtn import DTNConfig, train_dtn
from tests.conftest import TINY_DTN
from tests.preprocess_photos import ASTRONAUT, astronaut, save, save_corrupt, save_not_image, save_rotated_exif


@pytest.fixture(scope="module")
def model(tiny_run) -> Path:
    cfg = load_config(DTNConfig, None, TINY_DTN + ["steps=2"])
    out = tiny_run["root"] / "dtn"
    if not (out / "dtn.pt").exists():
        train_dtn(tiny_run["faces"], tiny_run["emoji"], tiny_run["encoder"], out, cfg, show_progress=False)
    return out / "dtn.pt"


def png_with_size(path: Path, width: int, height: int) -> Path:
    """A tiny file whose header claims a huge image: a decompression bomb."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, data: struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))  # noqa: E731
    idat = zlib.compress(b"\x00" * 1000)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def run(args, capsys):
    code = main(["caricature", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_photo_in_emoji_out(model, tmp_path, capsys):
    photo = save(astronaut(320), tmp_path / "face.jpg")
    code, out, err = run([photo, "--model", model], capsys)
    assert code == 0, err
    emoji = tmp_path / "face.emoji.png"
    assert out.strip() == str(emoji)
    with Image.open(emoji) as img:
        assert img.size == (256, 256) and img.mode == "RGB"
    code, _, _ = run([photo, "--model", model, "--side-by-side", "--size", "128", "-o", tmp_path / "x.png"], capsys)
    with Image.open(tmp_path / "x.png") as img:
        assert code == 0 and img.size == (256, 128)


def test_all_faces_and_no_detect(model, tmp_path, capsys):
    from tests.preprocess_photos import two_faces

    photo = save(two_faces(astronaut(320)), tmp_path / "two.jpg")
    code, out, _ = run([photo, "--model", model, "--all-faces", "-o", tmp_path / "out"], capsys)
    assert code == 0 and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["two.emoji-1.png", "two.emoji.png"]
    blank = save(np.full((200, 300, 3), 200, np.uint8), tmp_path / "blank.jpg")
    assert run([blank, "--model", model, "--no-detect"], capsys)[0] == 0
    assert (tmp_path / "blank.emoji.png").exists()


def make_bad_inputs(d: Path) -> dict[str, Path]:
    d.mkdir()
    (d / "empty_folder").mkdir()
    rgb = astronaut(320)
    Image.fromarray(rgb).convert("L").save(d / "gray.png")
    Image.fromarray(rgb).convert("RGBA").save(d / "rgba.png")
    Image.fromarray(rgb).convert("CMYK").save(d / "cmyk.jpg")
    Image.new("RGB", (1, 1)).save(d / "one_pixel.png")
    save_not_image(d / "notes.jpg")
    return {
        "missing": d / "missing.jpg",
        "empty_folder": d / "empty_folder",
        "not_image": d / "notes.jpg",
        "truncated": save_corrupt(d / "truncated.jpg"),
        "one_pixel": d / "one_pixel.png",
        "bomb": png_with_size(d / "bomb.png", 30000, 30000),
        "no_face": save(np.full((240, 240, 3), 127, np.uint8), d / "wall.jpg"),
        # good ones, in awkward encodings
        "gray": d / "gray.png", "rgba": d / "rgba.png", "cmyk": d / "cmyk.jpg",
        "exif_rotated": save_rotated_exif(rgb, d / "rotated.jpg"),
    }


EXPECTED_ERRORS = {"missing": "no such file", "empty_folder": "no images in this folder", "not_image": "not an image",
                   "truncated": "corrupt", "one_pixel": "too small", "bomb": "too large", "no_face": "no face"}


def test_bad_inputs_each_get_one_line_and_the_rest_is_done(model, tmp_path, capsys):
    inputs = make_bad_inputs(tmp_path / "in")
    code, out, err = run([*inputs.values(), "--model", model, "-o", tmp_path / "out"], capsys)
    assert code == 1
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    for name, reason in EXPECTED_ERRORS.items():
        matching = [l for l in lines if l.startswith(str(inputs[name]) + ":")]
        assert len(matching) == 1 and reason in matching[0], (name, lines)
    assert len(lines) == len(EXPECTED_ERRORS)
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["cmyk.emoji.png", "gray.emoji.png", "rgba.emoji.png", "rotated.emoji.png"]


@pytest.mark.parametrize("name", sorted(EXPECTED_ERRORS))
def test_each_bad_input_alone_is_exit_1_without_traceback(model, tmp_path, capsys, name):
    inputs = make_bad_inputs(tmp_path / "in")
    code, out, err = run([inputs[name], "--model", model], capsys)
    assert code == 1 and err.count("\n") == 1 and EXPECTED_ERRORS[name] in err


def test_model_problems_are_user_errors(tmp_path, capsys):
    code, _, err = run([ASTRONAUT, "--model", tmp_path / "nope.pt"], capsys)
    assert code == 2 and "checkpoint not found" in err
    (tmp_path / "junk.pt").write_bytes(b"junk")
    code, _, err = run([ASTRONAUT, "--model", tmp_path / "junk.pt"], capsys)
    assert code == 2 and "not a readable checkpoint" in err
