"""A crawl source: where avatars come from and which parameter vectors to ask for.

A source config (TOML: the packaged `img2caricature/configs/sources/*.toml`, or a file) holds a URL template whose `{fields}`
are the parameter names (plus `{base}`, the server's address, which `--url` replaces),
and for each parameter its values and sampling weights:

    name = "local"
    base = "http://127.0.0.1:8089"
    template = "{base}/avatar.png?top={top}&skin_color={skin_color}&size=152"
    [params.top]
    values = ["bob", "short_flat"]
    weights = [1, 2]            # optional; uniform when left out

A parameter vector is one index per parameter, in the order the config lists them.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from urllib.parse import quote, urlsplit

import numpy as np

from img2caricature.config import from_dict, load_config
from img2caricature.errors import UserError


@dataclass
class ParamConfig:
    values: list[str | int]
    weights: list[float] | None = None


@dataclass
class SourceConfig:
    name: str
    template: str
    base: str = ""
    description: str = ""
    format: str = "PNG"                 # what a payload must decode as
    params: dict = field(default_factory=dict)   # name -> ParamConfig table, in URL order
    timeout_s: float = 15.0             # one request, connect to last byte
    max_tries: int = 5                  # attempts per request before giving up
    backoff_s: float = 0.5              # first retry delay; doubles each try, with jitter
    backoff_max_s: float = 30.0
    max_retry_after_s: float = 120.0    # longest Retry-After we honour (longer ones are capped)
    user_agent: str = "img2caricature-crawler/0.1 (research; one request per avatar)"
    rate: float | None = None           # default requests/second when --rate isn't given (be polite online)
    max_bytes: int = 8 * 2**20          # largest answer, unpacked; larger ones fail as "too large"
    redirect_hosts: list[str] = field(default_factory=list)  # hosts ("name" or "name:port") redirects
                                        # may lead to, besides the template's own host and port


@dataclass(frozen=True)
class Source:
    config: SourceConfig
    names: list[str]
    values: list[list[str]]
    probs: list[np.ndarray]
    base: str

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def space_size(self) -> int:
        """Distinct parameter vectors that can be sampled (values with weight > 0)."""
        return math.prod(int((p > 0).sum()) for p in self.probs)

    def url(self, vector: tuple[int, ...]) -> str:
        fields = {name: quote(self.values[i][v], safe="") for i, (name, v) in enumerate(zip(self.names, vector))}
        return self.config.template.format(base=self.base, **fields)

    def sample(self, seed: int, block: int = 4096) -> Iterator[tuple[int, ...]]:
        """Endless weighted samples, independent per parameter; the same seed gives the same
        sequence, which is what lets a resumed crawl skip what it stored last time."""
        rng = np.random.default_rng(seed)
        while True:
            columns = [rng.choice(len(p), size=block, p=p) for p in self.probs]
            yield from zip(*(c.tolist() for c in columns))


def load_source(path: str | Path, base: str | None = None) -> Source:
    """Read and check a source config; `base` (from --url) replaces the config's `base`."""
    config = load_config(SourceConfig, path)
    where = f"source config {path}"
    if not isinstance(config.params, dict) or not config.params:
        raise UserError(f"{where}: no [params.NAME] tables, so there is nothing to sample")
    names, values, probs = [], [], []
    for name, table in config.params.items():
        if not isinstance(table, dict):
            raise UserError(f"{where}: params.{name} must be a table with `values` (and optional `weights`)")
        param = from_dict(ParamConfig, table, source=f"{where}: params.{name}")
        names.append(name)
        values.append([str(v) for v in param.values])
        probs.append(_probabilities(where, name, values[-1], param.weights))
    _check_template(where, config.template, names)
    if config.max_bytes < 1:
        raise UserError(f"{where}: max_bytes must be at least 1, got {config.max_bytes}")
    source = Source(config, names, values, probs, (base if base is not None else config.base).rstrip("/"))
    _check_url(where, source.url(tuple(0 for _ in names)), from_cli=base is not None)
    return source


def _probabilities(where: str, name: str, values: list[str], weights: list[float] | None) -> np.ndarray:
    if not values:
        raise UserError(f"{where}: params.{name} has no values")
    if len(set(values)) != len(values):
        raise UserError(f"{where}: params.{name} lists a value twice")
    if weights is None:
        return np.full(len(values), 1.0 / len(values))
    w = np.asarray(weights, dtype=np.float64)
    if len(w) != len(values):
        raise UserError(f"{where}: params.{name} has {len(values)} values but {len(w)} weights")
    if (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
        raise UserError(f"{where}: params.{name} weights must be non-negative with a positive sum")
    return w / w.sum()


def _check_template(where: str, template: str, names: list[str]) -> None:
    try:
        fields = [f for _, f, spec, conv in string.Formatter().parse(template) if f is not None]
    except ValueError as err:  # a lone "{" or "}"
        raise UserError(f"{where}: malformed URL template ({err})") from None
    for f in fields:
        if f not in names and f != "base":
            raise UserError(f"{where}: unknown parameter '{{{f}}}' in the URL template (parameters: {', '.join(names)})")
    unused = [n for n in names if n not in fields]
    if unused:
        raise UserError(f"{where}: parameter '{unused[0]}' is not used in the URL template")


def _check_url(where: str, url: str, from_cli: bool) -> None:
    origin = "--url" if from_cli else where
    try:
        parts = urlsplit(url)
        parts.port  # raises on a non-numeric or out-of-range port
    except ValueError as err:
        raise UserError(f"{origin}: malformed URL {url!r} ({err})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise UserError(f"{origin}: malformed URL {url!r} (expected http://host[:port]/...)")
