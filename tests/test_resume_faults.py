"""--resume after what a crash leaves (issue 17, class 7): a half-written metrics line, an
empty latest state (the older one kept beside it is used), and a second run started on
the same folder (it stops with one line instead of interleaving)."""

import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from img2caricature import checkpoint
from img2caricature.cli import main
from img2caricature.config import load_config
from img2caricature.train.encoder import EncoderTrainConfig, train_encoder
from img2caricature.train.run import StopEarly
from tests.conftest import TINY_ENCODER

ROOT = Path(__file__).resolve().parents[1]


def stopped_at_4(faces: Path, out: Path):
    cfg = load_config(EncoderTrainConfig, None, TINY_ENCODER + ["steps=6"])
    train_encoder(faces, out, cfg, show_progress=False, stop=StopEarly(steps=4))
    assert sorted(p.name for p in out.glob("state-*.pt")) == ["state-00000002.pt", "state-00000004.pt"]
    return cfg


def same_weights(a: Path, b: Path) -> bool:
    wa, wb = checkpoint.load(a)["modules"]["encoder"], checkpoint.load(b)["modules"]["encoder"]
    return all(torch.equal(wa[k], wb[k]) for k in wa)


def test_a_half_written_metrics_line_is_dropped_on_resume(tiny_run, tmp_path):
    out = tmp_path / "run"
    cfg = stopped_at_4(tiny_run["faces"], out)
    with open(out / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 5, "time": 17000')  # killed mid-write
    train_encoder(tiny_run["faces"], out, cfg, resume=True, show_progress=False)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if "train/loss" in r]
    assert steps == sorted(set(steps)) and steps[-1] == 6


def test_an_empty_latest_state_falls_back_to_the_one_before(tiny_run, tmp_path, capsys):
    out, straight = tmp_path / "run", tmp_path / "straight"
    cfg = stopped_at_4(tiny_run["faces"], out)
    (out / "state-00000004.pt").write_bytes(b"")  # a crash left it empty
    train_encoder(tiny_run["faces"], out, cfg, resume=True, show_progress=False)
    assert "resuming from the state before it" in capsys.readouterr().err
    assert (out / "state-00000004.pt.broken").stat().st_size == 0
    train_encoder(tiny_run["faces"], straight, cfg, show_progress=False)
    assert same_weights(out / "state-00000006.pt", straight / "state-00000006.pt")  # as if never stopped


def test_a_second_run_on_the_same_folder_stops_with_one_line(tiny_run, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(  # another process training in `out` (it holds the folder's lock)
        [sys.executable, "-c", "import sys, time; from img2caricature.train.runlock import lock_run_dir; "
         "lock_run_dir(sys.argv[1]); print('locked', flush=True); time.sleep(600)", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        args = ["pretrain-encoder", "--faces", str(tiny_run["faces"]), "--out", str(out), "--steps", "2"]
        code = main(args + sum([["--set", s] for s in TINY_ENCODER], []))
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and f"{out.resolve()} is in use by another run (pid {holder.pid})" in err[0]
        assert not list(out.glob("state-*")) and not (out / "config.json").exists()
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    assert main(args + sum([["--set", s] for s in TINY_ENCODER], [])) == 0  # the lock went with its process
