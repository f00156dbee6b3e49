"""Malformed checkpoints are one line and exit 2, checked before anything is built
(issue 17, class 3); well-formed ones, the shipped model included, still load."""

import copy

import pytest
import torch

from img2caricature.caricature import default_model_path
from img2caricature.cli import main
from img2caricature.errors import UserError
from img2caricature.nets.encoder import encoder_from_snapshot, load_encoder
from img2caricature.snapshot_checks import check_encoder, check_translator
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


DTN_CASES = {
    "a tensor": (lambda s: torch.zeros(3), "holds a Tensor"),
    "a list": (lambda s: [1, 2, 3], "holds a list"),
    "no generator": (lambda s: edited(s, lambda x: x.pop("generator")), "has no 'generator'"),
    "no kind": (lambda s: edited(s, lambda x: x.pop("kind")), "no model kind"),
    "changed widths": (lambda s: edited(s, _set("generator_config", "widths", [64, 32, 16, 8])), "but its config needs"),
    "output_size 0": (lambda s: edited(s, _set("generator_config", "output_size", 0)), "output_size = 0 is outside"),
    "output_size 48": (lambda s: edited(s, _set("generator_config", "output_size", 48)), "power of two"),
    "widths 2^20": (lambda s: edited(s, _set("generator_config", "widths", [2**20] * 4)), "outside the sane range"),
    "config a string": (lambda s: edited(s, _set("generator_config", "nope")), "holds a str, not a table"),
    "unknown config key": (lambda s: edited(s, _set("generator_config", "depth", 3)), "unknown key 'depth'"),
    "a weight not a tensor": (lambda s: edited(s, _set("generator", "project.0.weight", [1.0])), "not a tensor"),
    "an extra weight": (lambda s: edited(s, _set("generator", "extra.weight", torch.zeros(1))), "unexpected"),
    "encoder widths 2^20": (lambda s: edited(s, _set("encoder", "config", "widths", [2**20] * 2)), "its encoder"),
    "encoder crop 0": (lambda s: edited(s, _set("encoder", "config", "crop_fraction", 0.0)), "crop_fraction"),
    "encoder without weights": (lambda s: edited(s, lambda x: x["encoder"].pop("state_dict")), "no 'state_dict'"),
    "g input_dim changed": (lambda s: edited(s, _set("generator_config", "input_dim", 8)), "but its config needs"),
    "encoder a tensor": (lambda s: edited(s, _set("encoder", torch.zeros(2))), "'encoder' holds a Tensor"),
}


@pytest.mark.parametrize("case", sorted(DTN_CASES))
def test_a_malformed_model_is_one_line_and_exit_2(tmp_path, capsys, case):
    make, message = DTN_CASES[case]
    path = tmp_path / "bad.pt"
    torch.save(make(tiny_models.tiny_dtn_snapshot()), path)
    code = main(["caricature", str(ASTRONAUT), "--model", str(path), "-o", str(tmp_path / "out.png")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"img2car caricature: error: {path}") and message in err[0], err[0]
    assert not (tmp_path / "out.png").exists()


def test_the_encoder_dimension_must_match_the_generator():
    from img2caricature.nets.encoder import Encoder, EncoderConfig, encoder_snapshot

    s = tiny_models.tiny_dtn_snapshot()
    s["encoder"] = encoder_snapshot(Encoder(EncoderConfig(widths=(8, 16), embedding_dim=8, input_size=32)))
    with pytest.raises(UserError, match="its encoder gives 8-d features but its generator takes 16"):
        check_translator(s, "x.pt")


def test_malformed_cyclegan_and_encoder_snapshots(tmp_path):
    bad_gan = edited(tiny_models.tiny_cyclegan_snapshot(), _set("generator_config", "n_blocks", 10**9))
    with pytest.raises(UserError, match="n_blocks = 1000000000 is outside"):
        check_translator(bad_gan, "gan.pt")
    bad_gan = edited(tiny_models.tiny_cyclegan_snapshot(), _set("generator_config", "n_blocks", 2))
    with pytest.raises(UserError, match="lacks"):
        check_translator(bad_gan, "gan.pt")
    bad_enc = edited(tiny_models.tiny_encoder_snapshot(), _set("config", "num_classes", 7))
    with pytest.raises(UserError, match="classifier.weight is 3x16 but its config needs 7x16"):
        encoder_from_snapshot(bad_enc)
    torch.save([1], tmp_path / "enc.pt")
    with pytest.raises(UserError, match="holds a list"):
        load_encoder(tmp_path / "enc.pt")


def test_well_formed_snapshots_pass():
    check_translator(tiny_models.tiny_dtn_snapshot(), "dtn.pt")
    check_translator(tiny_models.tiny_cyclegan_snapshot(), "cyclegan.pt")
    assert check_encoder(tiny_models.tiny_encoder_snapshot(), "encoder.pt") == 16
    if default_model_path().is_file():
        check_translator(torch.load(default_model_path(), weights_only=True), "default.pt")


def test_an_architecture_without_a_row_is_checked_by_building_it_only(monkeypatch):
    """A new arch (e.g. a pretrained encoder whose weights ship elsewhere) is not refused for
    having no row in ENCODER_ARCHS; its weights, when given, are still checked."""
    from img2caricature import snapshot_checks

    monkeypatch.delitem(snapshot_checks.ENCODER_ARCHS, "compact")
    snap = tiny_models.tiny_encoder_snapshot()
    assert check_encoder(snap, "enc.pt") == 16
    assert check_encoder(edited(snap, lambda s: s.pop("state_dict")), "enc.pt") is None
    with pytest.raises(UserError, match="but its config needs"):
        check_encoder(edited(snap, _set("config", "embedding_dim", 8)), "enc.pt")
