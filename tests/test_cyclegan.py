"""The CycleGAN baseline: networks, losses, the history pool, one step, training and resume."""

import json

import pytest
import torch

from img2caricature import checkpoint
from img2caricature.cli import main
from img2caricature.config import find_config, load_config
from img2caricature.nets.cyclegan import (PatchDiscriminator, PatchDiscriminatorConfig, ResnetGenerator,
                                          ResnetGeneratorConfig)
from img2caricature.train.common import grad_scaler
from img2caricature.train.cyclegan import (Batch, CycleGANConfig, Nets, Pools, build_nets, discriminator_step,
                                           generator_losses, generator_step, lr_at, train_cyclegan, train_step)
from img2caricature.train.pool import ImagePool
from img2caricature.train.run import StopEarly
from img2caricature.translate import load_translator
from tests.conftest import TINY_CYCLEGAN


def tiny_setup(**overrides):
    cfg = load_config(CycleGANConfig, None, TINY_CYCLEGAN + [f"{k}={v}" for k, v in overrides.items()])
    torch.manual_seed(0)
    G, D = build_nets(cfg, torch.device("cpu"))
    batch = Batch(torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1)
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))
    return cfg, Nets(G, D), batch, opt_g, opt_d


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before, after):
    return {k for k in before if not torch.equal(before[k], after[k])}


def test_shapes_and_the_papers_sizes():
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    G = ResnetGenerator(ResnetGeneratorConfig(size=64, ngf=8, n_down=2, n_blocks=2))
    y = G(x)
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1
    assert PatchDiscriminator(PatchDiscriminatorConfig(ndf=8, n_layers=3))(x).shape == (2, 1, 6, 6)
    # the paper's resnet_9blocks generator and 70x70 PatchGAN, parameter for parameter
    paper = load_config(CycleGANConfig, find_config("paper", "cyclegan"))
    G, D = build_nets(paper, torch.device("cpu"))
    assert sum(p.numel() for p in G.face_to_emoji.parameters()) == 11_378_179
    assert sum(p.numel() for p in D.emoji.parameters()) == 2_764_737
    assert load_config(CycleGANConfig, find_config("compact", "cyclegan")).size == 64


def test_losses_are_finite_and_weighted_as_the_paper():
    cfg, nets, batch, *_ = tiny_setup()
    total, parts, out = generator_losses(nets, batch, cfg)
    parts = {k: float(v) for k, v in parts.items()}
    assert all(torch.isfinite(torch.tensor(v)) for v in parts.values())
    assert total.item() == pytest.approx(parts["L_GAN"] + 10 * parts["L_CYC"] + 5 * parts["L_IDT"], rel=1e-5)
    assert out["fake_emoji"].shape == batch.faces.shape
    cfg0, nets0, batch0, *_ = tiny_setup(identity_weight=0.0)
    total0, parts0, out0 = generator_losses(nets0, batch0, cfg0)
    assert parts0["L_IDT"] == 0 and "same_emoji" not in out0  # no identity forward when unweighted


def test_each_step_updates_its_own_networks_only():
    cfg, nets, batch, opt_g, opt_d = tiny_setup()
    scaler = grad_scaler(torch.device("cpu"))
    g0, d0 = snapshot(nets.G), snapshot(nets.D)
    parts, out = generator_step(nets, batch, cfg, opt_g, scaler)
    g1, d1 = snapshot(nets.G), snapshot(nets.D)
    weights = lambda s, prefix: {k for k in s if k.startswith(prefix) and k.endswith("weight")}  # noqa: E731
    assert weights(g0, "face_to_emoji") and weights(g0, "face_to_emoji") <= changed(g0, g1)
    assert weights(g0, "emoji_to_face") <= changed(g0, g1)
    assert not changed(d0, d1)
    assert all(p.grad is None for p in nets.D.parameters())  # D frozen in G's step: no gradients computed
    assert all(p.requires_grad for p in nets.D.parameters())  # and trainable again for its own step
    discriminator_step(nets, batch, out["fake_faces"], out["fake_emoji"], opt_d, scaler)
    g2, d2 = snapshot(nets.G), snapshot(nets.D)
    assert not changed(g1, g2)
    assert weights(d0, "faces") <= changed(d1, d2) and weights(d0, "emoji") <= changed(d1, d2)
    parts = train_step(nets, batch, cfg, Pools(ImagePool(3), ImagePool(3)), opt_g, opt_d, scaler, scaler)
    assert {"L_G", "L_GAN", "L_CYC", "L_IDT", "L_D", "D/faces", "D/emoji"} <= set(parts)


def test_pool_fills_then_mixes_old_and_new():
    torch.manual_seed(0)
    pool = ImagePool(4)
    first = torch.arange(4.0).view(4, 1, 1, 1)
    assert torch.equal(pool.query(first), first)                   # filling: the fakes themselves
    new = torch.arange(100.0, 164.0).view(64, 1, 1, 1)
    out, new_values = pool.query(new).flatten().tolist(), new.flatten().tolist()
    swapped = [i for i, (o, n) in enumerate(zip(out, new_values)) if o != n]
    assert 16 < len(swapped) < 48                                    # about half come from the pool ...
    assert all(out[i] in set(range(4)) | set(new_values[:i]) for i in swapped)  # ... stored before them
    assert len(pool.images) == 4
    restored = ImagePool(4)
    restored.load_state_dict(pool.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(pool.images, restored.images))
    assert torch.equal(ImagePool(0).query(new), new)                 # no pool: the fakes as they are


def test_learning_rate_decays_linearly_over_the_second_half():
    cfg = CycleGANConfig(steps=100, lr=1.0, decay_fraction=0.5)
    assert lr_at(1, cfg) == lr_at(50, cfg) == 1.0
    assert lr_at(51, cfg) > lr_at(75, cfg) > lr_at(100, cfg) > 0
    assert lr_at(100, cfg) < 0.05


def _losses(run_dir):
    return {r["step"]: r["L_G"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())}


def test_train_resume_reproduces_and_the_snapshot_translates(tiny_run, tmp_path):
    cfg = load_config(CycleGANConfig, None, TINY_CYCLEGAN + ["steps=4"])
    t = tiny_run
    train_cyclegan(t["faces"], t["emoji"], tmp_path / "straight", cfg, encoder_path=t["encoder"], show_progress=False)
    train_cyclegan(t["faces"], t["emoji"], tmp_path / "resumed", cfg, encoder_path=t["encoder"], show_progress=False,
                   stop=StopEarly(steps=2))
    assert sorted(_losses(tmp_path / "resumed")) == [1, 2]
    train_cyclegan(t["faces"], t["emoji"], tmp_path / "resumed", cfg, encoder_path=t["encoder"], resume=True,
                   show_progress=False)
    # pool, RNG and optimisers come back: the resumed run's losses are the uninterrupted run's
    assert _losses(tmp_path / "straight") == pytest.approx(_losses(tmp_path / "resumed"), rel=1e-5)
    run_dir = tmp_path / "straight"
    assert sorted(p.name for p in run_dir.glob("state-*.pt")) == ["state-00000002.pt", "state-00000004.pt"]
    assert (run_dir / "samples" / "faces-00000004.png").exists()
    snap = checkpoint.load(run_dir / "cyclegan.pt")
    encoder = checkpoint.load(t["encoder"])
    assert snap["step"] == 4 and snap["heldout_identities"] == encoder["heldout_identities"]
    assert snap["split"]["faces"] == encoder["split"]["faces"] and snap["schema"] == 2
    assert len(snap["heldout_emoji"]) == 8  # the split's default share of 20 emoji: its floor
    emoji = load_translator(run_dir / "cyclegan.pt")(torch.rand(2, 3, 152, 152) * 2 - 1)
    assert emoji.shape == (2, 3, 16, 16) and emoji.abs().max() <= 1


def test_cli_trains_two_steps(tiny_run, tmp_path, capsys):
    out = tmp_path / "cg"
    args = ["train-cyclegan", "--faces", str(tiny_run["faces"]), "--emoji", str(tiny_run["emoji"]), "--out", str(out),
            "--steps", "2", "--device", "cpu"] + sum([["--set", s] for s in TINY_CYCLEGAN], [])
    assert main(args) == 0
    assert "cyclegan.pt" in capsys.readouterr().out
    assert (out / "cyclegan.pt").exists() and checkpoint.load(out / "state-00000002.pt")["step"] == 2
    snap = checkpoint.load(out / "cyclegan.pt")  # no --encoder: the split file beside the faces still holds people out
    assert snap["heldout_identities"] == checkpoint.load(tiny_run["encoder"])["heldout_identities"]
    assert main(args) == 2  # a second run into the same folder needs --resume
