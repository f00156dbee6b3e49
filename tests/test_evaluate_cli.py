"""`img2car evaluate` end to end: a tiny DTN and a tiny CycleGAN, judged on people neither saw."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from img2caricature import checkpoint, dataset
from img2caricature.cli import main
from img2caricature.config import load_config
from img2caricature.train.cyclegan import CycleGANConfig, train_cyclegan
from img2caricature.train.dtn import DTNConfig, train_dtn
from tests.conftest import TINY_CYCLEGAN, TINY_DTN
from img2caricature.evaluate.diversity import pixel_diversity
from img2caricature.evaluate.realism_set import generated_at, real_at
from img2caricature.evaluate.retrieval import chance_retrieval, identity_retrieval
from img2caricature.nets.encoder import encoder_from_snapshot
from img2caricature.translate import load_translator
from tests.test_evaluate import make_gender_folder

TINY_EVAL = ["c2st_steps=3", "gender_steps=3", "gender_size=16", "kid_subsets=2",
             "grid_people=3", "grid_size=32"]


@pytest.fixture(scope="module")
def models(tiny_run) -> dict[str, Path]:
    root = tiny_run["root"]
    if not (root / "dtn" / "dtn.pt").exists():  # the same tiny DTN test_caricature uses
        train_dtn(tiny_run["faces"], tiny_run["emoji"], tiny_run["encoder"], root / "dtn",
                  load_config(DTNConfig, None, TINY_DTN + ["steps=2"]), show_progress=False)
    if not (root / "cyclegan" / "cyclegan.pt").exists():
        train_cyclegan(tiny_run["faces"], tiny_run["emoji"], root / "cyclegan",
                       load_config(CycleGANConfig, None, TINY_CYCLEGAN + ["steps=2"]),
                       encoder_path=tiny_run["encoder"], show_progress=False)
    return {"dtn": root / "dtn" / "dtn.pt", "cyclegan": root / "cyclegan" / "cyclegan.pt"}


def test_evaluate_writes_the_report_on_unseen_people(tiny_run, models, tmp_path, capsys):
    genders = make_gender_folder(tmp_path / "genders")
    out = tmp_path / "reports" / "tiny"
    code = main(["evaluate", "--model", str(models["dtn"]), "--model", str(models["cyclegan"]),
                 "--faces", str(tiny_run["faces"]), "--emoji", str(tiny_run["emoji"]), "--out", str(out),
                 "--judge-encoder", str(tiny_run["encoder"]), "--photo-genders", str(genders),
                 "--emoji-genders", str(genders), "--device", "cpu"] + sum([["--set", s] for s in TINY_EVAL], []))
    assert code == 0, capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["models"]) == ["dtn", "cyclegan"]
    assert metrics["rulers"] == ["judge", "f of dtn"] and metrics["feature_ruler"] == "judge"
    for m in metrics["models"].values():
        assert set(m["retrieval"]) == {"judge", "f of dtn"}
        assert 1 <= m["retrieval"]["judge"]["median_rank"] <= metrics["data"]["n_faces"]
        assert 0 <= m["c2st"]["accuracy"] <= 1 and m["kid"]["kid"] is not None
        assert 0 <= m["gender"]["agreement"] <= 1 and m["diversity"]["pixel_l1"] >= 0
        assert 0 <= m["gender"]["person_agreement"] <= 1
        assert len(m["gender"]["agreement_each_emoji_classifier"]) == 5   # the vote's members, one figure each
        among = m["retrieval_among_emoji"]["judge"]   # every query ranks the other emoji
        assert among["queries"] == m["retrieval"]["judge"]["queries"] and 0 <= among["top1"] <= 1
        lo, hi = m["retrieval"]["judge"]["top1_interval"]
        assert lo <= m["retrieval"]["judge"]["top1"] <= hi
    vs_first = metrics["models"]["cyclegan"]["retrieval"]["judge"]["top1_vs_first"]
    top1 = {n: m["retrieval"]["judge"]["top1"] for n, m in metrics["models"].items()}
    assert vs_first["difference"] == pytest.approx(top1["cyclegan"] - top1["dtn"])
    assert "top1_vs_first" not in metrics["models"]["dtn"]["retrieval"]["judge"]
    among = {n: m["retrieval_among_emoji"]["judge"] for n, m in metrics["models"].items()}
    photos = dataset.to_float(dataset.load_images(tiny_run["faces"], "faces", metrics["data"]["face_records"]))
    judge = encoder_from_snapshot(checkpoint.load(tiny_run["encoder"])).eval()
    with torch.no_grad():   # the dtn's emoji ranked among themselves by the judge, as evaluate should have
        emoji = load_translator(models["dtn"]).eval()(photos)
        emoji_features = judge.encode(emoji)
    # diversity as the emoji are seen, at realism_size (128 px), whatever g's own size (here 32 px)
    first_photo = np.unique(dataset.read_column(tiny_run["faces"], "labels")[metrics["data"]["face_records"]],
                            return_index=True)[1]
    assert emoji.shape[-1] != 128 and metrics["models"]["dtn"]["diversity"]["pixel_l1"] == pytest.approx(
        pixel_diversity(generated_at(emoji, 128)[first_photo]), rel=1e-6, abs=0)
    real = dataset.load_images(tiny_run["emoji"], "emoji", metrics["data"]["emoji_records"])
    assert metrics["reference"]["diversity"]["pixel_l1"] == pytest.approx(pixel_diversity(real_at(real, 128)),
                                                                          rel=1e-6, abs=0)
    query_labels = dataset.read_column(tiny_run["faces"], "labels")[metrics["data"]["face_records"]]
    assert among["dtn"]["ranks"] == pytest.approx(identity_retrieval(emoji_features, emoji_features,
                                                                     query_labels)["ranks"], abs=1e-6)
    assert among["cyclegan"]["top1_vs_first"]["difference"] == pytest.approx(
        among["cyclegan"]["top1"] - among["dtn"]["top1"])
    gender = {n: m["gender"] for n, m in metrics["models"].items()}
    assert gender["cyclegan"]["person_agreement_vs_first"]["difference"] == pytest.approx(
        gender["cyclegan"]["person_agreement"] - gender["dtn"]["person_agreement"])
    colour = {n: m["colour"] for n, m in metrics["models"].items()}
    assert "skin_vs_first" not in colour["dtn"] and len(colour["dtn"]["skin_interval"]) == 2
    assert "skin_between_people" in colour["dtn"] and "hair_between_people" in metrics["reference"]["colour"]
    assert "skin_vs_person" in colour["dtn"] and "lightness kept against the person's typical one" in (
        out / "metrics.md").read_text()
    for region in ("skin", "hair"):   # a tiny model's emoji may all read alike: no correlation (null)
        if colour["cyclegan"][region] is not None and colour["dtn"][region] is not None:
            assert colour["cyclegan"][f"{region}_vs_first"]["difference"] == pytest.approx(
                colour["cyclegan"][region] - colour["dtn"][region])
    for key in ("agreement", "person_agreement"):
        lo, hi = gender["dtn"][f"{key}_interval"]
        assert lo <= gender["dtn"][key] <= hi
    # only the encoder's held-out people, and only emoji neither model trained on
    held = set(checkpoint.load(tiny_run["encoder"])["heldout_identities"])
    names = dataset.info(tiny_run["faces"]).names
    labels = dataset.read_column(tiny_run["faces"], "labels")[metrics["data"]["face_records"]]
    assert {names[i] for i in labels} == held
    assert set(metrics["data"]["emoji_records"]) == set(checkpoint.load(models["dtn"])["heldout_emoji"])
    assert set(metrics["classifiers"]) == {"photo gender classifier", "emoji gender classifier"}
    assert 0.5 <= metrics["classifiers"]["photo gender classifier"]["within_person_agreement"] <= 1
    from img2caricature.nets.dlib_resnet import installed_weights   # "auto": dlib's probe where installed
    expected = "linear probe on dlib-resnet-v1" if installed_weights() else "small CNN"
    assert metrics["classifiers"]["photo gender classifier"]["ruler"] == expected
    assert list((tmp_path / "reports" / "cache").glob("gender-*.pt"))  # cached beside the report
    md = (out / "metrics.md").read_text()
    assert "| figure | dtn | cyclegan |" in md and "C2ST" in md and "Identity retrieval" in md
    assert "retrieval (judge): top-1 minus `dtn`'s, 95% interval | — |" in md
    assert "each emoji classifier of the vote alone" in md and "retrieval (judge), emoji among emoji: top-1" in md
    assert metrics["classifiers"]["emoji gender classifier"]["members"] == 5
    # 2 people held out: a warning, and chance levels beside the retrieval figures
    assert metrics["chance"]["retrieval"]["top1"] == pytest.approx(chance_retrieval(labels)["top1"])
    assert "retrieval (judge): top-1 (chance" in md and any("only 2 held-out people" in n for n in metrics["notes"])
    with Image.open(out / "grid.png") as grid:   # the 2 held-out people, a row each: photo | dtn | cyclegan
        assert grid.size == (3 * (32 + 2) + 2, 2 * (32 + 2) + 2)
    assert "report written" in capsys.readouterr().out


def test_evaluate_without_judge_or_genders_says_what_it_skipped(tiny_run, models, tmp_path):
    out = tmp_path / "r"
    assert main(["evaluate", "--model", str(models["cyclegan"]), "--faces", str(tiny_run["faces"]), "--emoji",
                 str(tiny_run["emoji"]), "--out", str(out)] + sum([["--set", s] for s in TINY_EVAL], [])) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["rulers"] == [] and "kid" not in metrics["models"]["cyclegan"]
    assert any("gender agreement skipped" in n for n in metrics["notes"])
    assert any("KID and feature diversity skipped" in n for n in metrics["notes"])


def test_evaluate_refuses_models_trained_on_different_splits(tiny_run, models, tmp_path, capsys):
    other = checkpoint.load(models["cyclegan"])
    other["split"] = {**other["split"], "faces": "0123456789ab"}
    checkpoint.save_atomic(other, tmp_path / "other" / "cyclegan.pt")
    code = main(["evaluate", "--model", str(models["dtn"]), "--model", str(tmp_path / "other" / "cyclegan.pt"),
                 "--faces", str(tiny_run["faces"]), "--emoji", str(tiny_run["emoji"]), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "hold out different people" in err
    assert not (tmp_path / "r").exists()


def test_evaluate_refuses_faces_passed_as_emoji(tiny_run, models, tmp_path, capsys):
    code = main(["evaluate", "--model", str(models["dtn"]), "--faces", str(tiny_run["faces"]),
                 "--emoji", str(tiny_run["faces"]), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "holds faces, but emoji were expected" in err
    assert not (tmp_path / "r").exists()


def test_dtns_sharing_one_f_are_measured_with_it_once(tiny_run, models, tmp_path):
    twin = tmp_path / "twin" / "dtn.pt"
    twin.parent.mkdir()
    twin.write_bytes(models["dtn"].read_bytes())
    out = tmp_path / "r"
    assert main(["evaluate", "--model", str(models["dtn"]), "--model", str(twin), "--faces", str(tiny_run["faces"]),
                 "--emoji", str(tiny_run["emoji"]), "--out", str(out)] + sum([["--set", s] for s in TINY_EVAL], [])) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    first, second = metrics["models"]
    assert metrics["rulers"] == [f"f of {first}, {second}"]
    ruler = metrics["rulers"][0]
    a, b = metrics["models"][first]["retrieval"][ruler], dict(metrics["models"][second]["retrieval"][ruler])
    assert b.pop("top1_vs_first") == {"difference": 0.0, "interval": [0.0, 0.0]}   # same g, same f
    assert a == b


def test_evaluate_refuses_a_gender_vote_of_nobody_before_any_work(tiny_run, models, tmp_path, capsys):
    code = main(["evaluate", "--model", str(models["dtn"]), "--faces", str(tiny_run["faces"]),
                 "--emoji", str(tiny_run["emoji"]), "--out", str(tmp_path / "r"), "--set", "gender_ensemble=0"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "gender_ensemble must be at least 1" in err
    assert not (tmp_path / "r").exists()
