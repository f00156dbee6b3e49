"""Nothing the user gave is overwritten (issue 17, class 5): inputs are never outputs, two
photos never share an output, a rerun doesn't eat its own outputs, and a dataset of
another kind is not replaced."""

from pathlib import Path

import pytest

from img2caricature import dataset
from img2caricature.cli import main
from tests import tiny_models
from tests.conftest import make_emoji
from tests.preprocess_photos import astronaut, save


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return tiny_models.save(tiny_models.tiny_dtn_snapshot(), tmp_path_factory.mktemp("model") / "dtn.pt")


def caricature(model: Path, *args) -> int:
    return main(["caricature", *map(str, args), "--model", str(model), "--no-detect"])


def test_an_output_naming_its_input_is_refused(tmp_path, capsys, model):
    photo = save(astronaut(), tmp_path / "me.png")
    before = photo.read_bytes()
    assert caricature(model, photo, "-o", photo) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is an input photo" in err[0]
    assert photo.read_bytes() == before


def test_colliding_names_are_made_unique_and_inputs_kept(tmp_path, capsys, model):
    face = astronaut()
    save(face, tmp_path / "x.jpg")
    save(face[:, ::-1], tmp_path / "x.png")
    named_like_an_output = save(face[::-1], tmp_path / "y.emoji.png")  # a photo, named explicitly
    save(face, tmp_path / "y.jpg")
    kept = named_like_an_output.read_bytes()
    code = caricature(model, tmp_path / "x.jpg", tmp_path / "x.png", named_like_an_output, tmp_path / "y.jpg",
                      "--side-by-side")  # the photo beside its emoji: tells the outputs apart
    written = capsys.readouterr().out.split()
    assert code == 0
    assert len(written) == len(set(written)) == 4
    assert named_like_an_output.read_bytes() == kept
    assert {Path(w).name for w in written} == {"x.emoji.png", "x.png.emoji.png", "y.emoji.emoji.png", "y.jpg.emoji.png"}
    assert (tmp_path / "x.emoji.png").read_bytes() != (tmp_path / "x.png.emoji.png").read_bytes()


def test_a_second_run_on_a_folder_skips_its_own_outputs(tmp_path, capsys, model):
    save(astronaut(), tmp_path / "in" / "a.jpg")
    save(astronaut()[:, ::-1], tmp_path / "in" / "b.jpg")
    assert caricature(model, tmp_path / "in") == 0
    first = capsys.readouterr().out.split()
    assert caricature(model, tmp_path / "in") == 0
    assert capsys.readouterr().out.split() == first  # the same two files, rewritten
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["a.emoji.png", "a.jpg", "b.emoji.png", "b.jpg"]


def test_preprocess_does_not_replace_what_is_not_a_faces_dataset(tmp_path, capsys):
    save(astronaut(), tmp_path / "in" / "p1" / "a.jpg")
    save(astronaut()[:, ::-1], tmp_path / "in" / "p1" / "b.jpg")
    emoji = make_emoji(tmp_path / "emoji.h5", n=5)
    photo = save(astronaut(), tmp_path / "photo.jpg")
    for target, held in [(emoji, "already holds emoji"), (photo, "not a dataset")]:
        before = target.read_bytes()
        assert main(["preprocess", str(tmp_path / "in"), "--out", str(target), "--no-progress"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and held in err[0], err
        assert target.read_bytes() == before
    assert dataset.info(emoji).count == 5
    faces = tmp_path / "faces.h5"
    for _ in range(2):  # a faces dataset is rebuilt in place: that is what --out is for
        assert main(["preprocess", str(tmp_path / "in"), "--out", str(faces), "--no-progress"]) == 0
    assert dataset.info(faces).count == 2
