"""Realism at 128 px with enough real emoji: what `img2car evaluate`'s two-sample test and
KID compare by default."""

import json

import numpy as np
import torch
import torch.nn.functional as F

from img2caricature import dataset
from img2caricature.batches import map_batches
from img2caricature.cli import main
from img2caricature.evaluate import realism
from img2caricature.evaluate.realism_set import generated_at, per_side_note, real_at, real_records
from img2caricature.nets.encoder import load_encoder
from img2caricature.translate import load_translator
from tests.test_evaluate_cli import TINY_EVAL, models  # noqa: F401  (a fixture)


def test_real_emoji_are_the_heldout_ones_then_a_seeded_fill_of_the_others():
    held = np.array([3, 7, 11])
    s = real_records(held, 50, 20, fill=True, seed=0)
    assert list(s.records[:3]) == [3, 7, 11] and len(s.records) == 20 and len(set(s.records)) == 20
    assert s.n_heldout == 3 and s.n_trained_on == 17 and not set(s.records[3:]) & set(held)
    assert list(real_records(held, 50, 20, fill=True, seed=0).records) == list(s.records)
    assert list(real_records(held, 50, 20, fill=True, seed=1).records) != list(s.records)
    assert list(real_records(held, 50, 20, fill=False, seed=0).records) == [3, 7, 11]
    assert len(real_records(held, 50, 2, fill=True, seed=0).records) == 3      # held-out ones are never dropped
    assert len(real_records(held, 12, 20, fill=True, seed=0).records) == 12    # no more than the file has


def test_generated_emoji_are_enlarged_smoothly_and_real_ones_area_downscaled():
    ramp = torch.linspace(-0.9, 0.9, 64).expand(1, 3, 64, 64).contiguous()
    big = generated_at(ramp, 128)
    assert big.shape == (1, 3, 128, 128) and big.abs().max() <= 1
    # a smooth filter keeps a ramp a ramp: no 2x2 blocks (nearest would step every other pixel)
    steps = big[0, 0, 0, 8:-8].diff()
    assert steps.min() > 0.5 * steps.max() > 0
    assert generated_at(big, 64).shape[-1] == 64 and torch.equal(generated_at(ramp, 64), ramp)
    u8 = torch.randint(0, 256, (2, 3, 152, 152), dtype=torch.uint8)
    assert torch.allclose(real_at(u8, 128), F.interpolate(dataset.to_float(u8), size=128, mode="area"), atol=1 / 127)


def test_a_warning_says_when_the_test_half_is_small():
    assert per_side_note(459, 459, 128) is None
    note = per_side_note(459, 64, 128)
    assert "only 32 emoji a side" in note and "+-6 points" in note


def test_evaluate_compares_emoji_at_128_px_by_default(tiny_run, models, tmp_path, monkeypatch):  # noqa: F811
    seen, features = [], []
    original, original_kid = realism.c2st, realism.kid
    monkeypatch.setattr(realism, "c2st", lambda gen, real, cfg, device=None: (
        seen.append((gen.clone(), real.clone(), cfg.size)), original(gen, real, cfg, device))[1])
    monkeypatch.setattr(realism, "kid", lambda gen, real, *a: (features.append((gen, real)), original_kid(gen, real, *a))[1])
    out = tmp_path / "r"
    assert main(["evaluate", "--model", str(models["dtn"]), "--faces", str(tiny_run["faces"]),
                 "--emoji", str(tiny_run["emoji"]), "--out", str(out), "--judge-encoder", str(tiny_run["encoder"])]
                + sum([["--set", s] for s in TINY_EVAL], [])) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    data, m = metrics["data"], metrics["models"]["dtn"]
    (gen, real, classifier_size), = seen
    assert m["output_size"] == 64 and data["realism"]["size"] == 128 and classifier_size == 128
    # generated: g's 64-px emoji of the held-out photos, enlarged bicubically
    photos = dataset.to_float(dataset.load_images(tiny_run["faces"], "faces", np.array(data["face_records"])))
    expected = generated_at(map_batches(load_translator(models["dtn"]).eval(), photos), 128)
    assert torch.allclose(gen, expected, atol=1e-5)
    judge = load_encoder(tiny_run["encoder"]).eval()   # KID: the judge's features of the same 128-px images
    (gen_features, real_features), = features
    assert torch.allclose(gen_features, map_batches(judge.encode, expected), atol=1e-4)
    assert torch.allclose(real_features, map_batches(judge.encode, real), atol=1e-4)
    # real: every held-out emoji, then all the others too (the tiny file has fewer than 2 x 128)
    n_emoji = dataset.info(tiny_run["emoji"]).count
    assert data["realism"]["records"][:len(data["emoji_records"])] == data["emoji_records"]
    assert data["realism"]["n_real"] == n_emoji == len(real) and data["realism"]["n_trained_on"] > 0
    assert torch.equal(real, real_at(dataset.load_images(tiny_run["emoji"], "emoji",
                                                         np.array(data["realism"]["records"])), 128))
    assert any("the two-sample test tests only" in n for n in metrics["notes"])
    assert "C2ST accuracy at 128 px" in (out / "metrics.md").read_text()

    seen.clear()   # --set realism_size / realism_fill change it
    assert main(["evaluate", "--model", str(models["dtn"]), "--faces", str(tiny_run["faces"]),
                 "--emoji", str(tiny_run["emoji"]), "--out", str(out), "--set", "realism_size=32",
                 "--set", "realism_fill=false"] + sum([["--set", s] for s in TINY_EVAL], [])) == 0
    (gen, real, classifier_size), = seen
    assert gen.shape[-1] == real.shape[-1] == classifier_size == 32
    assert len(real) == len(json.loads((out / "metrics.json").read_text())["data"]["emoji_records"])
