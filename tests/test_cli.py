import subprocess
import sys

import pytest

from img2caricature.cli import COMMANDS, main
from tests.conftest import make_faces

PIPELINE = ["crawl", "avatar-server", "import-emoji", "preprocess", "pretrain-encoder",
            "train-dtn", "train-cyclegan", "evaluate", "caricature"]


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for name in PIPELINE + ["info"]:
        assert name in out


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_has_help(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([name, "--help"])
    assert exit_.value.code == 0
    assert "usage: img2car " + name in capsys.readouterr().out


def test_user_error_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing.h5")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"img2car info: error: dataset not found: {tmp_path / 'missing.h5'}"
    assert "Traceback" not in err


def test_debug_shows_the_traceback(tmp_path):
    from img2caricature.errors import UserError

    with pytest.raises(UserError):
        main(["--debug", "info", str(tmp_path / "missing.h5")])


def test_info_prints_the_dataset(tmp_path, capsys):
    path = make_faces(tmp_path / "f.h5", n_ids=2, per_id=2)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "kind:      faces" in out and "records:   4" in out and "identities: 2" in out


def test_module_entry_point_and_console_script():
    out = subprocess.run([sys.executable, "-m", "img2caricature", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and "img2caricature" in out.stdout


def test_a_reader_that_went_away_stops_it_quietly(tmp_path):
    """`img2car info F | head`: the pipe's reader has gone before the output is written (closed
    here before the command starts, so the write always fails)."""
    import os

    faces = make_faces(tmp_path / "f.h5", n_ids=2, per_id=2)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-m", "img2caricature", "info", str(faces)], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert done.returncode == 141, done.stderr
    assert "BrokenPipe" not in done.stderr and "Traceback" not in done.stderr
