"""Typed configuration: TOML files read into dataclasses, with `--set key=value` overrides.

Unknown keys and wrong types are one-line `UserError`s, so a typo in a config never
silently trains the wrong model.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from img2caricature.errors import UserError

T = TypeVar("T")


def _check_type(name: str, value: Any, annotation: Any) -> Any:
    """Return `value` converted to `annotation` where that is lossless, else raise."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        for option in options:
            if option is type(None):
                continue
            try:
                return _check_type(name, value, option)
            except UserError:
                pass
        raise UserError(f"config key '{name}' must be {annotation}, got {value!r}")
    if origin is typing.Literal:
        if value not in typing.get_args(annotation):
            allowed = ", ".join(repr(a) for a in typing.get_args(annotation))
            raise UserError(f"config key '{name}' must be one of {allowed}, got {value!r}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"config key '{name}' must be a list, got {value!r}")
        (item_type, *_) = typing.get_args(annotation) or (Any,)
        items = [_check_type(name, v, item_type) for v in value]
        return tuple(items) if origin is tuple else items
    if annotation is Any:
        return value
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is bool and not isinstance(value, bool):
        raise UserError(f"config key '{name}' must be true or false, got {value!r}")
    if annotation is int and isinstance(value, bool):
        raise UserError(f"config key '{name}' must be an integer, got {value!r}")
    if not isinstance(value, annotation):
        raise UserError(f"config key '{name}' must be {annotation.__name__}, got {value!r}")
    return value


def from_dict(cls: type[T], values: dict[str, Any], source: str = "config") -> T:
    """Build dataclass `cls` from `values`, rejecting unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(
            f"{source}: unknown key '{unknown[0]}' (known keys: {', '.join(sorted(known))})"
        )
    checked = {k: _check_type(k, v, hints[k]) for k, v in values.items()}
    return cls(**checked)


def parse_override(text: str) -> tuple[str, Any]:
    """`key=value` -> (key, value); the value is read as TOML (numbers, bools, lists, strings)."""
    if "=" not in text:
        raise UserError(f"--set expects key=value, got '{text}'")
    key, raw = (part.strip() for part in text.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word such as `mse` or `vggface2`
    return key, value


def load_config(cls: type[T], path: str | Path | None, overrides: list[str] = ()) -> T:
    """Read `path` (TOML) into `cls`, then apply `key=value` overrides."""
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"config file not found: {path}")
        try:
            values = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as err:
            raise UserError(f"config file {path} is not valid TOML: {err}") from None
    for text in overrides:
        key, value = parse_override(text)
        values[key] = value
    return from_dict(cls, values, source=str(path or "config"))


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def save_config(config: Any, path: Path) -> None:
    """Write the resolved config as JSON (the run directory's record of what ran)."""
    from img2caricature.atomic import replacing

    with replacing(path) as tmp:
        tmp.write_text(json.dumps(to_dict(config), indent=2, sort_keys=True) + "\n")
