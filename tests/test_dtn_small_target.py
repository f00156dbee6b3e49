"""g's moving average, R1 and DiffAugment: the DTN's tools for a small target set."""

import pytest
import torch

from img2caricature import checkpoint, losses
from img2caricature.config import load_config
from img2caricature.errors import UserError
from img2caricature.train.diffaugment import diff_augment, parse_policy
from img2caricature.train.dtn import DTNConfig, discriminator_step, train_dtn, train_step, update_ema
from img2caricature.train.common import grad_scaler
from tests.conftest import TINY_DTN
from tests.test_dtn import tiny_setup


def test_ema_moves_by_the_configured_rate_and_is_what_snapshots_save(tiny_run, tmp_path):
    cfg, nets, batch, opt_g, opt_d = tiny_setup(tiny_run, ema_decay=0.9)
    ema0 = {k: v.clone() for k, v in nets.g_ema.state_dict().items()}
    train_step(nets, batch, cfg, opt_g, opt_d, grad_scaler(batch.target.device), grad_scaler(batch.target.device))
    g1 = nets.g.state_dict()
    for k, v in nets.g_ema.named_parameters():   # no step given: the configured decay itself
        assert torch.allclose(v, 0.9 * ema0[k] + 0.1 * g1[k], atol=1e-6), k
    for k, v in nets.g_ema.named_buffers():      # BatchNorm statistics follow g
        assert torch.equal(v, g1[k]), k
    # the warm-up: at step 0 the average is (1 + 0) / (10 + 0) = 0.1 old, 0.9 new
    before = [p.clone() for p in nets.g_ema.parameters()]
    update_ema(nets.g_ema, nets.g, 0.999, step=0)
    for old, new, cur in zip(before, nets.g_ema.parameters(), nets.g.parameters()):
        assert torch.allclose(new, 0.1 * old + 0.9 * cur, atol=1e-6)

    cfg = load_config(DTNConfig, None, TINY_DTN + ["steps=2", "ema_decay=0.5"])
    train_dtn(tiny_run["faces"], tiny_run["emoji"], tiny_run["encoder"], tmp_path / "run", cfg, show_progress=False)
    snap = checkpoint.load(tmp_path / "run" / "dtn.pt")
    state = checkpoint.load(sorted((tmp_path / "run").glob("state-*.pt"))[-1])
    ema, g = state["modules"]["g_ema"], state["modules"]["g"]
    assert any(not torch.equal(ema[k], g[k]) for k in g if g[k].is_floating_point())
    assert all(torch.equal(snap["state_dicts"]["generator"][k], ema[k]) for k in ema)


def test_ema_off_snapshots_g_itself(tiny_run):
    cfg, nets, *_ = tiny_setup(tiny_run, ema_decay=0.0)
    assert nets.g_ema is None


def test_r1_switches_on_and_off_and_penalises_real_gradients(tiny_run):
    cfg, nets, batch, opt_g, opt_d = tiny_setup(tiny_run)
    assert "R1" not in discriminator_step(nets, batch, cfg, opt_d, grad_scaler(batch.target.device))
    cfg, nets, batch, opt_g, opt_d = tiny_setup(tiny_run, r1_gamma=10.0, r1_every=2)
    assert "R1" not in discriminator_step(nets, batch, cfg, opt_d, grad_scaler(batch.target.device), step=1)
    parts = discriminator_step(nets, batch, cfg, opt_d, grad_scaler(batch.target.device), step=2)
    assert parts["R1"] > 0
    # the penalty is the squared input gradient of log p(real): zero for a D that ignores its input
    x = torch.rand(3, 3, 8, 8, requires_grad=True)
    flat = torch.zeros(3, 3) + x.sum() * 0
    assert losses.r1_penalty(flat, x).item() == 0
    a = x.flatten(1).sum(1) * 0.01       # real logit; the other two 0: d log p(real) / dx = (1 - p) * 0.01
    p_real = torch.exp(a) / (2 + torch.exp(a))
    expected = (((1 - p_real) * 0.01) ** 2 * x[0].numel()).mean()
    steep = torch.stack([a * 0, a * 0, a], 1)
    assert torch.allclose(losses.r1_penalty(steep, x), expected, rtol=1e-4)


def test_r1_changes_D_only_on_its_lazy_steps(tiny_run):
    """Same init, data and seed: R1 changes D's update on steps it runs, and nothing otherwise."""
    def d_after(step, **overrides):
        cfg, nets, batch, opt_g, opt_d = tiny_setup(tiny_run, **overrides)
        torch.manual_seed(1)
        discriminator_step(nets, batch, cfg, opt_d, grad_scaler(batch.target.device), step=step)
        return [p.detach().clone() for p in nets.D.parameters()]

    same = lambda a, b: all(torch.equal(x, y) for x, y in zip(a, b))  # noqa: E731
    plain = d_after(2)
    assert not same(plain, d_after(2, r1_gamma=10.0, r1_every=2))
    assert same(plain, d_after(3, r1_gamma=10.0, r1_every=2))


def test_diffaugment_switches_on_and_off_and_keeps_gradients():
    x = (torch.rand(4, 3, 16, 16) * 2 - 1).requires_grad_(True)
    torch.manual_seed(0)
    assert parse_policy("") == [] and torch.equal(diff_augment(x, ""), x)
    y = diff_augment(x, "color,translation,cutout")
    assert y.shape == x.shape and not torch.equal(y, x)
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        parse_policy("colour")


def test_diffaugment_reaches_D_in_both_steps(tiny_run, monkeypatch):
    import img2caricature.train.dtn as dtn

    seen = []
    monkeypatch.setattr(dtn, "diff_augment", lambda x, policy: seen.append(policy) or x)
    cfg, nets, batch, opt_g, opt_d = tiny_setup(tiny_run, diffaugment='"translation"')
    train_step(nets, batch, cfg, opt_g, opt_d, grad_scaler(batch.target.device), grad_scaler(batch.target.device))
    assert seen == ["translation", "translation"]   # D's step, then g's
    seen.clear()
    cfg, nets, batch, opt_g, opt_d = tiny_setup(tiny_run)
    train_step(nets, batch, cfg, opt_g, opt_d, grad_scaler(batch.target.device), grad_scaler(batch.target.device))
    assert seen == []


def test_a_128px_config_trains_two_steps(tiny_run, tmp_path):
    cfg = load_config(DTNConfig, None, TINY_DTN + ["steps=2", "output_size=128", "d_widths=[8,16,16,16,16]",
                                                    'diffaugment="color,translation,cutout"', "r1_gamma=1.0",
                                                    "r1_every=1"])
    train_dtn(tiny_run["faces"], tiny_run["emoji"], tiny_run["encoder"], tmp_path / "run", cfg, show_progress=False)
    snap = checkpoint.load(tmp_path / "run" / "dtn.pt")
    assert snap["config"]["generator"]["output_size"] == 128 and snap["step"] == 2


def test_snapshots_are_kept_every_snapshot_every_steps_to_pick_by_the_figures(tiny_run, tmp_path):
    cfg = load_config(DTNConfig, None, TINY_DTN + ["steps=6", "checkpoint_every=2", "snapshot_every=4",
                                                    "keep_states=1"])
    train_dtn(tiny_run["faces"], tiny_run["emoji"], tiny_run["encoder"], tmp_path / "run", cfg, show_progress=False)
    kept = sorted(p.name for p in (tmp_path / "run").glob("dtn-*.pt"))
    assert kept == ["dtn-00004.pt"]
    assert checkpoint.load(tmp_path / "run" / "dtn-00004.pt")["step"] == 4
    assert checkpoint.load(tmp_path / "run" / "dtn.pt")["step"] == 6


def test_a_snapshot_interval_that_checkpoints_never_reach_is_refused_when_the_config_is_read():
    with pytest.raises(UserError, match="multiple of checkpoint_every"):
        load_config(DTNConfig, None, TINY_DTN + ["checkpoint_every=4", "snapshot_every=6"])
