"""Malformed checkpoints are one line and exit 2, checked before anything is built
(issue 17, class 3); well-formed ones, the shipped model included, still load."""

import copy

import pytest
import torch

from img2caricature import registry
from img2caricature.caricature import default_model_path
from img2caricature.cli import main
from img2caricature.errors import UserError
from img2caricature.nets.encoder import Encoder, EncoderConfig, encoder_snapshot, load_encoder
from img2caricature.snapshot_checks import check_snapshot
from tests import tiny_models
from tests.preprocess_photos import ASTRONAUT


def edited(snapshot: dict, edit) -> dict:
    s = copy.deepcopy(snapshot)
    edit(s)
    return s


def _set(*path_and_value):
    *path, key, value = path_and_value

    def edit(s):
        for p in path:
            s = s[p]
        s[key] = value
    return edit


def _pop(*path):
    *path, key = path

    def edit(s):
        for p in path:
            s = s[p]
        s.pop(key)
    return edit


G, E = ("config", "generator"), ("encoder", "config", "encoder")
DTN_CASES = {
    "a tensor": (lambda s: torch.zeros(3), "holds a Tensor"),
    "a list": (lambda s: [1, 2, 3], "holds a list"),
    "no generator weights": (lambda s: edited(s, _pop("state_dicts", "generator")), "has no 'generator'"),
    "no kind": (lambda s: edited(s, _pop("kind")), "no model kind"),
    "old format, half": (lambda s: {"kind": "dtn", "generator": {}}, "not a complete snapshot"),
    "changed widths": (lambda s: edited(s, _set(*G, "widths", [64, 32, 16, 8])), "but its config needs"),
    "output_size 0": (lambda s: edited(s, _set(*G, "output_size", 0)), "output_size = 0 is outside"),
    "output_size 48": (lambda s: edited(s, _set(*G, "output_size", 48)), "power of two"),
    "widths 2^20": (lambda s: edited(s, _set(*G, "widths", [2**20] * 4)), "outside the sane range"),
    "a hundred widths": (lambda s: edited(s, _set(*G, "widths", [8] * 100)), "has 100 entries"),
    "config a string": (lambda s: edited(s, _set("config", "generator", "nope")), "holds a str, not a table"),
    "unknown config key": (lambda s: edited(s, _set(*G, "depth", 3)), "unknown key 'depth'"),
    "a weight not a tensor": (lambda s: edited(s, _set("state_dicts", "generator", "project.0.weight", [1.0])),
                              "not a tensor"),
    "an extra weight": (lambda s: edited(s, _set("state_dicts", "generator", "extra.weight", torch.zeros(1))),
                        "unexpected"),
    "g input_dim changed": (lambda s: edited(s, _set(*G, "input_dim", 8)), "but its config needs"),
    "encoder widths 2^20": (lambda s: edited(s, _set(*E, "widths", [2**20] * 2)), "its encoder"),
    "encoder crop 0": (lambda s: edited(s, _set(*E, "crop_fraction", 0.0)), "crop_fraction"),
    "encoder unknown arch": (lambda s: edited(s, _set("encoder", "arch", "vgg-9000")), "not known to this install"),
    "encoder without weights": (lambda s: edited(s, _pop("encoder", "state_dicts")), "has no 'state_dicts'"),
    "encoder a tensor": (lambda s: edited(s, _set("encoder", torch.zeros(2))), "holds a Tensor"),
}


@pytest.mark.parametrize("case", sorted(DTN_CASES))
def test_a_malformed_model_is_one_line_and_exit_2(tmp_path, capsys, case):
    make, message = DTN_CASES[case]
    path = tmp_path / "bad.pt"
    torch.save(make(tiny_models.tiny_dtn_snapshot()), path)
    code = main(["caricature", str(ASTRONAUT), "--model", str(path), "-o", str(tmp_path / "out.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("img2car caricature: error: ") and message in err[0], err[0]
    assert str(path) in err[0] or case == "no kind", err[0]  # the registry's own line names no file
    assert not (tmp_path / "out.png").exists()


def test_the_encoder_dimension_must_match_the_generator():
    s = tiny_models.tiny_dtn_snapshot()
    s["encoder"] = encoder_snapshot(Encoder(EncoderConfig(widths=(8, 16), embedding_dim=8, input_size=32)))
    with pytest.raises(UserError, match="its encoder gives 8-d features but its generator takes 16"):
        check_snapshot(s, "x.pt")


def test_malformed_cyclegan_and_encoder_snapshots(tmp_path):
    bad_gan = edited(tiny_models.tiny_cyclegan_snapshot(), _set("config", "generator", "n_blocks", 10**9))
    with pytest.raises(UserError, match="n_blocks = 1000000000 is outside"):
        registry.translator_from_snapshot(bad_gan)
    bad_gan = edited(tiny_models.tiny_cyclegan_snapshot(), _set("config", "generator", "n_blocks", 2))
    with pytest.raises(UserError, match="lack"):
        registry.translator_from_snapshot(bad_gan)
    bad_enc = edited(tiny_models.tiny_encoder_snapshot(), _set("config", "encoder", "num_classes", 7))
    with pytest.raises(UserError, match="classifier.weight is 3x16 but its config needs 7x16"):
        registry.encoder_from_snapshot(bad_enc)
    torch.save([1], tmp_path / "enc.pt")
    with pytest.raises(UserError, match="holds a list"):
        load_encoder(tmp_path / "enc.pt")


def test_well_formed_snapshots_pass():
    check_snapshot(tiny_models.tiny_dtn_snapshot(), "dtn.pt")
    check_snapshot(tiny_models.tiny_cyclegan_snapshot(), "cyclegan.pt")
    check_snapshot(tiny_models.tiny_encoder_snapshot(), "encoder.pt")
    if default_model_path().is_file():  # written before the schema: read through registry.upgrade
        check_snapshot(torch.load(default_model_path(), weights_only=True), "default.pt")


def test_an_architecture_without_a_row_is_checked_by_building_it(monkeypatch):
    """A plugin's encoder (registered, no bounds row) is not refused for lacking a row; its
    weights are still held against the network its config builds."""
    from img2caricature import snapshot_checks

    monkeypatch.delitem(snapshot_checks.ENCODER_BOUNDS, "compact")
    snap = tiny_models.tiny_encoder_snapshot()
    check_snapshot(snap, "enc.pt")
    with pytest.raises(UserError, match="but its config needs"):
        check_snapshot(edited(snap, _set("config", "encoder", "embedding_dim", 8)), "enc.pt")
