"""An aiohttp server for parametric cartoon avatars (`img2car avatar-server`).

    GET /avatar.png?top=bob&skin_color=brown&size=152   -> image/png, head and shoulders
    GET /params                                         -> the parameter space as JSON

A bad request (unknown parameter or value, bad size) is a 400 with a JSON error. Rendering
is CPU-bound, so it runs in a pool of worker processes and the event loop only parses
queries and moves bytes: the server then uses every core.

Clients can't make it do work nobody waits for: a request whose client hangs up is
cancelled (a render still queued never runs), at most `max_queued` renders wait (more get
503 with Retry-After), and a connection must deliver its request headers within
`header_timeout_s` (see `server_options`).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import Executor, ProcessPoolExecutor

from aiohttp import web

from crawlers.avatar_render import render_png
from crawlers.avatar_space import PARAMS, BadParameter, describe, parse_query

log = logging.getLogger(__name__)
POOL: web.AppKey[Executor] = web.AppKey("pool", Executor)
HEADER_TIMEOUT_S = 5.0


class RenderQueue:
    """Renders waiting or running; the server refuses more than `limit` at once."""

    def __init__(self, limit: int):
        self.limit, self.count = limit, 0


QUEUE: web.AppKey[RenderQueue] = web.AppKey("queue", RenderQueue)


def server_options(header_timeout_s: float = HEADER_TIMEOUT_S) -> dict:
    """aiohttp runner options: cancel the handler of a client that hung up; close a connection
    that has not sent a whole request `header_timeout_s` after connecting or after its last
    answer (aiohttp's keep-alive timer, which also runs before the first request)."""
    return {"handler_cancellation": True, "keepalive_timeout": header_timeout_s}


def _bad_request(err: BadParameter) -> web.Response:
    body = {"error": str(err)}
    if err.allowed is not None:
        body["allowed"] = err.allowed
    return web.json_response(body, status=400)


async def avatar(request: web.Request) -> web.Response:
    query = {name: request.query.getall(name) for name in request.query.keys()}
    try:
        choice, size = parse_query(query)
    except BadParameter as err:
        return _bad_request(err)
    queue = request.app[QUEUE]
    if queue.count >= queue.limit:
        return web.json_response({"error": f"busy: {queue.count} renders queued, try again shortly"},
                                 status=503, headers={"Retry-After": "1"})
    queue.count += 1
    try:  # a hung-up client cancels this await, and with it the render if it has not started
        png = await asyncio.get_running_loop().run_in_executor(request.app[POOL], render_png, choice, size)
    finally:
        queue.count -= 1
    # The same query always draws the same picture, so caches may keep it.
    return web.Response(body=png, content_type="image/png", headers={"Cache-Control": "public, max-age=86400"})


async def params(request: web.Request) -> web.Response:
    return web.json_response(describe())


async def index(request: web.Request) -> web.Response:
    example = "&".join(f"{p.name}={p.default}" for p in list(PARAMS.values())[:3])
    return web.json_response({"endpoints": {"/avatar.png": f"/avatar.png?{example}&size=152",
                                            "/params": "the parameter space"}})


@web.middleware
async def json_errors(request: web.Request, handler) -> web.StreamResponse:
    """404/405 as JSON too, so every client-side mistake reads the same way."""
    try:
        return await handler(request)
    except web.HTTPException as err:
        if err.status >= 500:
            raise
        return web.json_response({"error": err.reason}, status=err.status)


def _warm(_: int) -> int:
    render_png({p.name: p.default for p in PARAMS.values()}, 16)  # loads modules and SVG parts
    return 0


def make_pool(workers: int) -> ProcessPoolExecutor:
    # forkserver: workers don't inherit the event loop's threads or sockets.
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver"))
    list(pool.map(_warm, range(workers)))  # start every worker now, not on the first requests
    return pool


def make_app(workers: int, pool: Executor | None = None, max_queued: int | None = None) -> web.Application:
    """The app; it owns (and shuts down) a pool of `workers` processes unless given one.
    At most `max_queued` renders wait or run at once (default: 8 per worker, at least 32)."""
    app = web.Application(middlewares=[json_errors])
    app[QUEUE] = RenderQueue(max_queued if max_queued is not None else max(32, 8 * workers))
    app.router.add_get("/", index)
    app.router.add_get("/avatar.png", avatar)
    app.router.add_get("/params", params)

    async def pool_context(app: web.Application):
        own = pool is None
        app[POOL] = make_pool(workers) if own else pool
        yield
        if own:
            app[POOL].shutdown(cancel_futures=True)

    app.cleanup_ctx.append(pool_context)
    return app


def serve(host: str, port: int, workers: int) -> None:
    app = make_app(workers)
    ready = f"avatar server on http://{host}:{port}/ with {workers} render processes (Ctrl-C stops)"
    # run_app calls `print` once it listens, so the line only appears when the server is up.
    web.run_app(app, host=host, port=port, access_log=None, print=lambda _: print(ready, flush=True),
                **server_options())
