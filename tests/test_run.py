"""The pieces every trainer shares: the step loop's NaN guard, losses kept as tensors, loss
curves without matplotlib, and bfloat16 chosen by measurement."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from img2caricature.errors import UserError
from img2caricature.train import precision
from img2caricature.train.curves import SMOOTH, plot_curves
from img2caricature.train.run import Every, RunningMeans, run_steps


def test_a_non_finite_loss_stops_before_anything_is_saved_from_it():
    saved, logged = [], []
    losses = {1: 1.0, 2: 0.5, 3: float("nan"), 4: 0.2}

    def step(s):
        return {"L": torch.tensor(losses[s]), "L_other": torch.tensor(1.0)}

    with pytest.raises(UserError, match=r"training stopped: step 4: loss L is not finite; the last good checkpoint"):
        run_steps(step, 0, 4, [Every(2, logged.append), Every(2, saved.append)], desc="t", show=False)
    assert saved == [2] and logged == [2]  # step 3's NaN is found before step 4's save


def test_running_means_keep_tensors_until_logged():
    running = RunningMeans()
    for v in (1.0, 2.0, 3.0):
        running.add({"L": torch.tensor(v), "lr": 0.1})
    assert torch.is_tensor(running.sums["L"])  # no float() per step
    assert running.pop() == pytest.approx({"L": 2.0, "lr": 0.1}) and running.pop() == {}


def test_loss_curves_are_drawn_without_matplotlib(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text("".join(json.dumps({"step": s, "L_D": 10.0 / s, "val/top1": s / 20}) + "\n"
                               for s in range(1, 21)) + '{"step": 21, "L_D"')   # a killed run's half line
    out = plot_curves(metrics, tmp_path / "curves.png", cols=2)
    with Image.open(out) as img:
        assert img.format == "PNG"
        pixels = np.asarray(img.convert("RGB"))
    ys, xs = np.nonzero((pixels == SMOOTH).all(-1))
    falling = xs < pixels.shape[1] // 2            # L_D, left panel: falls from top left to bottom right
    left, right = xs[falling] < np.median(xs[falling]), xs[falling] >= np.median(xs[falling])
    assert ys[falling][left].mean() < ys[falling][right].mean()
    rising = ~falling                              # val/top1, right panel: rises
    left, right = xs[rising] < np.median(xs[rising]), xs[rising] >= np.median(xs[rising])
    assert ys[rising][left].mean() > ys[rising][right].mean()


@pytest.fixture
def fresh_probe(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    precision.bf16_measured_faster.cache_clear()
    calls = []
    yield calls
    precision.bf16_measured_faster.cache_clear()


@pytest.mark.parametrize("speedup, expected", [(1.3, True), (0.74, False), (1.02, False)])
def test_auto_picks_bfloat16_only_where_measured_faster(fresh_probe, monkeypatch, speedup, expected):
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    monkeypatch.setattr(precision, "measure_speedup", lambda: fresh_probe.append(1) or speedup)
    assert precision.use_cpu_bf16("auto") is expected
    from img2caricature.train.common import autocast

    with autocast(torch.device("cpu"), "auto"):
        assert torch.is_autocast_enabled("cpu") is expected
    # measured once per machine: a new process reads the cache file
    precision.bf16_measured_faster.cache_clear()
    assert precision.use_cpu_bf16("auto") is expected and fresh_probe == [1]
    cached = json.loads(precision.cache_file().read_text())
    assert cached[precision.machine_key()]["speedup"] == speedup


def test_auto_never_probes_emulated_bfloat16(fresh_probe, monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    monkeypatch.setattr(precision, "measure_speedup", lambda: fresh_probe.append(1) or 9.9)
    assert precision.use_cpu_bf16("auto") is False and fresh_probe == []
    assert precision.use_cpu_bf16(False) is False and precision.use_cpu_bf16(True) is True  # true: as asked


def test_the_probe_measures_both_precisions():
    speedup = precision.measure_speedup(steps=1, warmup=0)
    assert 0.05 < speedup < 20
