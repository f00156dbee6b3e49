"""The held-out split file: drawn once, read by every stage, refused where it does not fit."""

import json
import logging

import numpy as np
import pytest

from img2caricature import dataset
from img2caricature.errors import UserError
from img2caricature.split import (SplitConfig, default_path, heldout_count, load_or_create, read_split,
                                  section_hash)
from img2caricature.train.split import encoder_split
from tests.conftest import make_emoji, make_faces


def test_the_held_out_share_is_a_fraction_with_a_floor():
    assert heldout_count(259, 0.12, 2, 2) == 31      # about today's 30 on the real faces
    assert heldout_count(40, 0.12, 2, 2) == 5        # 40 people: 35 to train on, not 9
    assert heldout_count(5, 0.12, 2, 2) == 2         # the floor
    assert heldout_count(3, 0.12, 2, 2) == 1         # never more than half, never fewer than 2 to train on
    assert heldout_count(2, 0.12, 2, 2) == 0
    assert heldout_count(3573, 0.02, 8, 1) == 71 and heldout_count(20, 0.02, 8, 1) == 8


def test_made_once_then_read_and_never_redrawn(tmp_path):
    faces, emoji = make_faces(tmp_path / "faces.h5", n_ids=10, per_id=2), make_emoji(tmp_path / "emoji.h5", n=30)
    split = load_or_create(None, faces=faces)
    assert split.path == default_path(faces) == tmp_path / "split.json" and split.path.exists()
    assert len(split.heldout_identities) == 2 and split.emoji == {}
    faces_hash = section_hash(split.faces)
    # another stage adds its emoji part; a different config does not redraw the people
    again = load_or_create(None, faces=faces, emoji=emoji, cfg=SplitConfig(heldout_fraction=0.5, seed=7))
    assert again.heldout_identities == split.heldout_identities and section_hash(again.faces) == faces_hash
    assert len(again.emoji["emoji.h5"]["heldout"]) == 8
    assert read_split(split.path).record(emoji) == again.record(emoji)
    train, held = again.face_records(faces)
    labels = dataset.read_column(faces, "labels")
    assert not set(labels[train]) & set(labels[held]) and len(train) + len(held) == 20
    train_e, held_e = again.emoji_records(emoji)
    assert not set(train_e) & set(held_e) and len(train_e) + len(held_e) == 30


def test_a_split_for_other_files_is_a_one_line_error(tmp_path):
    faces = make_faces(tmp_path / "a" / "faces.h5", n_ids=6, per_id=2)
    split = load_or_create(None, faces=faces, emoji=make_emoji(tmp_path / "a" / "emoji.h5", n=30))
    others = make_faces(tmp_path / "b" / "faces.h5", n_ids=6, per_id=2)
    with dataset.Writer(others, "faces") as w:  # other people
        w.set_names([f"someone{i}" for i in range(6)])
    with pytest.raises(UserError, match="made for another faces file") as err:
        split.face_records(others)
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="made for a emoji.h5 of 30 emoji"):
        split.emoji_records(make_emoji(tmp_path / "b" / "emoji.h5", n=10))
    (tmp_path / "junk.json").write_text("{}")
    with pytest.raises(UserError, match="not a split file"):
        read_split(tmp_path / "junk.json")


def test_a_frozen_f_must_not_have_seen_the_held_out_people(tmp_path):
    faces, emoji = make_faces(tmp_path / "faces.h5", n_ids=6, per_id=2), make_emoji(tmp_path / "emoji.h5", n=20)
    # an encoder from before split files: its held-out people become the split's
    legacy = {"kind": "encoder", "heldout_identities": ["person4", "person5"]}
    split = encoder_split(None, faces, emoji, legacy)
    assert split.heldout_identities == ["person4", "person5"]
    # one that trained on a person the split holds out is refused
    with pytest.raises(UserError, match="f trained on 1 of the people"):
        encoder_split(None, faces, emoji, {"kind": "encoder", "heldout_identities": ["person5"]})
    # a new encoder records its split's hash: another split is refused, the same one passes
    assert encoder_split(None, faces, emoji, {"kind": "encoder", "split": split.record()}) .path == split.path
    with pytest.raises(UserError, match="f was trained with another split"):
        encoder_split(None, faces, emoji, {"kind": "encoder", "split": {"file": "x.json", "faces": "0123"}})
    # a published f records neither: it trained on other data
    assert encoder_split(None, faces, emoji, {"kind": "encoder"}).heldout_identities == ["person4", "person5"]


def test_forty_people_train_on_35_and_the_log_says_so(tmp_path, caplog):
    from img2caricature.config import load_config
    from img2caricature.train.encoder import EncoderTrainConfig, train_encoder
    from tests.conftest import TINY_ENCODER

    faces = make_faces(tmp_path / "faces.h5", n_ids=40, per_id=2)
    cfg = load_config(EncoderTrainConfig, None, TINY_ENCODER + ["steps=1", "val_per_identity=0"])
    with caplog.at_level(logging.INFO, logger="img2caricature"):
        train_encoder(faces, tmp_path / "enc", cfg, show_progress=False)
    assert "faces: training on 35 people (70 photos), holding out 5 people (10 photos)" in caplog.text
    assert json.loads((tmp_path / "split.json").read_text())["faces"]["identities"] == 40


def test_split_command_makes_and_shows_the_file(tmp_path, capsys):
    from img2caricature.cli import main

    faces, emoji = make_faces(tmp_path / "faces.h5", n_ids=10, per_id=2), make_emoji(tmp_path / "emoji.h5", n=30)
    out = tmp_path / "elsewhere" / "my-split.json"
    assert main(["split", "--faces", str(faces), "--emoji", str(emoji), "--out", str(out),
                 "--set", "heldout_fraction=0.3"]) == 0
    printed = capsys.readouterr().out
    assert "training on 7 people" in printed and "holding out 3 people" in printed and "holding out 8" in printed
    assert main(["split", "--faces", str(faces), "--out", str(out), "--set", "heldout_fraction=0.5"]) == 0
    assert "holding out 3 people" in capsys.readouterr().out  # never redrawn
    assert np.isclose(read_split(out).settings["heldout_fraction"], 0.3)


def test_split_like_a_model_rebuilds_the_split_it_trained_on(tiny_run, tmp_path, capsys):
    """A fresh checkout has no split file: `split --like MODEL` writes the one the model's snapshot
    records, checked part by part against its hashes, and refuses files the model did not train on."""
    from img2caricature.cli import main
    from img2caricature.config import load_config
    from img2caricature.train.dtn import DTNConfig, train_dtn
    from tests.conftest import TINY_DTN

    t = tiny_run
    model = t["root"] / "dtn" / "dtn.pt"   # the same tiny model test_caricature.py trains
    if not model.exists():
        train_dtn(t["faces"], t["emoji"], t["encoder"], model.parent, load_config(DTNConfig, None, TINY_DTN + ["steps=2"]),
                  show_progress=False)
    # a model that trained on a split unlike a fresh default draw (other people, another seed's emoji)
    from img2caricature import checkpoint
    trained_on = load_or_create(tmp_path / "trained-on.json", faces=t["faces"], emoji=t["emoji"],
                                cfg=SplitConfig(seed=3), adopt=["person0", "person1"])
    default_draw = read_split(default_path(t["faces"]))
    assert trained_on.faces != default_draw.faces and trained_on.emoji != default_draw.emoji
    snap = checkpoint.load(model) | {"split": trained_on.record(t["emoji"]),
                                     "heldout_identities": trained_on.heldout_identities,
                                     "heldout_emoji": trained_on.emoji_records(t["emoji"])[1].tolist()}
    model = tmp_path / "model.pt"
    checkpoint.save_atomic(snap, model)
    out = tmp_path / "rebuilt.json"
    args = ["split", "--faces", str(t["faces"]), "--emoji", str(t["emoji"]), "--like", str(model), "--out", str(out)]
    assert main(args) == 0, capsys.readouterr().err
    rebuilt = read_split(out)
    assert rebuilt.faces == trained_on.faces and rebuilt.emoji == trained_on.emoji
    assert "holding out" in capsys.readouterr().out
    # other people, or other emoji: refused in one line, nothing written
    other_faces = make_faces(tmp_path / "other" / "faces.h5", n_ids=5, per_id=3)
    with dataset.Writer(other_faces, "faces") as w:
        w.set_names([f"someone{i}" for i in range(5)])
    elsewhere = tmp_path / "other.json"
    assert main(["split", "--faces", str(other_faces), "--like", str(model), "--out", str(elsewhere)]) == 2
    assert "is not the faces file" in capsys.readouterr().err and not elsewhere.exists()
    other_emoji = make_emoji(tmp_path / "other" / t["emoji"].name, n=40, seed=5)
    assert main(["split", "--faces", str(t["faces"]), "--emoji", str(other_emoji), "--like", str(model),
                 "--out", str(elsewhere)]) == 2
    assert "is not the emoji file" in capsys.readouterr().err and not elsewhere.exists()
