import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from img2caricature import checkpoint
from img2caricature.cli import main
from img2caricature.config import load_config
from img2caricature.nets.encoder import Encoder, EncoderConfig, load_encoder
from img2caricature.train.encoder import EncoderTrainConfig, train_encoder, with_margin
from img2caricature.train.run import StopEarly
from tests.conftest import TINY_ENCODER


def test_interface_shapes():
    enc = Encoder(EncoderConfig(num_classes=7, widths=(8, 16), embedding_dim=12, input_size=32))
    x = torch.rand(3, 3, 152, 152) * 2 - 1
    assert enc.prepare(x).shape == (3, 3, 32, 32)
    assert enc.encode(x).shape == (3, 12)
    assert enc(enc.prepare(x)).shape == (3, 7)


def test_cosine_head_scores_by_angle_and_the_margin_hits_only_the_true_class():
    enc = Encoder(EncoderConfig(num_classes=5, widths=(8, 16), embedding_dim=12, input_size=32,
                                classifier="cosine", cosine_scale=10.0))
    e = torch.randn(3, 12)
    logits = enc.classifier(e)
    assert torch.allclose(logits, enc.classifier(7 * e), atol=1e-5)  # the embedding's length does not matter
    assert logits.abs().max() <= 10.0 + 1e-4
    cfg = EncoderTrainConfig(classifier="cosine", cosine_scale=10.0, cosine_margin=0.2)
    y = torch.tensor([0, 3, 4])
    diff = logits - with_margin(logits, y, cfg)
    assert torch.allclose(diff, torch.nn.functional.one_hot(y, 5) * 2.0)
    assert torch.equal(with_margin(logits, y, EncoderTrainConfig()), logits)  # linear head: no margin


LEARNS = ["steps=60", "eval_every=60", "log_every=20", "lr=0.05", "warmup_steps=5", "val_per_identity=2"]


@pytest.mark.parametrize("head", ["linear", "cosine"])
def test_the_compact_encoder_learns_above_chance_on_tiny_data(tmp_path, head):
    """6 people (2 held out), 8 photos each, 2 of each kept back: validation top-1 far above
    chance (1/4), and the held-out people told apart better than by a coin."""
    from tests.conftest import make_faces

    faces = make_faces(tmp_path / "faces.h5", n_ids=6, per_id=8)
    cfg = load_config(EncoderTrainConfig, None, TINY_ENCODER + LEARNS + [f"classifier='{head}'", "cosine_margin=0.1"])
    figures = train_encoder(faces, tmp_path / "enc", cfg, show_progress=False)
    assert figures["val/top1"] >= 0.75, figures
    assert figures["unseen/roc_auc"] > 0.6, figures
    enc = load_encoder(tmp_path / "enc" / "encoder.pt")
    assert enc.cfg.classifier == head


def test_cosine_encoder_trains_and_loads(tiny_run, tmp_path):
    cfg = load_config(EncoderTrainConfig, None, TINY_ENCODER + ["steps=2", "classifier='cosine'", "cosine_margin=0.2"])
    train_encoder(tiny_run["faces"], tmp_path / "cos", cfg, show_progress=False)
    enc = load_encoder(tmp_path / "cos" / "encoder.pt")
    assert enc.cfg.classifier == "cosine" and enc.encode(torch.rand(2, 3, 152, 152) * 2 - 1).shape == (2, 16)


def test_loaded_encoder_is_frozen_and_deterministic(tiny_run):
    enc = load_encoder(tiny_run["encoder"])
    assert not enc.training and all(not p.requires_grad for p in enc.parameters())
    x = torch.rand(4, 3, 152, 152) * 2 - 1
    a, b = enc.encode(x), enc.encode(x)
    assert torch.equal(a, b) and a.shape == (4, 16)
    snap = checkpoint.load(tiny_run["encoder"])
    assert len(snap["heldout_identities"]) == 2 and len(snap["train_identities"]) == 3


def test_wrong_kind_checkpoint(tiny_run, tmp_path):
    checkpoint.save_atomic({"kind": "dtn"}, tmp_path / "x.pt")
    from img2caricature.errors import UserError

    with pytest.raises(UserError, match="not an encoder"):
        load_encoder(tmp_path / "x.pt")


def _records(path):
    return [json.loads(l) for l in path.read_text().splitlines()]


def test_resume_continues_with_the_same_state(tiny_run, tmp_path):
    cfg = load_config(EncoderTrainConfig, None, TINY_ENCODER + ["steps=4"])
    train_encoder(tiny_run["faces"], tmp_path / "straight", cfg, show_progress=False)
    train_encoder(tiny_run["faces"], tmp_path / "resumed", cfg, show_progress=False, stop=StopEarly(steps=2))
    state = checkpoint.load(tmp_path / "resumed" / "state-00000002.pt")
    assert state["step"] == 2 and state["optimizers"]["optimizer"]["state"]  # momentum buffers saved
    train_encoder(tiny_run["faces"], tmp_path / "resumed", cfg, resume=True, show_progress=False)
    a = checkpoint.load(tmp_path / "straight" / "state-00000004.pt")
    b = checkpoint.load(tmp_path / "resumed" / "state-00000004.pt")
    for k, v in a["modules"]["encoder"].items():
        assert torch.allclose(v.float(), b["modules"]["encoder"][k].float(), atol=1e-6), k
    losses = lambda p: [r["train/loss"] for r in _records(p / "metrics.jsonl") if "train/loss" in r]  # noqa: E731
    assert losses(tmp_path / "straight") == pytest.approx(losses(tmp_path / "resumed"), rel=1e-5)


def test_refuses_to_overwrite_a_run_without_resume(tiny_run, tmp_path):
    shutil.copytree(tiny_run["encoder"].parent, tmp_path / "enc")
    code = main(["pretrain-encoder", "--faces", str(tiny_run["faces"]), "--out", str(tmp_path / "enc"),
                 "--steps", "2"] + sum([["--set", s] for s in TINY_ENCODER], []))
    assert code == 2


def test_emoji_dataset_is_a_one_line_error(tiny_run, tmp_path, capsys):
    code = main(["pretrain-encoder", "--faces", str(tiny_run["emoji"]), "--out", str(tmp_path / "e"), "--steps", "1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "holds emoji, but faces were expected" in err and "\n" not in err


def test_torchrun_two_processes_on_cpu(tiny_run, tmp_path):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    args = [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "img2caricature", "pretrain-encoder",
            "--faces", str(tiny_run["faces"]), "--out", str(tmp_path / "ddp"), "--steps", "2", "--device", "cpu"]
    args += sum([["--set", s] for s in TINY_ENCODER], [])
    out = subprocess.run(args, capture_output=True, text=True, timeout=240, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "ddp" / "encoder.pt").exists()
    assert checkpoint.load(tmp_path / "ddp" / "state-00000002.pt")["step"] == 2
