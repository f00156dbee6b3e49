"""The model shipped in the package, loaded once for every test module that serves or calls it."""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=None)
def shipped_model():
    import img2caricature

    return img2caricature.load(device="cpu")
