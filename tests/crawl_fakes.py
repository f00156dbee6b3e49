"""A fake avatar API for crawler tests: small distinct PNGs per query, and scripted faults."""

from __future__ import annotations

import asyncio
import hashlib
import io
import itertools
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
from aiohttp import web
from PIL import Image

from crawlers.payload import to_record

PARAM_VALUES = 10  # three parameters a, b, c of 10 values each: 1000 vectors


def png_for(query: str) -> bytes:
    """A 48x48 RGBA PNG unique to `query` (random 6x6 blocks seeded by its hash)."""
    seed = int.from_bytes(hashlib.sha256(query.encode()).digest()[:8], "little")
    blocks = np.random.default_rng(seed).integers(0, 256, (6, 6, 4), dtype=np.uint8)
    blocks[..., 3] = np.where(blocks[..., 3] > 64, 255, 0)  # some transparent blocks: tests the white background
    buf = io.BytesIO()
    Image.fromarray(blocks.repeat(8, 0).repeat(8, 1), "RGBA").save(buf, "PNG")
    return buf.getvalue()


def expected_sha(url: str) -> str:
    """What the crawler must store for `url`: the image the fake server draws for its query."""
    return to_record(png_for(url.split("?", 1)[1]), "PNG")[1]


def write_source(path: Path, base: str, timeout_s: float = 2.0, max_tries: int = 6, extra: str = "") -> Path:
    """`extra`: more top-level TOML lines, e.g. 'max_bytes = 1024'."""
    values = ", ".join(str(i) for i in range(PARAM_VALUES))
    path.write_text(
        f'name = "fake"\nbase = "{base}"\ntemplate = "{{base}}/img.png?a={{a}}&b={{b}}&c={{c}}"\n'
        f"timeout_s = {timeout_s}\nmax_tries = {max_tries}\nbackoff_s = 0.01\nbackoff_max_s = 0.05\n{extra}\n"
        f"[params.a]\nvalues = [{values}]\n[params.b]\nvalues = [{values}]\n[params.c]\nvalues = [{values}]\n"
    )
    return path


def gzip_of_zeros(n_bytes: int) -> bytes:
    """A gzip member that unpacks to `n_bytes` zeros: a decompression bomb (about 1000:1)."""
    pack = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    block = bytes(2**20)
    parts = [pack.compress(block) for _ in range(n_bytes // len(block))]
    return b"".join(parts) + pack.flush()


class FakeApi:
    """Serves /img.png, misbehaving in a fixed cycle of `script` entries:

    ok | 500 | 503 | 404 | 429 (Retry-After: 1) | stall (sleeps past the timeout)
    | drop (closes the connection mid-body) | html (a 200 error page) | truncated (a 200 half PNG)
    | same (one PNG whatever the query) | huge (an endless PNG: `huge_mb` MiB, streamed)
    | bomb (`bomb` bytes, gzip-encoded) | redirect (302 to `redirect_to` + the same path and query)
    """

    def __init__(self, script: list[str] | None = None, delay_s: float = 0.0, stall_s: float = 1.0,
                 huge_mb: int = 64, bomb: bytes = b"", redirect_to: str = ""):
        self.script = itertools.cycle(script or ["ok"])
        self.delay_s, self.stall_s = delay_s, stall_s
        self.huge_mb, self.bomb, self.redirect_to = huge_mb, bomb, redirect_to
        self.served: Counter = Counter()           # behaviour -> times
        self.requests: list[tuple[str, float]] = []  # (query, loop time) in arrival order
        self.bytes_sent = 0                          # by "huge", until the client hung up

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/img.png", self.handle)
        app.router.add_get("/moved.png", self.moved)
        return app

    async def moved(self, request: web.Request) -> web.Response:
        """Where "redirect" sends clients: always the query's image."""
        self.requests.append((request.query_string, asyncio.get_running_loop().time()))
        return web.Response(body=png_for(request.query_string), content_type="image/png")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        query = request.query_string
        self.requests.append((query, asyncio.get_running_loop().time()))
        what = next(self.script)
        self.served[what] += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        png = png_for(query)
        if what == "ok":
            return web.Response(body=png, content_type="image/png")
        if what in ("500", "503", "404"):
            return web.Response(status=int(what), text="oops")
        if what == "429":
            return web.Response(status=429, headers={"Retry-After": "1"}, text="slow down")
        if what == "stall":
            await asyncio.sleep(self.stall_s)
            return web.Response(body=png, content_type="image/png")
        if what == "html":
            return web.Response(text="<html><body>Service temporarily unavailable</body></html>",
                                content_type="text/html")
        if what == "truncated":
            return web.Response(body=png[: len(png) // 2], content_type="image/png")
        if what == "same":
            return web.Response(body=png_for("same"), content_type="image/png")
        if what == "redirect":
            raise web.HTTPFound(f"{self.redirect_to}/moved.png?{query}")
        if what == "bomb":
            return web.Response(body=self.bomb, headers={"Content-Type": "image/png", "Content-Encoding": "gzip"})
        if what == "huge":
            resp = web.StreamResponse(headers={"Content-Type": "image/png"})
            await resp.prepare(request)
            piece = png[:8] + bytes(2**20 - 8)
            try:
                for _ in range(self.huge_mb):
                    await resp.write(piece)
                    self.bytes_sent += len(piece)
                    piece = bytes(2**20)
            except (ConnectionError, RuntimeError):  # the client hung up
                pass
            return resp
        if what == "drop":
            resp = web.StreamResponse(headers={"Content-Type": "image/png"})
            resp.content_length = len(png)
            await resp.prepare(request)
            await resp.write(png[: len(png) // 2])
            request.transport.close()
            return resp
        raise AssertionError(what)
