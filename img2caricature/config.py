"""Typed configuration: TOML files read into dataclasses, with `--set key=value` overrides.

Unknown keys and wrong types are one-line `UserError`s, so a typo in a config never
silently trains the wrong model. The configs ship inside the package
(`img2caricature/configs/<stage>/<name>.toml`): `--config compact` names one, `--config PATH`
reads a file, so every command runs from any folder.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from img2caricature.errors import UserError

if sys.version_info >= (3, 11):
    import tomllib

    if TYPE_CHECKING:
        from importlib.resources.abc import Traversable  # novermin (3.11+ branch)
else:  # Python 3.10: the same parser, from PyPI (a dependency there)
    import tomli as tomllib

    if TYPE_CHECKING:
        from importlib.abc import Traversable

T = TypeVar("T")


def _describe(annotation: Any) -> str:
    """A type as a config's reader knows it: `true or false`, `'auto'`, `int`."""
    if annotation is bool:
        return "true or false"
    if annotation is type(None):
        return "none"
    if typing.get_origin(annotation) is typing.Literal:
        return " or ".join(repr(a) for a in typing.get_args(annotation))
    return getattr(annotation, "__name__", str(annotation))


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
        raise UserError(f"config key '{name}' must be {' or '.join(_describe(o) for o in options)}, got {value!r}")
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


# keys older configs had, and where their job went
RETIRED = {
    "heldout_identities": "the held-out people are the split file's now (see `img2car split --help`)",
    "heldout_emoji": "the held-out emoji are the split file's now (see `img2car split --help`)",
}


def from_dict(cls: type[T], values: dict[str, Any], source: str = "config") -> T:
    """Build dataclass `cls` from `values`, rejecting unknown keys and wrong types."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    retired = [k for k in unknown if k in RETIRED]
    if retired:
        raise UserError(f"{source}: '{retired[0]}' is no longer a config key: {RETIRED[retired[0]]}")
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


def packaged_configs(stage: str) -> list[str]:
    """Names of the configs shipped for `stage` (dtn, cyclegan, encoder, sources)."""
    folder = resources.files("img2caricature") / "configs" / stage
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml")) if folder.is_dir() else []


def find_config(name_or_path: str | Path, stage: str | None = None) -> Path | Traversable:
    """A config file: an existing path as given, else the packaged `<stage>/<name>.toml`.
    `compact`, `compact.toml` and the checkout's old `configs/<stage>/compact.toml` all name
    the packaged one, so scripts written before the configs moved keep working."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    parts = path.parts[1:] if path.parts[:1] == ("configs",) else path.parts
    if len(parts) == 1 and stage is not None:
        parts = (stage, parts[0])
    if len(parts) == 2:
        folder, name = parts
        packaged = resources.files("img2caricature") / "configs" / folder / (
            name if name.endswith(".toml") else f"{name}.toml")
        if packaged.is_file():
            return packaged
    if stage is None:
        raise UserError(f"config file not found: {name_or_path}")
    known = ", ".join(packaged_configs(stage)) or "none"
    raise UserError(f"config file not found: {name_or_path} (packaged {stage} configs: {known})")


def load_config(cls: type[T], path: str | Path | Traversable | None, overrides: list[str] = ()) -> T:
    """Read `path` (TOML) into `cls`, then apply `key=value` overrides."""
    values: dict[str, Any] = {}
    if path is not None:
        path = find_config(path) if isinstance(path, (str, Path)) else path
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
