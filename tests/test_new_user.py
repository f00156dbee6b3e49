"""A new user's first run, from an empty folder outside the checkout: preprocess a few people,
pretrain f and train the DTN for a few steps, with the packaged default configs."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from img2caricature import checkpoint
from tests.conftest import SHARED_DATA

ROOT = Path(__file__).resolve().parents[1]
PEOPLE = 8


def img2car(*args: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "2"}
    out = subprocess.run([sys.executable, "-m", "img2caricature", *args], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, f"img2car {args[0]}: {out.stderr[-2000:]}"
    return out.stdout + out.stderr


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED_DATA / "celeba-identities").is_dir(), reason="needs ../shared/data")
def test_a_new_user_trains_from_an_empty_folder(tmp_path):
    photos, emoji = tmp_path / "my-photos", tmp_path / "my-emoji"
    for person in sorted((SHARED_DATA / "celeba-identities").iterdir())[:PEOPLE]:
        shutil.copytree(person, photos / person.name)
    emoji.mkdir()
    for image in sorted((SHARED_DATA / "bitmoji-faces").glob("*.jpg"))[:40]:
        shutil.copy(image, emoji)
    work = tmp_path / "project"  # empty, and nowhere near the checkout's configs/
    work.mkdir()
    assert not (work / "configs").exists() and ROOT not in work.parents

    img2car("preprocess", str(photos), "--out", "data/faces.h5", "--no-progress", "--workers", "1", cwd=work)
    img2car("import-emoji", str(emoji), "--out", "data/emoji.h5", "--no-progress", cwd=work)
    log = img2car("pretrain-encoder", "--steps", "3", cwd=work)
    assert "holding out 2 people" in log and (work / "data" / "split.json").exists()
    log = img2car("train-dtn", "--steps", "3", cwd=work)
    assert "holding out 2 people" in log and "holding out 8" in log
    snap = checkpoint.load(work / "runs" / "dtn" / "dtn.pt")
    assert snap["step"] == 3 and snap["split"]["faces"] == checkpoint.load(work / "runs" / "encoder" / "encoder.pt")[
        "split"]["faces"]
    assert (work / "runs" / "dtn" / "curves.png").exists()
