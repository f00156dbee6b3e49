"""An emoji dataset opened for adding: knows what it already holds, so nothing is stored twice.

Both `crawl` and `import-emoji` write through this. Records are buffered and appended
in batches (one crash-safe `Writer.append` per batch), so a killed process loses at most
the unflushed batch and the file always holds whole records only.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from img2caricature import dataset
from img2caricature.errors import UserError


class EmojiStore:
    """Create or reopen `path`; `add` de-duplicates by parameter vector and image hash."""

    def __init__(
        self,
        path: str | Path,
        producer: str,
        param_names: list[str],
        param_values: list[list[str]] | None = None,
        batch_size: int = 64,
        max_delay_s: float = 1.0,
    ):
        self.path = Path(path)
        self.param_names = list(param_names)
        if not self.path.exists():
            dataset.create(self.path, "emoji", producer, param_names=self.param_names)
        self.writer = dataset.Writer(self.path, "emoji")
        self._check_space(param_values)
        f, n = self.writer.file, self.writer.count
        self.hashes: set[str] = set(_strings(f["sha256"][:n]))
        self.urls: set[str] = set(_strings(f["urls"][:n]))
        self.param_keys: set[tuple[int, ...]] = {tuple(row) for row in f["params"][:n].tolist()}
        self._written = n  # kept here: reading the HDF5 attribute costs ~0.3 ms, too much per record
        self._pending: list[tuple[np.ndarray, tuple[int, ...], str, str]] = []
        self._batch_size = batch_size
        self.max_delay_s = max_delay_s
        self._last_flush = time.monotonic()

    def _check_space(self, param_values: list[list[str]] | None) -> None:
        """Refuse to mix parameter spaces in one file: the integer vectors would mean different things."""
        attrs = self.writer.file.attrs
        stored = [str(n) for n in attrs.get("param_names", [])]
        if stored != self.param_names:
            self.writer.close()
            raise UserError(
                f"{self.path} holds emoji with parameters [{', '.join(stored) or 'none'}], "
                f"not [{', '.join(self.param_names) or 'none'}]: use another --out file"
            )
        if param_values is None:
            return
        values_json = json.dumps(param_values)
        if "param_values" not in attrs:
            attrs["param_values"] = values_json  # lets a reader turn indices back into values
        elif str(attrs["param_values"]) != values_json:
            self.writer.close()
            raise UserError(f"{self.path} was crawled with different parameter values: use another --out file")

    @property
    def count(self) -> int:
        """Records stored, including those still waiting in the buffer."""
        return self._written + len(self._pending)

    def has_params(self, params: tuple[int, ...]) -> bool:
        return params in self.param_keys

    def add(self, image: np.ndarray, params: tuple[int, ...], url: str, sha: str) -> bool:
        """Queue one record; False (and nothing stored) if its image or parameters are already held."""
        if sha in self.hashes or (self.param_names and params in self.param_keys):
            return False
        self.hashes.add(sha)
        self.param_keys.add(params)
        self.urls.add(url)
        self._pending.append((image, params, url, sha))
        if len(self._pending) >= self._batch_size or time.monotonic() - self._last_flush > self.max_delay_s:
            self.flush()
        return True

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._pending or self.writer.closed:  # closed: a failed write rolled the file back
            return
        # Take the batch first: if Ctrl-C lands inside append, it is lost, never written twice.
        batch, self._pending = self._pending, []
        images, params, urls, shas = zip(*batch)
        params_array = np.array(params, np.int32).reshape(len(params), len(self.param_names))
        self._written = self.writer.append(images=np.stack(images), params=params_array, urls=list(urls),
                                           sha256=list(shas))

    def close(self) -> None:
        if not self.writer.closed:
            try:
                self.flush()
            finally:
                self.writer.close()

    def __enter__(self) -> "EmojiStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _strings(values: np.ndarray) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]
