"""Where a DTN training step's time goes, and how close it comes to what the CPU can do:
FLOPs counted with torch.utils.flop_counter (matmuls and convolutions, forward and
backward; element-wise work such as BatchNorm, activations and Adam counts 0), the
machine's dense float32 matmul FLOP/s measured by a timed square-matmul loop, and the
step taken apart into the forward and backward passes of f, g and D, timed one by one
on the step's own shapes (f(x) cached, as in training)."""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from img2caricature.train.dtn import Batch, Nets, update_ema


def count_flops(fn: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    times = []
    for i in range(warmup + repeats):
        start = time.perf_counter()
        fn()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


class MatmulPeak:
    """Dense n x n float32 matmul FLOP/s (2 n^3 per product): the best of products timed now and
    then through a run (between its steps too), so it is sampled in the same moments, busy or
    quiet, as the steps it is compared with."""

    def __init__(self, n: int = 2048, dtype: torch.dtype = torch.float32):
        self.a, self.b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        self.flops, self.best = 2 * n**3, float("inf")
        torch.mm(self.a, self.b)

    def sample(self, seconds: float = 0.0) -> None:
        """One timed product, or as many as fit in `seconds`."""
        spent = 0.0
        while True:
            start = time.perf_counter()
            torch.mm(self.a, self.b)
            took = time.perf_counter() - start
            self.best, spent = min(self.best, took), spent + took
            if spent >= seconds:
                return

    @property
    def flops_per_s(self) -> float:
        return self.flops / self.best


def timed_backward(make_loss: Callable[[], torch.Tensor], repeats: int) -> tuple[float, int]:
    """(median seconds, FLOPs) of the backward pass alone: the forward runs untimed each time."""
    times, flops = [], 0
    for i in range(repeats + 1):
        loss = make_loss()
        start = time.perf_counter()
        if i == 0:
            flops = count_flops(loss.backward)
        else:
            loss.backward()
            times.append(time.perf_counter() - start)
    return statistics.median(times), flops


def step_parts(nets: Nets, batch: Batch, repeats: int = 5) -> dict[str, tuple[float, int]]:
    """(median seconds, FLOPs) of each part of a float32 step, on the step's shapes: g draws
    2B emoji, D judges 3B images twice (its own step: gradients for its weights; g's step: for
    its input only), f encodes B of g's emoji for L_CONST (gradients for its input), then the
    optimizers and the moving average. Each backward is timed alone, after an untimed forward."""
    g, D, f = nets.g, nets.D, nets.f
    z = torch.cat([batch.f_source, batch.f_target])
    with torch.no_grad():
        images = torch.cat([g(z), batch.target]).contiguous(memory_format=torch.channels_last)  # 3B
        fake = g(batch.f_source)

    def forward(fn: Callable[[], object]) -> tuple[float, int]:
        def run():
            with torch.no_grad():
                fn()
        return median_seconds(run, repeats), count_flops(run)

    def d_input_loss():
        D.requires_grad_(False)
        loss = D(images.detach().requires_grad_(True)).float().mean()
        D.requires_grad_(True)   # the graph is built: only the input needs gradients
        return loss

    opt = torch.optim.Adam(list(g.parameters()) + list(D.parameters()), lr=1e-12)
    for p in list(g.parameters()) + list(D.parameters()):
        p.grad = torch.zeros_like(p)

    def optimizers_and_ema():
        opt.step()
        if nets.g_ema is not None:
            update_ema(nets.g_ema, g, 0.999)

    d_forward = forward(lambda: D(images))
    return {
        "g forward": forward(lambda: g(z)),
        "g backward": timed_backward(lambda: g(z).float().mean(), repeats),
        "D forward x2": (2 * d_forward[0], 2 * d_forward[1]),
        "D backward, weights (D's step)": timed_backward(lambda: D(images).float().mean(), repeats),
        "D backward, input (g's step)": timed_backward(d_input_loss, repeats),
        "f forward (L_CONST)": forward(lambda: f.encode(fake)),
        "f backward (L_CONST)": timed_backward(
            lambda: f.encode(fake.detach().requires_grad_(True)).float().pow(2).mean(), repeats),
        "Adam + EMA": (median_seconds(optimizers_and_ema, repeats), 0),
    }
