"""The crawler against an API that wastes it (issue 17, class 4): it ends, it flushes, it
holds at most `max_bytes` of an answer, and it stays on the source's host."""

import os
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from crawlers.serving import serve_in_thread
from img2caricature import dataset
from img2caricature.cli import main
from tests.crawl_fakes import FakeApi, gzip_of_zeros, write_source

ROOT = Path(__file__).resolve().parents[1]


def crawl(source: Path, out: Path, *args: str) -> int:
    return main(["crawl", "--source", str(source), "--out", str(out), "--no-progress", *args])


def crawl_in_a_subprocess(source: Path, out: Path, *args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    """A subprocess, so that a crawl that never ends fails the test instead of hanging it (the
    timeout is generous: importing torch on a busy machine can take a minute)."""
    cmd = [sys.executable, "-m", "img2caricature", "crawl", "--source", str(source), "--out", str(out),
           "--no-progress", *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_an_api_ignoring_its_parameters_stops_after_a_run_of_duplicates(tmp_path):
    fake = FakeApi(["same"])
    with serve_in_thread(fake.app()) as url:
        source = write_source(tmp_path / "fake.toml", url)
        done = crawl_in_a_subprocess(source, tmp_path / "e.h5", "--count", "3", "--concurrency", "2",
                                     "--max-duplicates", "30")
    assert done.returncode == 1, done.stderr[-2000:]
    assert "the last 30 answers were all images already stored" in done.stderr
    assert len(fake.requests) <= 30 + 1 + 2  # the run, the one stored, what was in flight
    assert dataset.info(tmp_path / "e.h5").count == 1


def test_each_vector_is_asked_for_once_so_a_small_space_ends(tmp_path):
    fake = FakeApi(["same"])
    with serve_in_thread(fake.app()) as url:
        source = write_source(tmp_path / "fake.toml", url)
        done = crawl_in_a_subprocess(source, tmp_path / "e.h5", "--count", "3", "--concurrency", "4",
                                     "--max-duplicates", "5000")
    assert done.returncode == 1 and "no new parameter vectors left" in done.stderr, done.stderr[-2000:]
    queries = [q for q, _ in fake.requests]
    assert len(queries) == len(set(queries)) == 1000  # the whole space, each vector once


def test_a_stalled_crawl_has_its_records_on_disk(tmp_path):
    """A burst of images, then only errors: the records must not wait in the buffer for a next one."""
    fake = FakeApi(["ok"] * 5 + ["503"] * 10**6)
    out = tmp_path / "e.h5"
    with serve_in_thread(fake.app()) as url:
        source = write_source(tmp_path / "fake.toml", url, max_tries=10**6)
        cmd = [sys.executable, "-m", "img2caricature", "crawl", "--source", str(source), "--count", "10",
               "--out", str(out), "--concurrency", "1", "--no-progress", "--max-failures", "1000000"]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 400
        while fake.served["503"] < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(2.5)  # the store flushes within about a second
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert fake.served["ok"] == 5 and dataset.info(out).count == 5


def test_an_endless_body_is_cut_off_at_max_bytes(tmp_path, capsys):
    fake = FakeApi(["huge"], huge_mb=256)
    with serve_in_thread(fake.app()) as url:
        source = write_source(tmp_path / "fake.toml", url, extra=f"max_bytes = {2**20}")
        assert crawl(source, tmp_path / "e.h5", "--count", "1", "--concurrency", "1", "--max-failures", "2") == 1
    assert "too large: 2" in capsys.readouterr().out
    assert fake.served["huge"] == 2  # not retried: a larger answer won't shrink
    assert fake.bytes_sent < 2 * 40 * 2**20  # the client hung up (socket buffers hold a few MiB)


def test_a_gzip_bomb_is_not_unpacked_past_max_bytes(tmp_path, capsys):
    fake = FakeApi(["bomb"], bomb=gzip_of_zeros(256 * 2**20))  # 256 MiB in about 250 KiB
    with serve_in_thread(fake.app()) as url:
        source = write_source(tmp_path / "fake.toml", url, extra=f"max_bytes = {2**20}")
        tracemalloc.start()
        try:
            code = crawl(source, tmp_path / "e.h5", "--count", "1", "--concurrency", "2", "--max-failures", "2")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert code == 1 and "too large: 2" in capsys.readouterr().out
    assert peak < 32 * 2**20, f"{peak / 2**20:.0f} MiB held"


@pytest.mark.parametrize("target, allowed, stored", [
    ("same origin", "", True),
    ("other port", "", False),
    ("other host", "", False),
    ("other host", "allowed", True),
])
def test_redirects_stay_on_the_sources_host_unless_it_allows_more(tmp_path, capsys, target, allowed, stored):
    elsewhere = FakeApi()
    with serve_in_thread(elsewhere.app()) as other:
        port = other.rsplit(":", 1)[1]
        redirector = FakeApi(["redirect"])
        with serve_in_thread(redirector.app()) as url:
            redirector.redirect_to = {"same origin": url, "other port": other,
                                      "other host": f"http://localhost:{port}"}[target]
            extra = f'redirect_hosts = ["localhost:{port}"]' if allowed else ""
            source = write_source(tmp_path / "fake.toml", url, extra=extra)
            code = crawl(source, tmp_path / "e.h5", "--count", "2", "--concurrency", "1", "--max-failures", "2")
    summary = capsys.readouterr().out
    if stored:
        assert code == 0 and dataset.info(tmp_path / "e.h5").count == 2
    else:
        assert code == 1 and "redirect off host: 2" in summary
        assert dataset.info(tmp_path / "e.h5").count == 0 and not elsewhere.requests
