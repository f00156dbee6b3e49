"""bfloat16 on the CPU by measurement: `cpu_bf16 = "auto"` picks bfloat16 only where a short
timed probe finds it faster than float32 on this machine.

Native bfloat16 (AVX512-BF16) is not enough: without AMX's matrix units a CPU converts and
accumulates bfloat16 at no gain, and the whole DTN step measured 0.74x float32 on such a
CPU. The probe times a convolution stack shaped like our networks' (forward and backward,
float32 and bfloat16 alternating, median of several steps), once per machine: the answer
is cached in ~/.cache/img2caricature/precision.json, keyed by CPU, torch version and threads.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable, Literal, Union

import torch
from torch import nn

from img2caricature.runtime import log

CpuBf16 = Union[bool, Literal["auto"]]   # a config's `cpu_bf16`: true, false or "auto"
MARGIN = 1.1   # bfloat16 must be this much faster: a tie, or probe noise, keeps float32


@functools.cache  # asked at every autocast(); the answer never changes
def cpu_has_bf16() -> bool:
    """Whether this CPU runs bfloat16 natively (AVX512-BF16 / AMX); without it bfloat16 is
    emulated and always slower than float32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cache_file() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "img2caricature" / "precision.json"


def machine_key() -> str:
    """What decides the answer: the CPU (model and flags), torch's version, the thread count."""
    cpu = platform.processor() or platform.machine()
    try:
        info = Path("/proc/cpuinfo").read_text()
        model = next((l.split(":", 1)[1].strip() for l in info.splitlines() if l.startswith("model name")), cpu)
        flags = next((l.split(":", 1)[1] for l in info.splitlines() if l.startswith("flags")), "")
        cpu = f"{model} {hashlib.sha256(flags.encode()).hexdigest()[:8]}"
    except OSError:
        pass
    return f"{cpu} | torch {torch.__version__} | {torch.get_num_threads()} threads"


def probe_step_seconds(bf16: bool, batch: int = 32, size: int = 32) -> Callable[[], float]:
    """One timed forward + backward of a conv stack like our encoders' and D's (3x3 and 4x4
    strided convolutions, BatchNorm, ReLU), in float32 or bfloat16 autocast."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 32, 3, 1, 1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.Conv2d(64, 64, 3, 1, 1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 10)).to(memory_format=torch.channels_last)
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=torch.channels_last)

    def step() -> float:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = net(x).float().square().mean()
        loss.backward()
        return time.perf_counter() - start

    return step


def measure_speedup(steps: int = 6, warmup: int = 2) -> float:
    """float32 time / bfloat16 time of the probe step (> 1: bfloat16 is faster). The two
    alternate, so a busy neighbour slows both alike."""
    f32, bf16 = probe_step_seconds(False), probe_step_seconds(True)
    times: dict[bool, list[float]] = {False: [], True: []}
    for i in range(steps + warmup):
        for kind, step in ((False, f32), (True, bf16)):
            t = step()
            if i >= warmup:
                times[kind].append(t)
    return statistics.median(times[False]) / statistics.median(times[True])


@functools.cache
def bf16_measured_faster() -> bool:
    """The probe's answer for this machine, from the cache file when it has one."""
    key, path = machine_key(), cache_file()
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):
        cached = {}
    entry = cached.get(key) if isinstance(cached, dict) else None
    if not isinstance(entry, dict) or "speedup" not in entry:
        entry = {"speedup": round(measure_speedup(), 3), "measured": time.strftime("%Y-%m-%d %H:%M")}
        cached = {**(cached if isinstance(cached, dict) else {}), key: entry}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cached, indent=1) + "\n")
            tmp.replace(path)
        except OSError:
            pass  # a read-only home: measure again next time
    faster = entry["speedup"] >= MARGIN
    log.info(f"cpu_bf16 = auto: {'bfloat16' if faster else 'float32'} (bfloat16 ran at {entry['speedup']:.2f}x "
             f"float32 on this CPU; cached in {path})")
    return faster


def use_cpu_bf16(setting: CpuBf16) -> bool:
    """What a config's `cpu_bf16` means on this machine: true always, false never, "auto" where
    the CPU has native bfloat16 and the probe measured it faster (emulated is always slower)."""
    if setting == "auto":
        return cpu_has_bf16() and bf16_measured_faster()
    if setting and not cpu_has_bf16():
        _warn_emulated()
    return bool(setting)


@functools.cache
def _warn_emulated() -> None:
    log.warning("cpu_bf16 = true on a CPU without native bfloat16: emulated, slower than float32 "
                "(cpu_bf16 = \"auto\" decides by measurement)")
