"""`img2car avatar` keeps the output rules of `caricature` (issue 17, classes 2 and 5): two
photos never share an avatar, a rerun skips its own outputs, an odd photo is its own failure."""

from pathlib import Path

from img2caricature.cli import main
from tests.preprocess_photos import astronaut, save
from tests.test_avatar import crawl, model  # noqa: F401  (fixtures: the tiny avatar model)


def test_avatar_names_are_unique_and_a_rerun_skips_its_own_outputs(model, tmp_path, capsys):  # noqa: F811
    face = astronaut(160)
    save(face, tmp_path / "x.jpg")
    save(face[:, ::-1], tmp_path / "x.png")
    args = ["avatar", str(tmp_path), "--model", str(model), "--no-detect", "--size", "32"]
    assert main(args) == 0
    first = capsys.readouterr().out.split()
    assert sorted(Path(p).name for p in first) == sorted(
        f"{stem}.avatar.{ext}" for stem in ("x", "x.png") for ext in ("json", "svg", "png"))
    assert main(args) == 0
    assert capsys.readouterr().out.split() == first  # the same files again, no x.avatar.avatar.*


def test_an_avatar_photo_that_raises_is_its_own_failure(model, tmp_path, capsys, monkeypatch):  # noqa: F811
    import img2caricature.commands.avatar as avatar

    face = astronaut(160)
    for name in ("a", "b", "c"):
        save(face, tmp_path / f"{name}.jpg")
    real = avatar.write_avatar

    def flaky(traits, base, size):
        if base.name.startswith("b."):
            raise RuntimeError("a renderer bug")
        return real(traits, base, size)

    monkeypatch.setattr(avatar, "write_avatar", flaky)
    code = main(["avatar", str(tmp_path), "--model", str(model), "--no-detect", "--size", "32"])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.strip().splitlines() == [f"{tmp_path / 'b.jpg'}: failed (RuntimeError: a renderer bug)"]
    assert {Path(p).name for p in captured.out.split()} == {f"{n}.avatar.{e}" for n in "ac" for e in ("json", "svg", "png")}
