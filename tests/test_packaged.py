"""What ships inside the package: every config parses and builds its networks, the configs are
package data, and the shipped default.pt loads and caricatures a photo."""

from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from img2caricature.config import find_config, load_config, packaged_configs
from img2caricature.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


def build_dtn(cfg):
    from img2caricature.nets.dtn import Discriminator, DiscriminatorConfig, Generator, GeneratorConfig

    g = Generator(GeneratorConfig(input_dim=128, output_size=cfg.output_size, widths=cfg.g_widths))
    D = Discriminator(DiscriminatorConfig(input_size=cfg.output_size, widths=cfg.d_widths))
    z = torch.randn(2, 128)
    with torch.no_grad():
        g.eval()
        emoji = g(z)
        assert emoji.shape == (2, 3, cfg.output_size, cfg.output_size) and D(emoji).shape == (2, 3)


def build_encoder(cfg):
    from img2caricature.nets.encoder import Encoder, EncoderConfig
    from img2caricature.train.common import sub_config

    encoder = Encoder(sub_config(EncoderConfig, cfg, num_classes=3, pretrained="")).eval()
    with torch.no_grad():
        assert encoder.encode(torch.rand(2, 3, 152, 152) * 2 - 1).shape == (2, encoder.dim)


def build_cyclegan(cfg):
    from img2caricature.train.cyclegan import build_nets

    G, D = build_nets(cfg, torch.device("cpu"))
    x = torch.rand(1, 3, cfg.size, cfg.size) * 2 - 1
    with torch.no_grad():
        assert G.face_to_emoji(x).shape == x.shape and D.emoji(x).dim() == 4


def build_avatar(cfg):
    from img2caricature.avatar.space import ParamSpace
    from img2caricature.train.avatar import build_nets

    space = ParamSpace(["skin", "hair"], [["light", "dark"], ["short", "long", "none"]], ["skin", "hair"], {})
    nets = build_nets(torch.nn.Identity(), 16, space, cfg, torch.device("cpu"))
    assert sum(p.numel() for p in nets.e.parameters()) > 0 and sum(p.numel() for p in nets.c.parameters()) > 0


def build_source(path):
    from crawlers.source import load_source

    source = load_source(path)
    assert source.space_size > 1 and source.url(tuple(0 for _ in source.names)).startswith("http")


def stages():
    from crawlers.source import SourceConfig
    from img2caricature.train.avatar import AvatarConfig
    from img2caricature.train.cyclegan import CycleGANConfig
    from img2caricature.train.dtn import DTNConfig
    from img2caricature.train.encoder import EncoderTrainConfig

    return {"dtn": (DTNConfig, build_dtn), "encoder": (EncoderTrainConfig, build_encoder),
            "cyclegan": (CycleGANConfig, build_cyclegan), "sources": (SourceConfig, None),
            "avatar": (AvatarConfig, build_avatar), "traits": (None, None)}


PACKAGED = [(stage, name) for stage in ("dtn", "encoder", "cyclegan", "sources", "avatar", "traits")
            for name in packaged_configs(stage)]


def test_every_stage_ships_configs():
    assert {s for s, _ in PACKAGED} == {"dtn", "encoder", "cyclegan", "sources", "avatar", "traits"}
    assert len(PACKAGED) >= 9 and ("dtn", "compact") in PACKAGED and ("encoder", "compact") in PACKAGED
    folder = resources.files("img2caricature") / "configs"
    assert {d.name for d in folder.iterdir() if d.is_dir() and d.name != "__pycache__"} == set(stages())


@pytest.mark.parametrize("stage, name", PACKAGED)
def test_every_packaged_config_parses_and_builds_its_networks(stage, name):
    cls, build = stages()[stage]
    path = find_config(name, stage)
    if stage == "traits":
        from img2caricature.avatar.policy import read_policy

        assert read_policy(path).rates   # the names are checked against the engine in test_avatar_policy
    elif build is None:
        build_source(path)
    else:
        build(load_config(cls, path))


def test_config_names_paths_and_old_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a folder with no configs/ in it
    from img2caricature.train.dtn import DTNConfig

    packaged = load_config(DTNConfig, find_config("compact", "dtn"))
    assert load_config(DTNConfig, find_config("configs/dtn/compact.toml", "dtn")) == packaged
    assert load_config(DTNConfig, "configs/dtn/compact.toml") == packaged  # scripts from before the move
    own = tmp_path / "mine.toml"
    own.write_text("steps = 7\n")
    assert load_config(DTNConfig, find_config(str(own), "dtn")).steps == 7
    with pytest.raises(UserError, match=r"config file not found: huge \(packaged dtn configs: .*compact"):
        find_config("huge", "dtn")


def test_the_configs_are_package_data():
    """A wheel holds what pyproject's package-data patterns match: every config must be matched."""
    from img2caricature.config import tomllib

    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    package = ROOT / "img2caricature"
    shipped = {p for pattern in patterns["img2caricature"] for p in package.glob(pattern)}
    configs = set(package.glob("configs/**/*.toml"))
    assert configs and configs <= shipped and (package / "models" / "default.pt") in shipped


def test_the_checkouts_configs_folder_is_the_packages():
    """The top-level configs/ is a link to the package's, never a second copy that could drift
    (a wheel holds the configs once: img2caricature/configs)."""
    link = ROOT / "configs"
    if not link.exists() and not link.is_symlink():
        pytest.skip("no top-level configs/ here (an unpacked sdist)")
    assert link.is_symlink() and link.resolve() == (ROOT / "img2caricature" / "configs").resolve()


def test_the_shipped_default_model_loads_and_caricatures_a_photo(tmp_path, capsys):
    from img2caricature import registry
    from img2caricature.caricature import default_model_path
    from img2caricature.cli import main
    from tests.preprocess_photos import astronaut, save

    snap = registry.load_snapshot(default_model_path())
    assert snap["kind"] == "dtn" and snap["schema"] == 2 and snap["encoder"]["kind"] == "encoder"
    # since 2026-12-03: dlib's f, whose weights ride inside the file, and 128-px emoji
    assert snap["encoder"]["arch"] == "dlib-resnet-v1" and snap["config"]["generator"]["output_size"] == 128
    assert snap["split"] is not None and len(snap["heldout_identities"]) == 30
    photo = save(astronaut(320), tmp_path / "face.jpg")
    assert main(["caricature", str(photo), "--size", "128"]) == 0, capsys.readouterr().err
    with Image.open(tmp_path / "face.emoji.png") as img:
        emoji = np.asarray(img.convert("RGB"), dtype=np.float32)
    assert emoji.shape == (128, 128, 3)
    assert emoji.std() > 20  # a drawing, not a flat colour
    # the same photo gives the same emoji: the loaded model is frozen, in eval mode
    translator = registry.translator_from_snapshot(snap)
    assert not translator.training and not any(p.requires_grad for p in translator.parameters())



def test_the_shipped_default_model_needs_no_dlib_package(monkeypatch):
    """dlib's f rides inside default.pt, so a user with nothing beyond `pip install` (no
    face-recognition-models) runs it: here that package cannot be found or imported."""
    import importlib.util

    import torch

    from img2caricature import registry
    from img2caricature.caricature import default_model_path

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("face_recognition_models") else real_find_spec(name, *a))
    monkeypatch.setitem(__import__("sys").modules, "face_recognition_models", None)
    from img2caricature.errors import UserError
    from img2caricature.nets.dlib_resnet import installed_weights

    assert installed_weights() is None
    with pytest.raises(UserError):
        registry.load_encoder_snapshot("dlib-resnet-v1")   # the package really is out of reach
    translator = registry.translator_from_snapshot(registry.load_snapshot(default_model_path()))
    with torch.no_grad():
        emoji = translator(torch.zeros(1, 3, 152, 152))
    assert emoji.shape == (1, 3, 128, 128) and torch.isfinite(emoji).all()
