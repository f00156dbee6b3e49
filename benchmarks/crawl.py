"""Crawler benchmarks, run by hand: `python benchmarks/crawl.py` (prints figures).

(a) overhead: a server in another process answers from memory with pre-rendered avatar
    PNGs (each a distinct picture), so the crawler (fetch, decode, resize, hash, append)
    is the bottleneck. Target: >= 1,000 images stored per second on a 2-core machine.
(b) against the avatar server: the crawl's rate next to the server's own rendering
    capacity (the same number of render processes, no HTTP), measured in the same run.
    Target: >= 90%.
Then a grid of crawled avatars is written for a look.

Wall-clock rates depend on what else the machine runs, so CPU time is measured too
(this process and every process under it, servers and render workers included):
CPU-seconds per image don't change with contention, and give the rate the same work
reaches on otherwise idle cores.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crawlers.crawl import CrawlOptions, crawl  # noqa: E402
from crawlers.source import load_source  # noqa: E402

LOCAL = ROOT / "img2caricature" / "configs" / "sources" / "local.toml"
CORES = len(os.sched_getaffinity(0))
TICK = os.sysconf("SC_CLK_TCK")


# ---- measuring ----------------------------------------------------------------------

def _cpu_by_pid() -> dict[int, tuple[int, float]]:
    """pid -> (parent pid, CPU seconds so far) for every process we can read."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK)
    return out


def tree_cpu(root: int) -> dict[int, float]:
    """CPU seconds of `root` and each live process under it (read before they exit)."""
    procs = _cpu_by_pid()
    tree, frontier = {}, [root]
    while frontier:
        pid = frontier.pop()
        if pid in procs:
            tree[pid] = procs[pid][1]
            frontier += [child for child, (parent, _) in procs.items() if parent == pid]
    return tree


@dataclass
class Measure:
    """Wall time and CPU time of this process tree over a block of work."""
    wall: float = 0.0
    cpu_self: float = 0.0   # this process (the crawler)
    cpu_total: float = 0.0  # the whole tree (crawler + servers + render workers)
    cpu_by_pid: dict | None = None

    def __enter__(self) -> "Measure":
        self._t, self._cpu = time.perf_counter(), tree_cpu(os.getpid())
        return self

    def stop(self) -> None:
        """Call while the servers and workers are still alive."""
        cpu = tree_cpu(os.getpid())
        self.wall = time.perf_counter() - self._t
        self.cpu_self = cpu[os.getpid()] - self._cpu[os.getpid()]
        self.cpu_by_pid = {pid: v - self._cpu.get(pid, 0.0) for pid, v in cpu.items()}
        self.cpu_total = sum(self.cpu_by_pid.values())

    def __exit__(self, *exc: object) -> None:
        if not self.wall:
            self.stop()


# ---- (a) a server of pre-rendered PNGs ------------------------------------------------

def _random_choices(n: int, seed: int) -> list[dict[str, str]]:
    source = load_source(LOCAL)
    samples = source.sample(seed)
    return [dict(zip(source.names, (source.values[i][v] for i, v in enumerate(next(samples))))) for _ in range(n)]


def _variants(n: int, n_bases: int = 48) -> list[bytes]:
    """`n` distinct avatar PNGs: a few rendered avatars, each copied with a different
    opaque marker pixel in its top-left corner (so no two have the same pixels)."""
    import numpy as np
    from PIL import Image

    from crawlers.avatar_render import render_png

    bases = [np.array(Image.open(io.BytesIO(render_png(c, 152))).convert("RGBA"))
             for c in _random_choices(n_bases, seed=123)]
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
        return web.Response(body=pngs[int(request.query["a"]) * side + int(request.query["b"])],
                            content_type="image/png")

    app = web.Application()
    app.router.add_get("/img.png", handle)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    ready.put(sock.getsockname()[1])
    web.run_app(app, sock=sock, access_log=None, print=None)


def bench_overhead(count: int, concurrency: int, work: Path) -> None:
    side = int((2 * count) ** 0.5) + 1  # twice the count in vectors: few re-draws near the end
    spawn = mp.get_context("spawn")
    ready = spawn.Queue()
    server = spawn.Process(target=_memory_server, args=(side * side, side, ready), daemon=True)
    server.start()
    try:
        port = ready.get(timeout=600)
        _wait_for(f"http://127.0.0.1:{port}/img.png?a=0&b=0")
        values = ", ".join(str(i) for i in range(side))
        toml = work / "memory.toml"
        toml.write_text(f'name = "memory"\nbase = "http://127.0.0.1:{port}"\n'
                        f'template = "{{base}}/img.png?a={{a}}&b={{b}}"\n'
                        f"[params.a]\nvalues = [{values}]\n[params.b]\nvalues = [{values}]\n")
        with Measure() as m:
            result = crawl(load_source(toml), CrawlOptions(count=count, out=work / "memory.h5",
                                                            concurrency=concurrency, progress=False))
            m.stop()
    finally:
        server.terminate()
        server.join()
    s = result.summary
    n = s.stored
    # On idle cores the crawler process (one event loop, GIL-bound) and the whole tree
    # (spread over every core) are the two limits.
    idle_rate = n / max(m.cpu_self, m.cpu_total / CORES)
    print(f"(a) crawler overhead: {n} images stored in {m.wall:.2f} s = {n / m.wall:.0f} images/s wall "
          f"(failed {s.n_failed}, duplicates {s.duplicates})")
    print(f"    CPU: crawler {1000 * m.cpu_self / n:.2f} ms/image, crawler + server {1000 * m.cpu_total / n:.2f} ms/image"
          f" -> {idle_rate:.0f} images/s on {CORES} idle cores (target >= 1000/s)")


# ---- (b) the avatar server ----------------------------------------------------------

def _render_one(choice: dict) -> int:
    from crawlers.avatar_render import render_png

    return len(render_png(choice, 152))


def _warm(_: int) -> int:
    from crawlers.avatar_server import _warm as warm

    return warm(0)


def render_capacity(workers: int, n: int) -> tuple[float, float]:
    """(avatars/s wall, CPU s per avatar) of `workers` render processes by themselves."""
    choices = _random_choices(n, seed=999)
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("forkserver")) as pool:
        list(pool.map(_warm, range(workers)))
        with Measure() as m:
            list(pool.map(_render_one, choices, chunksize=1))
            m.stop()
    return n / m.wall, m.cpu_total / n


def bench_server(count: int, concurrency: int, workers: int, work: Path) -> Path:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # Capacity before and after the crawl, averaged: the machine's load drifts during a run.
    before, cpu_before = render_capacity(workers, count // 2)
    server = subprocess.Popen([sys.executable, "-m", "img2caricature", "avatar-server", "--port", str(port),
                               "--workers", str(workers)], cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        _wait_for(f"http://127.0.0.1:{port}/params")
        out = work / "avatars.h5"
        with Measure() as m:
            result = crawl(load_source(LOCAL, f"http://127.0.0.1:{port}"),
                           CrawlOptions(count=count, out=out, concurrency=concurrency, progress=False))
            m.stop()
    finally:
        server.terminate()
        server.wait()
    after, cpu_after = render_capacity(workers, count // 2)
    capacity, render_cpu = (before + after) / 2, (cpu_before + cpu_after) / 2
    n = result.summary.stored
    rate, crawl_cpu = n / m.wall, m.cpu_total / n
    print(f"(b) render capacity ({workers} processes, no HTTP): {capacity:.1f} avatars/s wall "
          f"({before:.1f} before the crawl, {after:.1f} after)")
    print(f"    crawl through the avatar server: {n} images in {m.wall:.1f} s = {rate:.1f} images/s wall "
          f"= {100 * rate / capacity:.0f}% of capacity")
    server_main = m.cpu_by_pid.get(server.pid, 0.0)
    print(f"    CPU per image in the crawl: crawler {1000 * m.cpu_self / n:.2f} ms, server's event loop "
          f"{1000 * server_main / n:.2f} ms, render processes {1000 * (m.cpu_total - m.cpu_self - server_main) / n:.2f} ms")
    print(f"    CPU: rendering alone {1000 * render_cpu:.1f} ms/avatar; crawl (crawler + server + renders) "
          f"{1000 * crawl_cpu:.1f} ms/image -> on idle cores the crawl reaches "
          f"{100 * render_cpu / crawl_cpu:.0f}% of the rendering capacity (target >= 90%)")
    return out


def _wait_for(url: str, timeout_s: float = 300) -> None:
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
    from torchvision.utils import make_grid, save_image

    from img2caricature import dataset

    images = dataset.load_images(h5)[:n]
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(make_grid(images.float() / 255, nrow=8, padding=2, pad_value=0.5), path)
    print(f"grid of {len(images)} crawled avatars: {path}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--count-a", type=int, default=4000, help="images for (a) (default: 4000)")
    p.add_argument("--count-b", type=int, default=600, help="images for (b) (default: 600)")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--workers", type=int, default=CORES, help="render processes for (b) (default: one per core)")
    p.add_argument("--grid", type=Path, default=ROOT / "runs" / "benchmarks" / "crawl_grid.png")
    p.add_argument("--only", choices=["a", "b"], default=None)
    args = p.parse_args()
    print(f"{CORES} CPU cores, load average {os.getloadavg()[0]:.2f} before starting, nice {os.nice(0)}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.only in (None, "a"):
            bench_overhead(args.count_a, args.concurrency, work)
        if args.only in (None, "b"):
            save_grid(bench_server(args.count_b, args.concurrency, args.workers, work), args.grid)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
