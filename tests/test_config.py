from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from img2caricature.config import load_config, parse_override, save_config
from img2caricature.errors import UserError


@dataclass
class Toy:
    lr: float = 1e-3
    steps: int = 10
    name: str = "x"
    loss: Literal["mse", "cosine"] = "mse"
    flip: bool = True
    widths: tuple[int, ...] = (8, 16)


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text)
    return p


def test_reads_values_and_converts_int_to_float(tmp_path):
    cfg = load_config(Toy, write(tmp_path, 'lr = 1\nsteps = 5\nwidths = [4, 4, 8]\nloss = "cosine"'))
    assert cfg == Toy(lr=1.0, steps=5, widths=(4, 4, 8), loss="cosine")
    assert isinstance(cfg.lr, float)


@pytest.mark.parametrize("text, fragment", [
    ("stesp = 5", "unknown key 'stesp'"),
    ('steps = "five"', "'steps' must be int"),
    ("steps = 2.5", "'steps' must be int"),
    ("flip = 1", "'flip' must be true or false"),
    ('loss = "l1"', "'loss' must be one of"),
    ('widths = ["a"]', "'widths' must be int"),
    ("steps = = 3", "not valid TOML"),
])
def test_bad_configs_are_one_line_errors(tmp_path, text, fragment):
    with pytest.raises(UserError) as err:
        load_config(Toy, write(tmp_path, text))
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_config(Toy, tmp_path / "nope.toml")


def test_overrides_win_and_are_typed(tmp_path):
    cfg = load_config(Toy, write(tmp_path, "steps = 5"), ["steps=7", "lr=0.5", "loss=cosine", "widths=[1,2]"])
    assert (cfg.steps, cfg.lr, cfg.loss, cfg.widths) == (7, 0.5, "cosine", (1, 2))
    with pytest.raises(UserError, match="unknown key 'nope'"):
        load_config(Toy, None, ["nope=1"])
    with pytest.raises(UserError, match="key=value"):
        parse_override("steps")


def test_resolved_config_is_saved(tmp_path):
    save_config(Toy(steps=3), tmp_path / "run" / "config.json")
    import json

    assert json.loads((tmp_path / "run" / "config.json").read_text())["steps"] == 3
