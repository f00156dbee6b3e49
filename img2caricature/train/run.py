"""What every training run shares: the run directory, its metrics log, its checkpoints,
the step loop with a progress bar, periodic callbacks and a NaN guard, and the trainer
skeleton (`Trainer` + `train`) the encoder, DTN and CycleGAN trainers are declared on.

Layout of a run directory:
    config.json            resolved options, written before the first step
    metrics.jsonl          one JSON object per logged step
    state-<step>.pt        training state for --resume (last K kept)
    <snapshot>.pt          weights for use (encoder.pt, dtn.pt, cyclegan.pt)
    <snapshot>-<step>.pt   the same, kept every `snapshot_every` steps (to pick one by the figures)
    samples/               sample grids
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Union

import torch
from torch import nn
from tqdm import tqdm

from img2caricature import checkpoint
from img2caricature.config import save_config, to_dict
from img2caricature.errors import UserError
from img2caricature.runtime import log
from img2caricature.train import distributed
from img2caricature.train.curves import write_curves
from img2caricature.train.distributed import unwrap
from img2caricature.train.runlock import lock_run_dir


class NonFiniteLoss(Exception):
    pass


def start(out: Path, config: Any, resume: bool, device_name: str):
    """What every trainer does first: join the process group, set threads, record the
    config in the run directory, seed. Returns (Dist, run directory)."""
    from img2caricature.runtime import seed_everything

    d = distributed.setup(device_name)
    if getattr(config, "threads", 0):
        torch.set_num_threads(config.threads)
    out = prepare_run_dir(Path(out), config, resume, d.is_main)
    seed_everything(config.seed)
    return d, out


Number = Union[float, torch.Tensor]


def as_floats(values: dict[str, Number]) -> dict[str, float]:
    """Loss tensors -> floats with one host sync for all of them (plain floats pass through)."""
    tensors = {k: v for k, v in values.items() if torch.is_tensor(v)}
    floats = dict(zip(tensors, torch.stack([v.detach().float().reshape(()) for v in tensors.values()]).tolist())) \
        if tensors else {}
    return {k: floats[k] if k in floats else float(v) for k, v in values.items()}


class RunningMeans:
    """Sums of per-step losses between two log lines. Losses stay tensors (no host sync per
    step); they become floats once, when logged."""

    def __init__(self) -> None:
        self.sums: dict[str, Number] = {}
        self.n = 0

    def add(self, values: dict[str, Number]) -> None:
        for k, v in values.items():
            v = v.detach() if torch.is_tensor(v) else v
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.n += 1

    def pop(self) -> dict[str, float]:
        means = {k: v / max(1, self.n) for k, v in as_floats(self.sums).items()}
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
             extra: dict[str, Any], keep: int, snapshot: dict[str, Any], snapshot_name: str,
             keep_snapshot: bool = False) -> None:
    """A checkpoint of a run: the training state for --resume, then the snapshot for use, and
    with `keep_snapshot` a copy of it named by the step (dtn.pt -> dtn-01000.pt), never removed."""
    save_state(out, step, modules, optimizers, extra=extra, keep=keep)
    checkpoint.save_atomic(snapshot, Path(out) / snapshot_name)
    if keep_snapshot:
        name = Path(snapshot_name)
        checkpoint.save_atomic(snapshot, Path(out) / f"{name.stem}-{step:05d}{name.suffix}")


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


class FiniteGuard:
    """Whether every loss since the last check was finite, kept as tensors (NaN and inf
    propagate through a sum), so that the check costs one host sync per callback, not per step."""

    def __init__(self) -> None:
        self.sums: dict[str, Number] = {}

    def add(self, losses: dict[str, Number]) -> None:
        for k, v in losses.items():
            v = v.detach().float() if torch.is_tensor(v) else v
            self.sums[k] = self.sums.get(k, 0.0) + v * 0.0   # 0 while finite, NaN once not

    def check(self, step: int) -> None:
        bad = [k for k, v in as_floats(self.sums).items() if not math.isfinite(v)]
        self.sums = {}
        if bad:
            raise NonFiniteLoss(f"step {step}: loss {bad[0]} is not finite")


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


def run_steps(step_fn: Callable[[int], dict[str, Number]], start: int, total: int,
              every: list[Every], desc: str, show: bool = True,
              on_nonfinite: Callable[[str], None] | None = None,
              stop: StopEarly | None = None) -> dict[str, float]:
    """Run steps start+1..total. `step_fn(step)` returns its losses (tensors or floats). The
    callbacks run every `interval` steps and at the last step run (also when stopping early).

    Before any callback runs, the losses since the last one are checked: a non-finite one
    stops the run with a UserError, and nothing is saved from the broken steps (the last good
    state stays on disk)."""
    shown: dict[str, float] = {}
    guard = FiniteGuard()
    started = time.time()
    with tqdm(total=total, initial=start, desc=desc, disable=not show, dynamic_ncols=True) as bar:
        for step in range(start + 1, total + 1):
            losses = step_fn(step)
            guard.add(losses)
            bar.update(1)
            last = step == total or (stop is not None and stop.reached(step - start, started))
            due = [e for e in every if step % e.interval == 0 or last]
            if due:
                try:
                    guard.check(step)
                except NonFiniteLoss as err:
                    if on_nonfinite:
                        on_nonfinite(str(err))
                    raise UserError(f"training stopped: {err}; the last good checkpoint is kept") from None
                shown = as_floats(losses)
                bar.set_postfix({k: f"{v:.3g}" for k, v in list(shown.items())[:5]}, refresh=False)
            for e in due:
                e.fn(step)
            if last:
                break
    return shown


# -- the trainer skeleton ----------------------------------------------------------------------

@dataclass
class Schedule:
    """The bookkeeping keys of a translator's config: when it logs, draws samples and saves,
    how many states it keeps, its seed and CPU threads (0: torch's default)."""
    log_every: int = 50
    sample_every: int = 500
    checkpoint_every: int = 500
    keep_states: int = 2
    snapshot_every: int = 0     # also keep <snapshot>-<step>.pt every N steps (a multiple of checkpoint_every); 0 = never
    n_samples: int = 16
    seed: int = 0
    threads: int = 0

    def __post_init__(self) -> None:
        # snapshots are written at checkpoints: any other interval would keep fewer than asked
        if self.snapshot_every > 0 and self.snapshot_every % max(self.checkpoint_every, 1):
            raise UserError(f"snapshot_every ({self.snapshot_every}) must be a multiple of "
                            f"checkpoint_every ({self.checkpoint_every})")


@dataclass
class Trainer:
    """What a trainer declares; `train()` does the rest: seeding, resume, the step loop, logging,
    sample grids and curves, evaluation, saving, teardown.

    `step(step)` runs one training step and returns its losses as tensors; `snapshot(step)` is
    what the snapshot file holds; `samples(step)` writes grids (main process only);
    `evaluate(step)` returns figures, logged and returned at each checkpoint (main only);
    `state()` / `load_state(extra)` carry what the training state holds beyond modules and
    optimisers (grad scalers, history pools); `logged(step)` adds values to each log line;
    `also_save(step)` writes more files beside the snapshot at each checkpoint (main only)."""
    name: str
    steps: int
    modules: dict[str, nn.Module]
    optimizers: dict[str, Any]
    step: Callable[[int], dict[str, Number]]
    snapshot: Callable[[int], dict[str, Any]]
    snapshot_name: str
    log_every: int
    checkpoint_every: int
    keep_states: int = 2
    snapshot_every: int = 0
    samples: Callable[[int], None] | None = None
    sample_every: int = 0
    evaluate: Callable[[int], dict[str, float]] | None = None
    state: Callable[[], dict[str, Any]] = dict
    load_state: Callable[[dict[str, Any]], None] = lambda extra: None
    logged: Callable[[int], dict[str, float]] = lambda step: {}
    also_save: Callable[[int], None] | None = None


def train(trainer: Trainer, d: Any, out: Path, seed: int, resume: bool, show_progress: bool = True,
          stop: StopEarly | None = None) -> dict[str, float]:
    """Run `trainer` in `out` (from `start()`): the loop every trainer shares. Returns the last
    logged losses and the last evaluation's figures."""
    metrics_log = MetricsLog(out / "metrics.jsonl", enabled=d.is_main)
    torch.manual_seed(seed * 1000 + d.rank)  # ranks draw different batches
    first = 0
    if resume:  # restores the RNG too, so batches continue as if never stopped
        first, extra = load_state(out, trainer.modules, trainer.optimizers, d.device)
        trainer.load_state(extra)
        metrics_log.trim_after(first)
    running = RunningMeans()
    t0 = time.time()
    final: dict[str, float] = {}

    def step_fn(step: int) -> dict[str, Number]:
        losses = trainer.step(step)
        running.add(losses)
        return losses

    def log_losses(step: int) -> None:
        means = running.pop()
        final.update(means)
        metrics_log.write(step, means | trainer.logged(step) | {"elapsed_s": time.time() - t0})

    def samples(step: int) -> None:
        if d.is_main and trainer.samples is not None:
            trainer.samples(step)
            write_curves(out)

    def checkpoint(step: int) -> None:
        if d.is_main:
            if trainer.evaluate is not None:
                figures = trainer.evaluate(step)
                metrics_log.write(step, figures)
                log.info(f"step {step}: " + ", ".join(f"{k} {v:.3f}" for k, v in figures.items()))
                final.update(figures)
            save_run(out, step, trainer.modules, trainer.optimizers, extra=trainer.state(),
                     keep=trainer.keep_states, snapshot=trainer.snapshot(step), snapshot_name=trainer.snapshot_name,
                     keep_snapshot=trainer.snapshot_every > 0 and step % trainer.snapshot_every == 0)
            if trainer.also_save is not None:
                trainer.also_save(step)
        distributed.barrier(d)

    every = [Every(trainer.log_every, log_losses), Every(trainer.checkpoint_every, checkpoint)]
    if trainer.samples is not None and trainer.sample_every > 0:
        every.insert(1, Every(trainer.sample_every, samples))
    try:
        run_steps(step_fn, first, trainer.steps, every, desc=trainer.name,
                  show=show_progress and d.is_main, stop=stop)
    finally:
        distributed.teardown(d)
    return final
