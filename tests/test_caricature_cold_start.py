"""What keeps `img2car caricature` on one photo quick to start (figures: docs/DETECTION.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

import img2caricature.caricature
from img2caricature.cli import main
from tests.preprocess_photos import ASTRONAUT, astronaut, save

ROOT = Path(__file__).resolve().parents[1]


def test_caricature_leaves_torchvision_and_dynamo_unloaded(tmp_path):
    """facenet-pytorch imports torchvision, which imports torch._dynamo: 1.7 s of CPU."""
    code = ("import sys; from img2caricature.cli import main; "
            f"rc = main(['caricature', {str(ASTRONAUT)!r}, '-o', {str(tmp_path / 'a.png')!r}]); "
            "print(rc, sorted({m for m in sys.modules if m.split('.')[0] in ('torchvision', 'facenet_pytorch') "
            "or m.startswith('torch._dynamo')}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "0 []", out.stdout + out.stderr
    assert (tmp_path / "a.png").is_file()


def test_one_photo_runs_on_one_thread(tmp_path, monkeypatch):
    """One photo: f and g on one thread (a second only waits); several: torch's own count;
    the count is put back afterwards."""
    seen = []
    draw = img2caricature.caricature.caricature_photo

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return draw(*args, **kwargs)

    monkeypatch.setattr(img2caricature.caricature, "caricature_photo", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        second = save(astronaut(256), tmp_path / "in" / "b.jpg")
        assert main(["caricature", str(ASTRONAUT), "-o", str(tmp_path / "one.png"), "--device", "cpu"]) == 0
        assert seen == [1] and torch.get_num_threads() == 2
        assert main(["caricature", str(ASTRONAUT), str(second), "-o", str(tmp_path / "two"), "--device", "cpu"]) == 0
        assert seen == [1, 2, 2] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
