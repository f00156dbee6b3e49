"""Option groups shared by several commands."""

from __future__ import annotations

import argparse
from typing import Any, Callable, TypeVar

T = TypeVar("T")


def at_least(minimum: float, kind: type = int, strictly: bool = False) -> Callable[[str], float]:
    """An argparse type for a number of `kind` that is >= `minimum` (> with `strictly`):
    `--min-face -5` is a one-line usage error, not a silent nonsense run."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}")
        if not (value > minimum if strictly else value >= minimum):  # `not`: NaN fails too
            raise argparse.ArgumentTypeError(f"must be {'more than' if strictly else 'at least'} {minimum}, got {text}")
        return value
    parse.__name__ = kind.__name__
    return parse


def add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto",
                   help="auto (CUDA with mixed precision when present, else CPU), cpu or cuda[:N]")


def add_split(p: argparse.ArgumentParser) -> None:
    p.add_argument("--split", default=None, metavar="SPLIT.json",
                   help="the held-out split: people and emoji no model trains on (default: split.json beside "
                        "--faces; made there with default shares if missing, see `img2car split`)")


def add_training(p: argparse.ArgumentParser, stage: str, default_out: str, default_config: str = "compact") -> None:
    """The options every training command has. `stage` names the packaged configs' folder."""
    from img2caricature.config import packaged_configs

    p.add_argument("--config", default=default_config,
                   help=f"a packaged config ({', '.join(packaged_configs(stage))}) or a TOML file "
                        f"(default: {default_config})")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config key (repeatable), e.g. --set batch_size=64")
    p.add_argument("--out", default=default_out, help=f"run directory (default: {default_out})")
    p.add_argument("--steps", type=at_least(1), default=None, help="training steps (overrides the config)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last training state")
    p.add_argument("--time-limit", type=at_least(0, float, strictly=True), default=None, metavar="MINUTES",
                   help="stop after this much wall time (resumable with --resume)")
    add_device(p)


def training_config(cls: type[T], args: argparse.Namespace, stage: str) -> T:
    """The config a training command runs with: --config, then --set, then --steps."""
    from img2caricature.config import find_config, load_config

    overrides = args.overrides + ([f"steps={args.steps}"] if args.steps is not None else [])
    return load_config(cls, find_config(args.config, stage), overrides)


def stop_early(args: argparse.Namespace) -> Any:
    from img2caricature.train.run import StopEarly

    return StopEarly(seconds=args.time_limit * 60) if args.time_limit else None
