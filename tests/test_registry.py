"""The model registry and the one snapshot schema: encoders and translators by name, old
snapshots read through `upgrade`, a published f named by a string."""

from dataclasses import dataclass

import pytest
import torch
from torch import nn

from img2caricature import checkpoint, registry
from img2caricature.errors import UserError
from img2caricature.nets.dtn import Generator, GeneratorConfig
from img2caricature.nets.encoder import Encoder, EncoderConfig, encoder_snapshot
from img2caricature.translate import dtn_snapshot, load_translator


@dataclass
class PatchConfig:
    arch: str = "mean-colour"
    input_size: int = 8


class MeanColour(nn.Module):
    """A 'published' frozen f for the tests: the mean colour of each quarter of the face."""

    def __init__(self, cfg: PatchConfig):
        super().__init__()
        self.cfg = cfg
        self.dim = 12
        self.scale = nn.Parameter(torch.ones(12))

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        quarters = torch.nn.functional.adaptive_avg_pool2d(images.float(), 2).flatten(1)
        return quarters * self.scale


@pytest.fixture
def published():
    registry.register_encoder("mean-colour", build=lambda config: MeanColour(PatchConfig(**config)),
                              pretrained=lambda: MeanColour(PatchConfig()))
    yield "mean-colour"
    del registry.ENCODERS["mean-colour"]


def test_snapshots_share_one_schema():
    enc = Encoder(EncoderConfig(num_classes=3, widths=(8, 16), embedding_dim=12, input_size=32))
    snap = encoder_snapshot(enc, split={"faces": "abc"}, step=5)
    assert {"kind", "schema", "config", "state_dicts", "split"} <= set(snap)
    assert snap["kind"] == "encoder" and snap["schema"] == registry.SCHEMA and snap["arch"] == "compact"
    g = Generator(GeneratorConfig(input_dim=12, widths=(16, 8, 8, 8)))
    dtn = dtn_snapshot(g, snap, split={"faces": "abc"}, step=7)
    assert set(dtn["config"]) == set(dtn["state_dicts"]) == {"generator"} and dtn["encoder"] is snap
    again = registry.translator_from_snapshot(dtn)
    x = torch.rand(2, 3, 152, 152) * 2 - 1
    g.eval(), enc.eval()
    assert torch.allclose(again(x), g(enc.encode(x)), atol=1e-6)


def test_snapshots_from_before_the_schema_still_load(tmp_path):
    """The shipped default.pt's layout: generator_config / generator, f as config / state_dict."""
    enc = Encoder(EncoderConfig(num_classes=3, widths=(8, 16), embedding_dim=12, input_size=32)).eval()
    g = Generator(GeneratorConfig(input_dim=12, widths=(16, 8, 8, 8))).eval()
    old_f = {"kind": "encoder", "config": {"arch": "compact", "num_classes": 3, "widths": (8, 16), "embedding_dim": 12,
                                           "input_size": 32},   # keys added since are missing: defaults
             "state_dict": enc.state_dict(), "heldout_identities": ["a"]}
    old = {"kind": "dtn", "generator_config": {"input_dim": 12, "output_size": 64, "widths": (16, 8, 8, 8)},
           "generator": g.state_dict(), "encoder": old_f, "step": 3, "heldout_emoji": [1]}
    checkpoint.save_atomic(old, tmp_path / "old.pt")
    up = registry.load_snapshot(tmp_path / "old.pt")
    assert up["schema"] == 2 and up["encoder"]["schema"] == 2 and up["encoder"]["heldout_identities"] == ["a"]
    x = torch.rand(2, 3, 152, 152) * 2 - 1
    assert torch.allclose(load_translator(tmp_path / "old.pt")(x), g(enc.encode(x)), atol=1e-6)


def test_a_published_encoder_is_named_by_a_string(published, tmp_path):
    snap = registry.load_encoder_snapshot(published)
    assert snap["kind"] == "encoder" and snap["arch"] == "mean-colour" and snap["pretrained"] == "mean-colour"
    f = registry.encoder_from_snapshot(snap)
    assert isinstance(f, MeanColour) and not f.training and not f.scale.requires_grad
    assert published in registry.named_encoders() and "compact" not in registry.named_encoders()
    with pytest.raises(UserError, match="neither an encoder file nor a published encoder") as err:
        registry.load_encoder_snapshot("no-such-f")
    assert "mean-colour" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(UserError, match="checkpoint not found"):
        registry.load_encoder_snapshot(tmp_path / "encoder.pt")


def test_unknown_kinds_are_one_line_errors():
    with pytest.raises(UserError, match="not a photo->emoji model"):
        registry.translator_from_snapshot({"kind": "encoder", "schema": 2})
    with pytest.raises(UserError, match="encoder 'dlib-v9' is not known to this install"):
        registry.encoder_from_snapshot({"kind": "encoder", "schema": 2, "arch": "dlib-v9",
                                        "config": {"encoder": {}}, "state_dicts": {"encoder": {}}})
    with pytest.raises(UserError, match="unknown encoder arch"):
        Encoder(EncoderConfig(arch="resnet-9000"))


def test_a_registered_translator_kind_is_found(tmp_path):
    registry.register_translator("identity", lambda snap: nn.Identity())
    try:
        checkpoint.save_atomic({"kind": "identity", "schema": 2}, tmp_path / "id.pt")
        x = torch.rand(1, 3, 8, 8)
        assert torch.equal(load_translator(tmp_path / "id.pt")(x), x)
    finally:
        del registry.TRANSLATORS["identity"]
