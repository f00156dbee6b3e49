"""Crawler benchmarks, run by hand: `python benchmarks/crawl.py` (prints figures).

(a) overhead: a server in another process answers from memory with pre-rendered avatar
    PNGs (each a distinct picture), so the crawler (fetch, decode, resize, hash, append)
    is the bottleneck. Target: >= 1,000 images stored per second on a 2-core machine.
(b) against the avatar server: the crawl's rate next to the server's own rendering
    capacity (the same render processes, no HTTP), measured in the same run. Target >= 90%.
Then a grid of crawled avatars is written for a look.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crawlers.crawl import CrawlOptions, crawl  # noqa: E402
from crawlers.source import load_source  # noqa: E402

LOCAL = ROOT / "configs" / "sources" / "local.toml"


# ---- (a) a server of pre-rendered PNGs ------------------------------------------------

def _variants(n: int, n_bases: int = 48) -> list[bytes]:
    """`n` distinct avatar PNGs: a few rendered avatars, each copied with a different
    opaque marker pixel in its top-left corner (so no two have the same pixels)."""
    import numpy as np
    from PIL import Image

    from crawlers.avatar_render import render_png

    source = load_source(LOCAL)
    samples = source.sample(seed=123)
    bases = []
    for _ in range(n_bases):
        choice = dict(zip(source.names, (source.values[i][v] for i, v in enumerate(next(samples)))))
        bases.append(np.array(Image.open(io.BytesIO(render_png(choice, 152))).convert("RGBA")))
    out = []
    for i in range(n):
        pixels = bases[i % n_bases].copy()
        pixels[0, 0] = (i % 256, (i // 256) % 256, 7, 255)
        buf = io.BytesIO()
        Image.fromarray(pixels, "RGBA").save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def _memory_server(n: int, side: int, ready: mp.Queue) -> None:
    from aiohttp import web

    pngs = _variants(n)

    async def handle(request: web.Request) -> web.Response:
        index = int(request.query["a"]) * side + int(request.query["b"])
        return web.Response(body=pngs[index], content_type="image/png")

    app = web.Application()
    app.router.add_get("/img.png", handle)
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    ready.put(sock.getsockname()[1])
    web.run_app(app, sock=sock, access_log=None, print=None)


def bench_overhead(count: int, concurrency: int, work: Path) -> float:
    side = int((2 * count) ** 0.5) + 1  # twice the count in vectors: few re-draws near the end
    ready: mp.Queue = mp.get_context("spawn").Queue()
    server = mp.get_context("spawn").Process(target=_memory_server, args=(side * side, side, ready), daemon=True)
    server.start()
    try:
        port = ready.get(timeout=300)
        _wait_for(f"http://127.0.0.1:{port}/img.png?a=0&b=0")
        values = ", ".join(str(i) for i in range(side))
        toml = work / "memory.toml"
        toml.write_text(f'name = "memory"\nbase = "http://127.0.0.1:{port}"\n'
                        f'template = "{{base}}/img.png?a={{a}}&b={{b}}"\n'
                        f"[params.a]\nvalues = [{values}]\n[params.b]\nvalues = [{values}]\n")
        result = crawl(load_source(toml), CrawlOptions(count=count, out=work / "memory.h5",
                                                        concurrency=concurrency, progress=False))
    finally:
        server.terminate()
        server.join()
    s = result.summary
    rate = s.stored / s.seconds
    print(f"(a) crawler overhead: {s.stored} images stored in {s.seconds:.2f} s = {rate:.0f} images/s "
          f"(failed {s.n_failed}, duplicates {s.duplicates}; target >= 1000/s)")
    return rate


# ---- (b) the avatar server ----------------------------------------------------------

def _render_one(choice: dict) -> int:
    from crawlers.avatar_render import render_png

    return len(render_png(choice, 152))


def _warm(_: int) -> int:
    from crawlers.avatar_server import _warm as warm

    return warm(0)


def render_capacity(workers: int, n: int) -> float:
    """Avatars per second the render processes manage by themselves (no HTTP, no crawler)."""
    source = load_source(LOCAL)
    samples = source.sample(seed=999)
    choices = [dict(zip(source.names, (source.values[i][v] for i, v in enumerate(next(samples)))))
               for _ in range(n)]
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("forkserver")) as pool:
        list(pool.map(_warm, range(workers)))
        start = time.perf_counter()
        list(pool.map(_render_one, choices, chunksize=1))
        return n / (time.perf_counter() - start)


def bench_server(count: int, concurrency: int, workers: int, work: Path) -> tuple[float, float, Path]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Capacity before and after the crawl, averaged: the machine's load drifts during a run.
    before = render_capacity(workers, count // 2)
    server = subprocess.Popen([sys.executable, "-m", "img2caricature", "avatar-server", "--port", str(port),
                               "--workers", str(workers)], cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        _wait_for(f"http://127.0.0.1:{port}/params")
        out = work / "avatars.h5"
        result = crawl(load_source(LOCAL, f"http://127.0.0.1:{port}"),
                       CrawlOptions(count=count, out=out, concurrency=concurrency, progress=False))
    finally:
        server.terminate()
        server.wait()
    after = render_capacity(workers, count // 2)
    capacity = (before + after) / 2
    s = result.summary
    rate = s.stored / s.seconds
    print(f"(b) render capacity ({workers} processes, no HTTP): {capacity:.1f} avatars/s "
          f"({before:.1f} before the crawl, {after:.1f} after); "
          f"crawl through the server: {rate:.1f} images/s = {100 * rate / capacity:.0f}% of capacity (target >= 90%)")
    return capacity, rate, out


def _wait_for(url: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(url, timeout=5).read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def save_grid(h5: Path, path: Path, n: int = 64) -> None:
    import torch
    from torchvision.utils import make_grid, save_image

    from img2caricature import dataset

    images = dataset.load_images(h5)[:n]
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(make_grid(images.float() / 255, nrow=8, padding=2, pad_value=0.5), path)
    print(f"grid of {len(images)} crawled avatars: {path}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count-a", type=int, default=4000, help="images for (a)")
    p.add_argument("--count-b", type=int, default=600, help="images for (b)")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)), help="render processes for (b)")
    p.add_argument("--grid", type=Path, default=ROOT / "runs" / "benchmarks" / "crawl_grid.png")
    p.add_argument("--only", choices=["a", "b"], default=None)
    args = p.parse_args()
    print(f"{len(os.sched_getaffinity(0))} CPU cores, load average {os.getloadavg()[0]:.2f} before starting")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.only in (None, "a"):
            bench_overhead(args.count_a, args.concurrency, work)
        if args.only in (None, "b"):
            _, _, out = bench_server(args.count_b, args.concurrency, args.workers, work)
            save_grid(out, args.grid)


if __name__ == "__main__":
    main()
