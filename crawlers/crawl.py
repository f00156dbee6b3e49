"""The crawl: sample parameter vectors, fetch them concurrently, validate, store.

`concurrency` worker tasks share one aiohttp session (its connector holds that many
connections) and one rate limiter. Each worker takes the next sampled vector that is
neither stored nor in flight, fetches it, checks and converts the payload in a thread
(decoding releases the GIL), and hands the record to the store, which de-duplicates by
vector and by image hash. Workers stop when stored + in flight reaches the count, so the
file ends with exactly `count` records.

Each vector is asked for at most once per run (a failed or duplicate one waits for a
rerun), so a crawl of a small space ends; a run of answers that are all images already
stored (an API that ignores its parameters) stops it with a message; and the store is
flushed on a timer, so a crawl that stalls still has its records on disk.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from tqdm import tqdm

from crawlers.fetch import Bounds, GiveUp, RetryPolicy, fetch
from crawlers.payload import to_record
from crawlers.ratelimit import RateLimiter
from crawlers.source import Source
from crawlers.store import EmojiStore
from crawlers.summary import Summary
from img2caricature.errors import short_reason
from img2caricature.images import ImageError

MAX_SKIPS = 200_000  # consecutive samples already tried before we call the space exhausted


@dataclass
class CrawlOptions:
    count: int
    out: Path
    concurrency: int = 16
    rate: float | None = None         # requests per second, all tries counted
    seed: int = 0
    max_failures: int | None = None   # stop after this many failed vectors (default: max(100, count))
    max_duplicates: int = 100         # stop after this many answers in a row that were images already stored
    progress: bool = True


@dataclass
class CrawlResult:
    summary: Summary
    complete: bool                    # the file holds `count` records
    stopped_because: str = ""
    interrupted: bool = False         # Ctrl-C: what was fetched is stored, rerun to continue


class _Crawl:
    def __init__(self, source: Source, opts: CrawlOptions, store: EmojiStore):
        self.source, self.opts, self.store = source, opts, store
        self.summary = Summary(total=store.count)
        self.samples = source.sample(opts.seed)
        self.in_flight: set[tuple[int, ...]] = set()
        self.tried: set[tuple[int, ...]] = set()  # this run's vectors: each is asked for once
        self.duplicates_in_a_row = 0
        self.stop_reason = ""
        self.policy = RetryPolicy(source.config.max_tries, source.config.backoff_s,
                                  source.config.backoff_max_s, source.config.max_retry_after_s)
        self.bounds = Bounds(source.config.max_bytes, frozenset(source.config.redirect_hosts))
        self.space_size = source.space_size
        self.limiter = RateLimiter(opts.rate)
        self.max_failures = opts.max_failures if opts.max_failures is not None else max(100, opts.count)
        self.decoders = ThreadPoolExecutor(2, thread_name_prefix="decode")
        self.bar = tqdm(total=opts.count, initial=store.count, desc=f"crawl {source.name}", unit="img",
                        disable=not opts.progress, dynamic_ncols=True, smoothing=0.1)

    def _next_vector(self) -> tuple[int, ...] | None:
        for _ in range(MAX_SKIPS):
            if len(self.tried) >= self.space_size:
                break
            vector = next(self.samples)
            if vector in self.tried:  # stored, in flight, failed or a duplicate this run
                continue
            self.tried.add(vector)
            if self.store.has_params(vector):
                self.summary.already_stored += 1
                continue
            return vector
        self.stop_reason = "no new parameter vectors left to sample (every one was tried or the space is nearly exhausted)"
        return None

    def _more_needed(self) -> bool:
        return not self.stop_reason and self.store.count + len(self.in_flight) < self.opts.count

    def _count_retry(self, reason: str) -> None:
        self.summary.retries += 1

    async def _one(self, session: aiohttp.ClientSession, vector: tuple[int, ...]) -> None:
        url = self.source.url(vector)
        loop = asyncio.get_running_loop()
        try:
            data = await fetch(session, url, self.policy, self.limiter, self._count_retry, self.bounds)
            image, sha = await loop.run_in_executor(self.decoders, to_record, data, self.source.config.format)
        except GiveUp as err:
            return self._failed(err.reason)
        except ImageError as err:
            return self._failed(f"invalid ({err.reason})")  # HTML error page, truncated PNG, ...
        except Exception as err:  # anything else is still this vector's failure: the crawl goes on
            return self._failed(f"error ({short_reason(err, limit=60)})")
        if self.store.add(image, vector, url, sha):
            self.summary.stored += 1
            self.duplicates_in_a_row = 0
            self.bar.update(1)
        else:
            self.summary.duplicates += 1
            self.duplicates_in_a_row += 1
            if self.duplicates_in_a_row >= self.opts.max_duplicates and not self.stop_reason:
                self.stop_reason = (f"the last {self.duplicates_in_a_row} answers were all images already stored: "
                                    "the API seems to ignore the parameters (check the source's URL template)")

    def _failed(self, reason: str) -> None:
        self.summary.fail(reason)
        self.bar.set_postfix(failed=self.summary.n_failed, dup=self.summary.duplicates, refresh=False)
        if self.summary.n_failed >= self.max_failures:
            self.stop_reason = f"{self.summary.n_failed} requests failed (limit {self.max_failures})"

    async def _worker(self, session: aiohttp.ClientSession) -> None:
        while self._more_needed():
            vector = self._next_vector()
            if vector is None:
                return
            self.in_flight.add(vector)
            try:
                await self._one(session, vector)
            finally:
                self.in_flight.discard(vector)

    async def run(self) -> None:
        config = self.source.config
        connector = aiohttp.TCPConnector(limit=self.opts.concurrency, limit_per_host=self.opts.concurrency)
        timeout = aiohttp.ClientTimeout(total=config.timeout_s)
        headers = {"User-Agent": config.user_agent}
        # No cookies: an avatar API needs none, and the jar costs time on every response.
        flusher = asyncio.create_task(self._flush_now_and_then())
        try:
            async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers,
                                             cookie_jar=aiohttp.DummyCookieJar()) as session:
                await asyncio.gather(*(self._worker(session) for _ in range(self.opts.concurrency)))
        finally:
            flusher.cancel()

    async def _flush_now_and_then(self) -> None:
        """New records reach the disk within a second or so even when no more come (a stalled
        server, a run of duplicates), so a killed crawl keeps them."""
        while True:
            await asyncio.sleep(self.store.max_delay_s)
            self.store.flush()

    def close(self) -> None:
        self.store.flush()
        self.bar.close()
        self.decoders.shutdown(wait=True)


def crawl(source: Source, opts: CrawlOptions) -> CrawlResult:
    """Crawl until `opts.out` holds `opts.count` records (resuming what is there)."""
    start = time.monotonic()
    with EmojiStore(opts.out, producer=f"img2car crawl ({source.name})",
                    param_names=source.names, param_values=source.values) as store:
        job = _Crawl(source, opts, store)
        interrupted = False
        try:
            if store.count < opts.count:
                asyncio.run(job.run())
        except KeyboardInterrupt:
            interrupted, job.stop_reason = True, "interrupted"
            job.summary.interrupted = True
        finally:
            job.close()  # flushes: a Ctrl-C keeps everything fetched so far
        summary = job.summary
        summary.total = store.count
    summary.seconds = time.monotonic() - start
    complete = summary.total >= opts.count
    return CrawlResult(summary, complete, "" if complete else job.stop_reason, interrupted)
