"""One URL, fetched politely: retries with exponential backoff and jitter on 5xx, 429
(honouring Retry-After), timeouts and dropped connections; a bounded number of tries.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone
from typing import Callable

import aiohttp
from yarl import URL

from crawlers.ratelimit import RateLimiter


class GiveUp(Exception):
    """The request failed for good; `reason` is a short key the summary counts."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class RetryPolicy:
    max_tries: int = 5
    backoff_s: float = 0.5
    backoff_max_s: float = 30.0
    max_retry_after_s: float = 120.0

    def backoff(self, attempt: int) -> float:
        """Delay before try `attempt + 1`: doubling, capped, with "equal jitter" so that many
        clients failing together don't come back together."""
        cap = min(self.backoff_max_s, self.backoff_s * 2 ** attempt)
        return random.uniform(cap / 2, cap)


def retry_after_s(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


async def fetch(
    session: aiohttp.ClientSession,
    url: str,
    policy: RetryPolicy,
    limiter: RateLimiter,
    on_retry: Callable[[str], None] = lambda reason: None,
) -> bytes:
    """The body of a 200 response, or GiveUp. Other 4xx are not retried: asking again won't help."""
    for attempt in range(policy.max_tries):
        await limiter.wait()
        wait = None
        try:
            async with session.get(URL(url, encoded=True)) as resp:  # already quoted: don't re-parse
                if resp.status == 200:
                    return await resp.read()  # a body cut short raises ClientPayloadError here
                reason = f"http {resp.status}"
                if not _retryable(resp.status):
                    raise GiveUp(reason)
                wait = retry_after_s(resp.headers.get("Retry-After"))
        except asyncio.TimeoutError:
            reason = "timeout"
        except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError):
            reason = "connection"  # refused, reset, or dropped mid-body
        except aiohttp.ClientError:
            reason = "bad response"  # e.g. a garbled status line or headers
        if attempt + 1 == policy.max_tries:
            raise GiveUp(reason)
        on_retry(reason)
        delay = policy.backoff(attempt) if wait is None else min(wait, policy.max_retry_after_s)
        await asyncio.sleep(delay)
    raise AssertionError("unreachable")
