"""L_CONST2: a second, frozen f that only judges g's emoji (DTNConfig.second_f)."""

import json

import pytest
import torch

from img2caricature.config import load_config
from img2caricature.errors import UserError
from img2caricature.nets.encoder import load_encoder
from img2caricature.train.common import grad_scaler
from img2caricature.train.dtn import (Batch, DTNConfig, build_nets, generator_losses, second_f_snapshot, train_dtn,
                                      train_step)
from img2caricature.train.run import as_floats
from tests.conftest import TINY_DTN


def setup(tiny_run, **overrides):
    """Tiny nets with f2 = a second copy of the tiny f (so L_CONST2 must equal L_CONST)."""
    cfg = load_config(DTNConfig, None, TINY_DTN + [f"{k}={v}" for k, v in overrides.items()])
    torch.manual_seed(0)
    trainable = load_encoder(tiny_run["encoder"]).train().requires_grad_(True)   # build_nets must freeze it
    nets = build_nets(load_encoder(tiny_run["encoder"]), cfg, torch.device("cpu"), f2=trainable)
    faces, emoji = torch.rand(4, 3, 152, 152) * 2 - 1, torch.rand(4, 3, 152, 152) * 2 - 1
    batch = Batch(nets.f.encode(faces), nets.f.encode(emoji),
                  torch.nn.functional.interpolate(emoji, size=cfg.output_size, mode="area"),
                  nets.f2.encode(faces))
    return cfg, nets, batch


def test_l_const2_is_f2s_distance_and_weighted_by_alpha2(tiny_run):
    cfg, nets, batch = setup(tiny_run, alpha=100.0, alpha2=7.0, beta=1.0, gamma=0.05)
    total, parts = generator_losses(nets, batch, cfg)
    p = as_floats(parts)
    assert p["L_CONST2"] == pytest.approx(p["L_CONST"], rel=1e-5) and p["L_CONST2"] > 0   # f2 is f here
    expected = p["L_GANG"] + 100 * p["L_CONST"] + 7 * p["L_CONST2"] + p["L_TID"] + 0.05 * p["L_TV"]
    assert total.item() == pytest.approx(expected, rel=1e-4)


def test_l_const2_reaches_g_and_never_f2(tiny_run):
    grads = {}
    for alpha2 in (0.0, 1000.0):
        cfg, nets, batch = setup(tiny_run, alpha=0.0, alpha2=alpha2, beta=0.0, gamma=0.0, ema_decay=0.0)
        f2_before = {k: v.clone() for k, v in nets.f2.state_dict().items()}
        opt_g, opt_d = torch.optim.Adam(nets.g.parameters()), torch.optim.Adam(nets.D.parameters())
        train_step(nets, batch, cfg, opt_g, opt_d, grad_scaler(batch.target.device), grad_scaler(batch.target.device))
        grads[alpha2] = torch.cat([p.grad.flatten() for p in nets.g.parameters()])
        assert all(p.grad is None for p in nets.f2.parameters())
        assert all(torch.equal(v, nets.f2.state_dict()[k]) for k, v in f2_before.items())
    assert (grads[1000.0] - grads[0.0]).norm() > 0.01 * grads[0.0].norm(), "L_CONST2 does not reach g"


def test_a_run_with_a_second_f_logs_l_const2_cached_or_not(tiny_run, tmp_path):
    t = tiny_run
    cfg = load_config(DTNConfig, None, TINY_DTN + ["steps=2", f"second_f='{t['encoder']}'"])
    train_dtn(t["faces"], t["emoji"], t["encoder"], tmp_path / "run", cfg, show_progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["L_CONST2"] > 0 for r in rows if "L_G" in r)
    # cached and uncached f2(s) are the same numbers: one step of each from the same seed
    cfg_uncached = load_config(DTNConfig, None, TINY_DTN + ["steps=1", "cache_f=false", f"second_f='{t['encoder']}'"])
    train_dtn(t["faces"], t["emoji"], t["encoder"], tmp_path / "uncached", cfg_uncached, show_progress=False)
    first = json.loads((tmp_path / "uncached" / "metrics.jsonl").read_text().splitlines()[0])
    assert first["L_CONST2"] == pytest.approx(rows[0]["L_CONST2"], rel=1e-3)


def test_the_second_f_can_be_the_f_inside_a_dtn_snapshot(tiny_run, tmp_path):
    t = tiny_run
    cfg = load_config(DTNConfig, None, TINY_DTN + ["steps=1"])
    train_dtn(t["faces"], t["emoji"], t["encoder"], tmp_path / "run", cfg, show_progress=False)
    from_dtn = second_f_snapshot(str(tmp_path / "run" / "dtn.pt"))
    from_file = second_f_snapshot(str(t["encoder"]))
    assert from_dtn["kind"] == "encoder" and from_dtn["config"] == from_file["config"]
    assert all(torch.equal(v, from_file["state_dicts"]["encoder"][k])
               for k, v in from_dtn["state_dicts"]["encoder"].items())


def test_a_g_that_reads_f2_carries_f2_in_its_model_file(tiny_run, tmp_path):
    """g_reads_f2: g's input ends with f2(x), and the model file carries f2 to put it there."""
    from img2caricature.translate import load_translator

    t = tiny_run
    cfg = load_config(DTNConfig, None, TINY_DTN + ["steps=2", f"second_f='{t['encoder']}'", "g_reads_f2=true"])
    train_dtn(t["faces"], t["emoji"], t["encoder"], tmp_path / "run", cfg, show_progress=False)
    model = load_translator(tmp_path / "run" / "dtn.pt").eval()
    assert model.encoder2 is not None
    assert model.generator.cfg.input_dim == model.encoder.dim + model.encoder2.dim
    faces = torch.rand(2, 3, 152, 152) * 2 - 1
    seen = []
    model.generator.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    with torch.no_grad():
        for p in model.encoder2.parameters():   # f2 here is a copy of the tiny f: make it another one
            p.add_(0.5 * torch.randn_like(p))
        model(faces)
        assert not torch.allclose(model.encoder2.encode(faces), model.encoder.encode(faces), atol=1e-3)
        assert torch.equal(seen[0][:, model.encoder.dim:], model.encoder2.encode(faces))   # f2(x) reaches g
        assert torch.equal(seen[0][:, :model.encoder.dim], model.encoder.encode(faces))
    with pytest.raises(UserError, match="needs second_f"):
        train_dtn(t["faces"], t["emoji"], t["encoder"], tmp_path / "bad",
                  load_config(DTNConfig, None, TINY_DTN + ["steps=1", "g_reads_f2=true"]), show_progress=False)


def test_a_g_warm_started_to_read_f2_first_draws_as_before(tiny_run, tmp_path):
    """init_from a g that read f(x) alone: f2's new input rows start at zero, so the bigger g
    draws exactly what the old one drew, whatever f2 says."""
    from img2caricature import registry
    from img2caricature.train.dtn import warm_start

    t = tiny_run
    base = load_config(DTNConfig, None, TINY_DTN + ["steps=2"])
    train_dtn(t["faces"], t["emoji"], t["encoder"], tmp_path / "base", base, show_progress=False)
    snap = registry.load_snapshot(tmp_path / "base" / "dtn.pt")
    f, f2 = load_encoder(t["encoder"]), load_encoder(t["encoder"])
    cfg = load_config(DTNConfig, None, TINY_DTN + ["g_reads_f2=true", f"second_f='{t['encoder']}'"])
    nets = build_nets(f, cfg, torch.device("cpu"), f2=f2)
    warm_start(nets.g, snap, registry.load_encoder_snapshot(t["encoder"]), f2_inputs=f2.dim)
    old_g = registry.translator_from_snapshot(snap).generator.eval()
    z, z2 = torch.randn(3, f.dim), torch.randn(3, f2.dim)
    with torch.no_grad():
        assert torch.allclose(nets.g.eval()(torch.cat([z, z2], 1)), old_g(z), atol=1e-6)
    # the input layer itself (a tiny g's emoji hardly depend on its input): old rows kept, f2's zero
    key = next(iter(old_g.state_dict()))
    grown, before = nets.g.state_dict()[key], old_g.state_dict()[key]
    assert grown.shape[0] == f.dim + f2.dim and torch.equal(grown[:f.dim], before)
    assert not grown[f.dim:].any()
