"""What every training run shares: the run directory, its metrics log, its checkpoints,
and the step loop with a progress bar, periodic callbacks and a NaN guard.

Layout of a run directory:
    config.json            resolved options, written before the first step
    metrics.jsonl          one JSON object per logged step
    state-<step>.pt        training state for --resume (last K kept)
    <snapshot>.pt          weights for use (encoder.pt, dtn.pt, cyclegan.pt)
    samples/               sample grids
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn
from tqdm import tqdm

from img2caricature import checkpoint
from img2caricature.config import save_config, to_dict
from img2caricature.errors import UserError
from img2caricature.train.distributed import unwrap
from img2caricature.train.runlock import lock_run_dir


class NonFiniteLoss(Exception):
    pass


def start(out: Path, config: Any, resume: bool, device_name: str):
    """What every trainer does first: join the process group, set threads, record the
    config in the run directory, seed. Returns (Dist, run directory)."""
    from img2caricature.runtime import seed_everything
    from img2caricature.train import distributed

    d = distributed.setup(device_name)
    if getattr(config, "threads", 0):
        torch.set_num_threads(config.threads)
    out = prepare_run_dir(Path(out), config, resume, d.is_main)
    seed_everything(config.seed)
    return d, out


class RunningMeans:
    """Sums of per-step losses between two log lines."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.n = 0

    def add(self, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.n += 1

    def pop(self) -> dict[str, float]:
        means = {k: v / max(1, self.n) for k, v in self.sums.items()}
        self.sums, self.n = {}, 0
        return means


def prepare_run_dir(out: Path, config: Any, resume: bool, is_main: bool = True) -> Path:
    """Create `out` and record the config; refuse to silently overwrite a finished run."""
    out = Path(out)
    if not is_main:
        return out
    if resume:
        if latest_state(out) is None:
            raise UserError(f"--resume: no training state in {out} to resume from")
        previous = json.loads((out / "config.json").read_text()) if (out / "config.json").exists() else None
        current = json.loads(json.dumps(to_dict(config)))
        if previous is not None and previous != current:
            changed = sorted(k for k in previous if previous.get(k) != current.get(k))
            print(f"note: resuming with changed options: {', '.join(changed)}")
    elif latest_state(out) is not None:
        raise UserError(f"{out} already holds a run: pass --resume to continue it, or another --out")
    out.mkdir(parents=True, exist_ok=True)
    lock_run_dir(out)  # before the first write: a second run on this folder stops here
    save_config(config, out / "config.json")
    return out


def _states(out: Path) -> list[Path]:
    return sorted(Path(out).glob("state-*.pt"), key=lambda p: int(p.stem.split("-")[1]))


def latest_state(out: Path) -> Path | None:
    states = _states(out)
    return states[-1] if states else None


def save_state(out: Path, step: int, modules: dict[str, nn.Module], optimizers: dict[str, Any],
               extra: dict[str, Any] | None = None, keep: int = 2) -> Path:
    """Weights + optimisers + step + RNG, atomically; keeps the last `keep` states."""
    state = {
        "step": step,
        "modules": {k: unwrap(m).state_dict() for k, m in modules.items()},
        "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
        "rng": checkpoint.rng_state(),
        "extra": extra or {},
    }
    path = Path(out) / f"state-{step:08d}.pt"
    checkpoint.save_atomic(state, path)
    states = sorted(Path(out).glob("state-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
    for old in states[:-keep]:
        old.unlink()
    return path


def save_run(out: Path, step: int, modules: dict[str, nn.Module], optimizers: dict[str, Any],
             extra: dict[str, Any], keep: int, snapshot: dict[str, Any], snapshot_name: str) -> None:
    """A checkpoint of a run: the training state for --resume, then the snapshot for use."""
    save_state(out, step, modules, optimizers, extra=extra, keep=keep)
    checkpoint.save_atomic(snapshot, Path(out) / snapshot_name)


def _readable_state(out: Path, device: torch.device) -> dict[str, Any]:
    """The newest state that loads whole. A damaged newer one (empty, cut short: a crash or a
    full disk) is moved aside as `.broken`, and the run resumes from the one kept before it."""
    for path in reversed(_states(out)):
        try:
            state = checkpoint.load(path, map_location=device)
            if not {"step", "modules", "optimizers", "rng"} <= set(state):
                raise UserError(f"{path} is not a training state")
            return state
        except UserError as err:
            try:
                path.replace(path.with_name(path.name + ".broken"))
            except FileNotFoundError:
                pass  # another rank of a distributed run moved it first
            print(f"note: {err}; moved aside as {path.name}.broken, resuming from the state before it",
                  file=sys.stderr)
    raise UserError(f"--resume: no readable training state in {out}")


def load_state(out: Path, modules: dict[str, nn.Module], optimizers: dict[str, Any],
               device: torch.device) -> tuple[int, dict[str, Any]]:
    state = _readable_state(out, device)
    for k, m in modules.items():
        unwrap(m).load_state_dict(state["modules"][k])
    for k, o in optimizers.items():
        o.load_state_dict(state["optimizers"][k])
    checkpoint.set_rng_state({k: (v.cpu() if torch.is_tensor(v) else v) for k, v in state["rng"].items()})
    return int(state["step"]), state["extra"]


@dataclass
class MetricsLog:
    path: Path
    enabled: bool = True
    _tb: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.enabled:
            try:  # optional: TensorBoard when installed
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.path.parent / "tensorboard"))
            except Exception:
                self._tb = None

    def write(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        record = {"step": step, "time": round(time.time(), 3), **{k: round(float(v), 6) for k, v in values.items()}}
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        if self._tb is not None:
            for k, v in values.items():
                self._tb.add_scalar(k, v, step)

    def trim_after(self, step: int) -> None:
        """On resume, drop records a killed run logged after its last saved state, and a line
        it was killed while writing (half a JSON object)."""
        if not self.path.exists():
            return
        lines = [l for l in self.path.read_text(errors="replace").splitlines() if _step_of(l) <= step]
        self.path.write_text("".join(l + "\n" for l in lines))


def _step_of(line: str) -> float:
    """A record's step; infinity (never kept) for a line that is not a whole record."""
    try:
        record = json.loads(line)
        return float(record["step"]) if isinstance(record, dict) else math.inf
    except (ValueError, KeyError, TypeError):
        return math.inf


def check_finite(losses: dict[str, float], step: int) -> None:
    bad = [k for k, v in losses.items() if not math.isfinite(v)]
    if bad:
        raise NonFiniteLoss(f"step {step}: loss {bad[0]} is {losses[bad[0]]}")


@dataclass
class Every:
    """Call `fn(step)` every `interval` steps (and after the last step)."""
    interval: int
    fn: Callable[[int], None]


@dataclass
class StopEarly:
    """Stop this invocation before the configured last step (the run stays resumable):
    after `steps` more steps, or once `seconds` of wall time have passed."""
    steps: int | None = None
    seconds: float | None = None

    def reached(self, done: int, started: float) -> bool:
        return (self.steps is not None and done >= self.steps) or \
            (self.seconds is not None and time.time() - started >= self.seconds)


def run_steps(step_fn: Callable[[int], dict[str, float]], start: int, total: int,
              every: list[Every], desc: str, show: bool = True,
              on_nonfinite: Callable[[str], None] | None = None,
              stop: StopEarly | None = None) -> dict[str, float]:
    """Run steps start+1..total. `step_fn(step)` returns its losses as floats. The callbacks
    run every `interval` steps and at the last step run (also when stopping early).

    A non-finite loss stops the run (the last good state stays on disk) with a UserError."""
    losses: dict[str, float] = {}
    started = time.time()
    with tqdm(total=total, initial=start, desc=desc, disable=not show, dynamic_ncols=True) as bar:
        for step in range(start + 1, total + 1):
            losses = step_fn(step)
            try:
                check_finite(losses, step)
            except NonFiniteLoss as err:
                if on_nonfinite:
                    on_nonfinite(str(err))
                raise UserError(f"training stopped: {err}; the last good checkpoint is kept") from None
            bar.update(1)
            bar.set_postfix({k: f"{v:.3g}" for k, v in list(losses.items())[:5]}, refresh=False)
            last = step == total or (stop is not None and stop.reached(step - start, started))
            for e in every:
                if step % e.interval == 0 or last:
                    e.fn(step)
            if last:
                break
    return losses
