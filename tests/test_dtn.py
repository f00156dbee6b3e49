import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from img2caricature import checkpoint, losses
from img2caricature.config import load_config
from img2caricature.nets.dtn import FROM_SOURCE, FROM_TARGET, REAL_TARGET
from img2caricature.nets.encoder import load_encoder
from img2caricature.train.dtn import (Batch, DTNConfig, build_nets, discriminator_step, generator_losses,
                                      generator_step, train_dtn, train_step)
from img2caricature.train.common import cpu_has_bf16, grad_scaler
from img2caricature.train.run import StopEarly, as_floats
from img2caricature.translate import load_translator
from tests.conftest import TINY_DTN


def tiny_setup(tiny_run, **overrides):
    cfg = load_config(DTNConfig, None, TINY_DTN + [f"{k}={v}" for k, v in overrides.items()])
    torch.manual_seed(0)
    nets = build_nets(load_encoder(tiny_run["encoder"]), cfg, torch.device("cpu"))
    x_faces = torch.rand(4, 3, 152, 152) * 2 - 1
    x_emoji = torch.rand(4, 3, 152, 152) * 2 - 1
    batch = Batch(nets.f.encode(x_faces), nets.f.encode(x_emoji),
                  torch.nn.functional.interpolate(x_emoji, size=cfg.output_size, mode="area"))
    opt_g = torch.optim.Adam(nets.g.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(nets.D.parameters(), lr=1e-3, betas=(0.5, 0.999))
    return cfg, nets, batch, opt_g, opt_d


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_shapes(tiny_run):
    cfg, nets, batch, *_ = tiny_setup(tiny_run)
    out = nets.g(batch.f_source)
    assert out.shape == (4, 3, 64, 64) and out.min() >= -1 and out.max() <= 1
    assert nets.D(out).shape == (4, 3)
    cfg128, nets128, batch128, *_ = tiny_setup(tiny_run, output_size=128, d_widths="[8,16,16,16,16]")
    assert nets128.g(batch128.f_source).shape == (4, 3, 128, 128)


def test_one_step_updates_g_and_D_and_never_f(tiny_run):
    cfg, nets, batch, opt_g, opt_d = tiny_setup(tiny_run)
    f0, g0, d0 = snapshot(nets.f), snapshot(nets.g), snapshot(nets.D)
    parts = train_step(nets, batch, cfg, opt_g, opt_d, grad_scaler(batch.target.device), grad_scaler(batch.target.device))
    assert all(torch.isfinite(v) and not v.requires_grad for v in parts.values())  # tensors, cut from the graph
    assert {"L_D", "L_GANG", "L_CONST", "L_TID", "L_TV", "L_G"} <= set(parts)
    f1, g1, d1 = snapshot(nets.f), snapshot(nets.g), snapshot(nets.D)
    assert all(torch.equal(f0[k], f1[k]) for k in f0)  # bit-identical, buffers included
    changed = lambda a, b: [k for k in a if a[k].is_floating_point() and not torch.equal(a[k], b[k])]  # noqa: E731
    g_weights = [k for k in g0 if k.endswith("weight")]
    d_weights = [k for k in d0 if k.endswith("weight")]
    assert set(g_weights) <= set(changed(g0, g1))
    assert set(d_weights) <= set(changed(d0, d1))


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no native bfloat16")
def test_bfloat16_step_on_the_cpu_is_finite_and_keeps_f(tiny_run):
    cfg, nets, batch, opt_g, opt_d = tiny_setup(tiny_run, cpu_bf16="true")
    f0, g0 = snapshot(nets.f), snapshot(nets.g)
    parts = train_step(nets, batch, cfg, opt_g, opt_d, grad_scaler(batch.target.device), grad_scaler(batch.target.device))
    assert all(torch.isfinite(v) for v in parts.values())
    assert all(torch.equal(f0[k], v) for k, v in snapshot(nets.f).items())
    assert all(p.dtype == torch.float32 for p in nets.g.parameters())  # autocast: weights stay float32
    assert any(not torch.equal(g0[k], v) for k, v in snapshot(nets.g).items() if k.endswith("weight"))


def test_channels_last_changes_the_layout_not_the_step(tiny_run):
    results = {}
    for layout in ("true", "false"):
        # float32: bfloat16 kernels round differently per layout, and "auto" picks it on some CPUs
        cfg, nets, batch, opt_g, opt_d = tiny_setup(tiny_run, channels_last=layout, cpu_bf16="false")
        conv = nets.g.to_rgb[0].weight
        assert conv.is_contiguous(memory_format=torch.channels_last) == (layout == "true")
        parts = train_step(nets, batch, cfg, opt_g, opt_d, grad_scaler(batch.target.device),
                           grad_scaler(batch.target.device))
        results[layout] = as_floats(parts), [p.grad for p in nets.g.parameters()]  # g's gradients in its step
    (parts_cl, grads_cl), (parts, grads) = results["true"], results["false"]
    assert parts_cl == pytest.approx(parts, rel=1e-4, abs=1e-6)
    # summation order differs, and D's Adam step before g's magnifies that for near-zero gradients
    assert all((a - b).norm() <= 2e-3 * b.norm() for a, b in zip(grads_cl, grads))


def test_generator_step_computes_no_gradient_for_D_or_f(tiny_run):
    cfg, nets, batch, opt_g, opt_d = tiny_setup(tiny_run)
    d0 = snapshot(nets.D)
    generator_step(nets, batch, cfg, opt_g, grad_scaler(batch.target.device))
    assert all(p.grad is None for p in [*nets.D.parameters(), *nets.f.parameters()])
    assert all(p.requires_grad for p in nets.D.parameters())  # D trainable again for its own step
    assert all(torch.equal(v, nets.D.state_dict()[k]) for k, v in d0.items() if k.endswith("weight"))
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in nets.g.parameters())


def test_const_gradient_reaches_g_through_f_in_the_trainers_step(tiny_run):
    """L_CONST = d(f(g(f(x))), f(x)) is the paper's central loss: through the trainer's own step,
    it must change g's gradients (and give f none), so weighting it changes g's update."""
    grads = {}
    for alpha in (0.0, 1000.0):  # L_CONST is small on the tiny f: weighted so that it counts
        cfg, nets, batch, opt_g, opt_d = tiny_setup(tiny_run, alpha=alpha, beta=0.0, gamma=0.0, ema_decay=0.0)
        parts = train_step(nets, batch, cfg, opt_g, opt_d, grad_scaler(batch.target.device),
                           grad_scaler(batch.target.device))
        assert float(parts["L_CONST"]) > 0
        grads[alpha] = torch.cat([p.grad.flatten() for p in nets.g.parameters()])
        assert all(p.grad is None for p in nets.f.parameters())
    difference = (grads[1000.0] - grads[0.0]).norm()
    assert difference > 0.01 * grads[0.0].norm(), "L_CONST does not reach g"


def test_discriminator_classes_are_wired_right(tiny_run):
    """Train D alone on fixed inputs: it must learn the paper's three classes in order."""
    cfg, nets, batch, opt_g, opt_d = tiny_setup(tiny_run)
    scaler = grad_scaler(batch.target.device)
    # representations from two clearly different places, so g's two outputs differ
    batch = Batch(torch.randn(4, 16) + 3, torch.randn(4, 16) - 3, batch.target)
    for _ in range(60):
        discriminator_step(nets, batch, cfg, opt_d, scaler)
    with torch.no_grad():  # D as the step sees it: one batch of all three kinds
        logits = nets.D(torch.cat([nets.g(batch.f_source), nets.g(batch.f_target), batch.target]))
    ls, lt, lr = logits.argmax(1).split(4)
    assert (ls == FROM_SOURCE).all() and (lt == FROM_TARGET).all() and (lr == REAL_TARGET).all()


def test_the_generators_step_makes_both_kinds_of_fakes_pass_as_real(tiny_run):
    """L_GANG through the trainer's own generator step, against a D that has learnt the three
    classes: both g(f(s)) and g(f(t)) must come to pass as real emoji (a step that hands
    L_GANG the wrong slice of D's logits moves only one of them)."""
    cfg, nets, batch, opt_g, opt_d = tiny_setup(tiny_run, alpha=0.0, beta=0.0, gamma=0.0, ema_decay=0.0)
    scaler = grad_scaler(batch.target.device)
    batch = Batch(torch.randn(4, 16) + 3, torch.randn(4, 16) - 3, batch.target)
    for _ in range(60):
        discriminator_step(nets, batch, cfg, opt_d, scaler)

    def p_real():
        with torch.no_grad():
            logits = nets.D(torch.cat([nets.g(batch.f_source), nets.g(batch.f_target), batch.target]))
        p = logits.softmax(1)[:, REAL_TARGET]
        return p[:4].mean().item(), p[4:8].mean().item()

    assert max(p_real()) < 0.1  # D tells both kinds of fakes from real emoji
    for _ in range(20):
        generator_step(nets, batch, cfg, opt_g, scaler, alpha=0.0)
    from_source, from_target = p_real()
    assert from_source > 0.5 and from_target > 0.5, (from_source, from_target)


def test_gang_pushes_generated_towards_real():
    confident_real = torch.tensor([[-9.0, -9.0, 9.0]] * 2)
    confident_fake = torch.tensor([[9.0, -9.0, -9.0]] * 2)
    assert losses.dtn_gang_loss(confident_real, confident_real) < 1e-3
    assert losses.dtn_gang_loss(confident_fake, confident_fake) > 10
    loss, parts = losses.dtn_discriminator_loss(torch.tensor([[9.0, -9, -9]]), torch.tensor([[-9.0, 9, -9]]),
                                                torch.tensor([[-9.0, -9, 9]]))
    assert loss < 1e-3 and set(parts) == {"L_D", "D/from_source", "D/from_target", "D/real"}


def test_weights_are_used(tiny_run):
    cfg, nets, batch, *_ = tiny_setup(tiny_run, alpha=0.0, beta=0.0, gamma=0.0)
    total, parts = generator_losses(nets, batch, cfg)
    assert total.item() == pytest.approx(float(parts["L_GANG"]), rel=1e-5)
    cfg2, nets2, batch2, *_ = tiny_setup(tiny_run, alpha=100.0, beta=1.0, gamma=0.05)
    total2, p = generator_losses(nets2, batch2, cfg2)
    p = as_floats(p)
    expected = p["L_GANG"] + 100 * p["L_CONST"] + p["L_TID"] + 0.05 * p["L_TV"]
    assert total2.item() == pytest.approx(expected, rel=1e-4)


def _losses(run_dir):
    return {r["step"]: r["L_G"] for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())}


def test_train_writes_snapshot_samples_and_resume_reproduces(tiny_run, tmp_path):
    cfg = load_config(DTNConfig, None, TINY_DTN + ["steps=4"])
    t = tiny_run
    train_dtn(t["faces"], t["emoji"], t["encoder"], tmp_path / "straight", cfg, show_progress=False)
    train_dtn(t["faces"], t["emoji"], t["encoder"], tmp_path / "resumed", cfg, show_progress=False,
              stop=StopEarly(steps=2))
    assert sorted(_losses(tmp_path / "resumed")) == [1, 2]
    train_dtn(t["faces"], t["emoji"], t["encoder"], tmp_path / "resumed", cfg, resume=True, show_progress=False)
    assert _losses(tmp_path / "straight") == pytest.approx(_losses(tmp_path / "resumed"), rel=1e-5)
    run_dir = tmp_path / "straight"
    assert sorted(p.name for p in run_dir.glob("state-*.pt")) == ["state-00000002.pt", "state-00000004.pt"]
    assert (run_dir / "samples" / "faces-00000004.png").exists() and (run_dir / "samples" / "emoji-00000004.png").exists()
    assert (run_dir / "curves.png").exists()
    # g and D learn between two states (the trainer wires each optimiser to its network)
    early, late = (checkpoint.load(run_dir / f"state-0000000{s}.pt")["modules"] for s in (2, 4))
    for net in ("g", "D", "g_ema"):
        assert any(not torch.equal(early[net][k], late[net][k]) for k in early[net] if k.endswith("weight")), net
    translator = load_translator(run_dir / "dtn.pt")  # one file is enough: g and its f
    emoji = translator(torch.rand(2, 3, 152, 152) * 2 - 1)
    assert emoji.shape == (2, 3, 64, 64)
    assert json.loads((run_dir / "config.json").read_text())["steps"] == 4
    snap, enc = checkpoint.load(run_dir / "dtn.pt"), checkpoint.load(t["encoder"])
    assert snap["schema"] == 2 and snap["split"]["faces"] == enc["split"]["faces"]  # f's split, recorded
    assert snap["heldout_identities"] == enc["heldout_identities"] and len(snap["heldout_emoji"]) == 8


def test_a_published_encoder_by_name_needs_no_pretraining_run(tmp_path):
    """`--encoder NAME`: a frozen f from the registry; the split file is made by train-dtn itself."""
    from img2caricature import registry
    from img2caricature.cli import main
    from tests.conftest import make_emoji, make_faces
    from tests.test_registry import MeanColour, PatchConfig

    registry.register_encoder("mean-colour", build=lambda config: MeanColour(PatchConfig(**config)),
                              pretrained=lambda: MeanColour(PatchConfig()))
    try:
        faces, emoji = make_faces(tmp_path / "faces.h5", n_ids=5, per_id=2), make_emoji(tmp_path / "emoji.h5", n=20)
        args = ["train-dtn", "--faces", str(faces), "--emoji", str(emoji), "--encoder", "mean-colour",
                "--out", str(tmp_path / "dtn"), "--steps", "2", "--device", "cpu"]
        assert main(args + sum([["--set", s] for s in TINY_DTN], [])) == 0
        snap = checkpoint.load(tmp_path / "dtn" / "dtn.pt")
        assert snap["encoder"]["pretrained"] == "mean-colour" and (tmp_path / "split.json").exists()
        assert len(snap["heldout_identities"]) == 2 and snap["split"]["faces"] is not None
        assert load_translator(tmp_path / "dtn" / "dtn.pt")(torch.rand(1, 3, 152, 152)).shape == (1, 3, 64, 64)
    finally:
        del registry.ENCODERS["mean-colour"]
    assert main(args) == 2  # the name is not known once unregistered: one line, exit 2


def test_nan_loss_stops_with_a_clear_error(tiny_run, tmp_path):
    from img2caricature.errors import UserError

    cfg = load_config(DTNConfig, None, TINY_DTN + ["steps=4", "lr_g=1e30", "lr_d=1e30"])
    t = tiny_run
    with pytest.raises(UserError, match="training stopped: step .* is not finite"):
        train_dtn(t["faces"], t["emoji"], t["encoder"], tmp_path / "nan", cfg, show_progress=False)


def test_a_nan_between_checkpoints_keeps_the_last_good_one(tiny_run, tmp_path, monkeypatch):
    """A loss goes NaN at step 3; logs and checkpoints come at 2, 4, 6: step 4 must not be saved."""
    from img2caricature.errors import UserError
    from img2caricature.train import dtn

    real_step = dtn.train_step

    def nan_at_step_3(*args, **kwargs):
        parts = real_step(*args, **kwargs)
        return parts | ({"L_TID": torch.tensor(float("nan"))} if kwargs.get("step", args[-1]) == 3 else {})

    monkeypatch.setattr(dtn, "train_step", nan_at_step_3)
    t = tiny_run
    cfg = load_config(DTNConfig, None, TINY_DTN + ["steps=6", "log_every=2"])
    with pytest.raises(UserError, match="training stopped: step 4: loss L_TID is not finite; the last good checkpoint"):
        train_dtn(t["faces"], t["emoji"], t["encoder"], tmp_path / "nan", cfg, show_progress=False)
    assert sorted(p.name for p in (tmp_path / "nan").glob("state-*.pt")) == ["state-00000002.pt"]
    assert checkpoint.load(tmp_path / "nan" / "dtn.pt")["step"] == 2
    assert [r["step"] for r in map(json.loads, (tmp_path / "nan" / "metrics.jsonl").read_text().splitlines())] == [2]
    emoji = load_translator(tmp_path / "nan" / "dtn.pt")(torch.rand(2, 3, 152, 152) * 2 - 1)
    assert torch.isfinite(emoji).all()


def test_torchrun_two_processes_on_cpu(tiny_run, tmp_path):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    args = [torchrun, "--standalone", "--nproc_per_node", "2", "-m", "img2caricature", "train-dtn",
            "--faces", str(tiny_run["faces"]), "--emoji", str(tiny_run["emoji"]), "--encoder", str(tiny_run["encoder"]),
            "--out", str(tmp_path / "ddp"), "--steps", "2", "--device", "cpu"] + sum([["--set", s] for s in TINY_DTN], [])
    out = subprocess.run(args, capture_output=True, text=True, timeout=240, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert checkpoint.load(tmp_path / "ddp" / "state-00000002.pt")["step"] == 2


def test_const_weight_ramps_in_only_when_asked():
    from img2caricature.train.dtn import const_weight

    paper = DTNConfig(alpha=100.0)
    assert const_weight(1, paper) == 100.0
    ramped = DTNConfig(alpha=10.0, const_ramp_steps=100)
    assert [const_weight(s, ramped) for s in (0, 50, 100, 500)] == [0.0, 5.0, 10.0, 10.0]
