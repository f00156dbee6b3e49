"""One odd input is that input's failure (issue 17, class 2): it is reported, every other
input is still done, and the command exits 1; nothing half-made is left behind."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from img2caricature import dataset
from img2caricature.cli import main
from tests import tiny_models
from tests.preprocess_photos import astronaut, save


def thin_png(path: Path) -> Path:
    """20000x8: a readable image that sends the face detector's resize to 0 pixels."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((8, 20000, 3), 100, np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return tiny_models.save(tiny_models.tiny_dtn_snapshot(), tmp_path_factory.mktemp("model") / "dtn.pt")


def test_caricature_goes_on_after_an_odd_photo(tmp_path, capsys, model, monkeypatch):
    """An unexpected error inside one photo's face search (the detectors now cope with a 20000x8
    photo, so the error is injected for it) is that photo's failure; the others are done."""
    import preprocessing.finder as finder

    search = finder.find_photo_faces

    def fragile(rgb, options):
        if rgb.shape[1] > 10000:
            raise RuntimeError("inv_scale_x > 0 in function 'resize'")
        return search(rgb, options)

    monkeypatch.setattr(finder, "find_photo_faces", fragile)
    face = astronaut()
    save(face, tmp_path / "in" / "a.jpg")
    thin = thin_png(tmp_path / "in" / "b_thin.png")
    save(face[:, ::-1], tmp_path / "in" / "c.jpg")
    code = main(["caricature", str(tmp_path / "in"), "--model", str(model), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.emoji.png", "c.emoji.png"]
    assert len(err) == 1 and err[0].startswith(f"{thin}: failed (") and "Traceback" not in err[0]


def test_preprocess_goes_on_after_an_odd_photo_and_says_which(tmp_path, capsys):
    face = astronaut()
    for person in ("p1", "p2"):
        save(face, tmp_path / "in" / person / "front.jpg")
        save(face[:, ::-1], tmp_path / "in" / person / "mirror.jpg")
    thin_png(tmp_path / "in" / "p1" / "thin.png")
    out = tmp_path / "faces.h5"
    code = main(["preprocess", str(tmp_path / "in"), "--out", str(out), "--workers", "2", "--no-progress"])
    printed = capsys.readouterr().out
    # the 20000x8 photo is that photo's outcome (a failure, or today a photo with no face): the batch goes on
    assert code in (0, 1) and "Traceback" not in printed
    assert dataset.info(out).count == 4 and dataset.info(out).names == ["p1", "p2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faces.h5", "in"]  # no .partial


def test_preprocess_that_stops_leaves_no_partial_file(tmp_path):
    from preprocessing.layouts import walk
    from preprocessing.pipeline import preprocess

    save(astronaut(), tmp_path / "in" / "p1" / "a.jpg")

    def observe(outcome, kept):
        raise RuntimeError("stopped half way")

    with pytest.raises(RuntimeError):
        preprocess(walk(tmp_path / "in"), tmp_path / "faces.h5", observe=observe, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_import_emoji_goes_on_after_an_unexpected_error(tmp_path, capsys, monkeypatch):
    import crawlers.import_folder as import_folder

    folder = tmp_path / "emoji"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(np.full((64, 64, 3), 40 * i, np.uint8)).save(folder / f"e{i}.png")
    real = import_folder.to_record

    def flaky(path, *args):
        if Path(path).name == "e1.png":
            raise RuntimeError("a decoder bug")
        return real(path, *args)

    monkeypatch.setattr(import_folder, "to_record", flaky)
    out = tmp_path / "e.h5"
    assert main(["import-emoji", str(folder), "--out", str(out), "--no-progress"]) == 1
    summary = capsys.readouterr().out
    assert "failed:     1 (error (RuntimeError: a decoder bug): 1)" in summary
    assert dataset.info(out).count == 3


def test_crawl_goes_on_after_an_unexpected_error(tmp_path, capsys, monkeypatch):
    import crawlers.crawl as crawl
    from crawlers.serving import serve_in_thread
    from tests.crawl_fakes import FakeApi, write_source

    real, calls = crawl.to_record, []

    def flaky(data, *args):
        calls.append(1)
        if len(calls) % 4 == 0:
            raise RuntimeError("a decoder bug")
        return real(data, *args)

    monkeypatch.setattr(crawl, "to_record", flaky)
    with serve_in_thread(FakeApi().app()) as url:
        source = write_source(tmp_path / "fake.toml", url)
        code = main(["crawl", "--source", str(source), "--count", "12", "--out", str(tmp_path / "e.h5"),
                     "--concurrency", "2", "--no-progress"])
    summary = capsys.readouterr().out
    assert code == 0 and dataset.info(tmp_path / "e.h5").count == 12
    assert "error (RuntimeError: a decoder bug)" in summary
