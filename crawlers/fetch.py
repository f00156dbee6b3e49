"""One URL, fetched politely: retries with exponential backoff and jitter on 5xx, 429
(honouring Retry-After), timeouts and dropped connections; a bounded number of tries.

And defensively: a body is read in pieces and refused past `max_bytes` once unpacked (a
gzip bomb or an endless stream costs no more than that), and redirects are followed by
hand, only to the URL's own host and port or to hosts the source names.
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


REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class Bounds:
    """What one answer may cost: its unpacked size, and where its redirects may lead."""
    max_bytes: int = 8 * 2**20
    redirect_hosts: frozenset[str] = frozenset()   # "host" or "host:port", besides the URL's own
    max_redirects: int = 5

    def allows(self, origin: URL, target: URL) -> bool:
        if target.scheme not in ("http", "https") or not target.host:
            return False
        if (target.host, target.port) == (origin.host, origin.port):
            return True
        return target.host in self.redirect_hosts or f"{target.host}:{target.port}" in self.redirect_hosts


async def _read_capped(resp: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    """The body, unpacked, or GiveUp as soon as it passes `max_bytes` (never held whole)."""
    if resp.content_length is not None and resp.content_length > max_bytes:
        raise GiveUp("too large")
    body = bytearray()
    async for piece in resp.content.iter_chunked(2**16):  # aiohttp unpacks gzip in bounded steps
        body += piece
        if len(body) > max_bytes:
            raise GiveUp("too large")  # leaving the block closes the connection: nothing more is read
    return bytes(body)


async def _get(session: aiohttp.ClientSession, url: str, bounds: Bounds) -> tuple[int, str | None, bytes]:
    """(status, Retry-After, body of a 200), following allowed redirects."""
    origin = target = URL(url, encoded=True)  # already quoted: don't re-parse
    for _ in range(bounds.max_redirects + 1):
        async with session.get(target, allow_redirects=False) as resp:
            if resp.status in REDIRECTS:
                location = resp.headers.get("Location")
                if not location:
                    raise GiveUp("bad redirect")
                target = resp.url.join(URL(location))
                if not bounds.allows(origin, target):
                    raise GiveUp("redirect off host")
                continue
            body = await _read_capped(resp, bounds.max_bytes) if resp.status == 200 else b""
            return resp.status, resp.headers.get("Retry-After"), body
    raise GiveUp("too many redirects")


async def fetch(
    session: aiohttp.ClientSession,
    url: str,
    policy: RetryPolicy,
    limiter: RateLimiter,
    on_retry: Callable[[str], None] = lambda reason: None,
    bounds: Bounds = Bounds(),
) -> bytes:
    """The body of a 200 response, or GiveUp. Other 4xx are not retried: asking again won't help,
    nor are answers too large or redirected off the host."""
    for attempt in range(policy.max_tries):
        await limiter.wait()
        wait = None
        try:
            status, retry_after, body = await _get(session, url, bounds)
            if status == 200:
                return body  # a body cut short raised ClientPayloadError while reading
            reason = f"http {status}"
            if not _retryable(status):
                raise GiveUp(reason)
            wait = retry_after_s(retry_after)
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
