"""Spacing requests out to at most `rate` per second (a polite crawler has no bursts)."""

from __future__ import annotations

import asyncio


class RateLimiter:
    """Each `wait()` returns at the next free slot, 1/rate seconds after the previous one.

    One event loop runs every caller, so reserving a slot needs no lock.
    """

    def __init__(self, rate: float | None):
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive")
        self.interval = 1.0 / rate if rate else 0.0
        self._next = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        now = asyncio.get_running_loop().time()
        slot = max(now, self._next)
        self._next = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)
