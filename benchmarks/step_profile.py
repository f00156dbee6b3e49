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


def matmul_flops_per_s(n: int = 2048, seconds: float = 2.0, dtype: torch.dtype = torch.float32) -> float:
    """Dense n x n matmul FLOP/s (2 n^3 per product): the best of repeated timed products for
    about `seconds`, so a neighbour's burst lowers the figure less than a mean would."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    best, spent = float("inf"), 0.0
    while spent < seconds:
        start = time.perf_counter()
        torch.mm(a, b)
        took = time.perf_counter() - start
        best, spent = min(best, took), spent + took
    return 2 * n**3 / best


def step_parts(nets: Nets, batch: Batch, repeats: int = 3) -> dict[str, tuple[float, int]]:
    """(median seconds, FLOPs) of each part of a float32 step, on the step's shapes: g draws
    2B emoji, D judges 3B images twice (its own step: weight gradients; g's step: input
    gradients), f encodes B of g's emoji for L_CONST, and the optimizers and the average."""
    g, D, f = nets.g, nets.D, nets.f
    z = torch.cat([batch.f_source, batch.f_target])
    with torch.no_grad():
        images = torch.cat([g(z), batch.target]).contiguous(memory_format=torch.channels_last)  # 3B
        fake = g(batch.f_source)

    def g_forward():
        with torch.no_grad():
            g(z)

    def g_both():
        g(z).float().mean().backward()

    def d_forward():
        with torch.no_grad():
            D(images)

    def d_both():   # D's step: gradients for D's weights
        D(images).float().mean().backward()

    def d_input():  # g's step: D frozen, gradients to its input only
        D.requires_grad_(False)
        try:
            D(images.requires_grad_(True)).float().mean().backward()
        finally:
            D.requires_grad_(True)
            images.requires_grad_(False)

    def f_forward():
        with torch.no_grad():
            f.encode(fake)

    def f_input():  # L_CONST: f frozen, gradients to g's emoji
        f.encode(fake.requires_grad_(True)).float().pow(2).mean().backward()
        fake.requires_grad_(False)

    opt = torch.optim.Adam(list(g.parameters()) + list(D.parameters()), lr=1e-12)
    for p in list(g.parameters()) + list(D.parameters()):
        p.grad = torch.zeros_like(p)

    def optimizers_and_ema():
        opt.step()
        if nets.g_ema is not None:
            update_ema(nets.g_ema, g, 0.999)

    timed = {"g forward (2B)": g_forward, "g forward + backward": g_both, "D forward (3B)": d_forward,
             "D forward + backward (weights)": d_both, "D forward + backward (input, g's step)": d_input,
             "f forward (B, L_CONST)": f_forward, "f forward + backward (input)": f_input,
             "Adam (g, D) + EMA": optimizers_and_ema}
    return {name: (median_seconds(fn, repeats), count_flops(fn)) for name, fn in timed.items()}


def step_breakdown(parts: dict[str, tuple[float, int]]) -> dict[str, tuple[float, int]]:
    """The parts as a step runs them: g forward once, its backward once; D forward + weight
    backward (D's step) and forward + input backward (g's step); f forward + input backward;
    the optimizers. Backward times are (forward + backward) - forward."""
    def minus(a: str, b: str) -> tuple[float, int]:
        return parts[a][0] - parts[b][0], parts[a][1] - parts[b][1]

    return {
        "g forward": parts["g forward (2B)"],
        "g backward": minus("g forward + backward", "g forward (2B)"),
        "D forward x2": (2 * parts["D forward (3B)"][0], 2 * parts["D forward (3B)"][1]),
        "D backward, weights (D's step)": minus("D forward + backward (weights)", "D forward (3B)"),
        "D backward, input (g's step)": minus("D forward + backward (input, g's step)", "D forward (3B)"),
        "f forward (L_CONST)": parts["f forward (B, L_CONST)"],
        "f backward (L_CONST)": minus("f forward + backward (input)", "f forward (B, L_CONST)"),
        "Adam + EMA": parts["Adam (g, D) + EMA"],
    }
