"""Running an aiohttp app in a background thread on 127.0.0.1 and a free port.

For tests and benchmarks, which need a real server next to the code under test.
"""

from __future__ import annotations

import asyncio
import threading
from contextlib import contextmanager
from typing import Iterator

from aiohttp import web


@contextmanager
def serve_in_thread(app: web.Application, host: str = "127.0.0.1", port: int = 0,
                    **runner_options) -> Iterator[str]:
    """Serve `app` until the block ends; yields its base URL, e.g. http://127.0.0.1:40123.
    `runner_options` go to aiohttp's AppRunner (e.g. avatar_server.server_options())."""
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, access_log=None, **runner_options)
    ready = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.TCPSite(runner, host, port).start())
        except BaseException as err:  # report to the caller instead of dying silently
            failure.append(err)
            ready.set()
            return
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="aiohttp-server", daemon=True)
    thread.start()
    ready.wait()
    if failure:
        thread.join()
        loop.close()
        raise failure[0]
    try:
        bound_port = runner.addresses[0][1]
        yield f"http://{host}:{bound_port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()
