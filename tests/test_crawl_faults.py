"""The crawler against a misbehaving server: it reaches its count and stores nothing bad."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from crawlers.serving import serve_in_thread
from img2caricature import dataset
from img2caricature.cli import main
from img2caricature.images import sha256
from tests.crawl_fakes import FakeApi, expected_sha, write_source

ROOT = Path(__file__).resolve().parents[1]


def check_file(path: Path, count: int) -> None:
    """Exactly `count` records, each the right image for its URL and parameters, no duplicates."""
    info = dataset.info(path, "emoji")
    assert info.count == count and info.names == ["a", "b", "c"]
    params = dataset.read_column(path, "params")
    urls = dataset.read_column(path, "urls")
    shas = dataset.read_column(path, "sha256")
    assert len({tuple(p) for p in params}) == count and len(set(shas)) == count
    for p, url, sha in zip(params, urls, shas):
        assert url.endswith(f"a={p[0]}&b={p[1]}&c={p[2]}")
        assert sha == expected_sha(url)
    images = dataset.load_images(path).permute(0, 2, 3, 1).numpy()
    assert images.shape == (count, 152, 152, 3)
    assert [sha256(im) for im in images] == list(shas)  # the pixels stored are the pixels hashed


def test_crawl_survives_every_fault(tmp_path, capsys):
    # 30% 500s, plus one of each other fault, per 20 requests
    script = ["500"] * 6 + ["429", "stall", "drop", "html", "truncated"] + ["ok"] * 9
    fake = FakeApi(script, stall_s=1.0)
    out = tmp_path / "e.h5"
    with serve_in_thread(fake.app()) as url:
        source = write_source(tmp_path / "fake.toml", url, timeout_s=0.4, max_tries=8)
        code = main(["crawl", "--source", str(source), "--count", "60", "--out", str(out),
                     "--concurrency", "8", "--no-progress"])
    summary = capsys.readouterr().out
    assert code == 0, summary
    for fault in ["500", "429", "stall", "drop", "html", "truncated"]:
        assert fake.served[fault] > 0
    check_file(out, 60)
    # the HTML pages and half PNGs were refused, and counted by reason
    assert "invalid (not an image)" in summary and "invalid (corrupt)" in summary
    assert "stored:     60 new" in summary


def test_retry_after_is_honoured(tmp_path, capsys):
    fake = FakeApi(["429"] + ["ok"] * 5)
    with serve_in_thread(fake.app()) as url:
        source = write_source(tmp_path / "fake.toml", url)
        assert main(["crawl", "--source", str(source), "--count", "2", "--out", str(tmp_path / "e.h5"),
                     "--concurrency", "1", "--no-progress"]) == 0
    (q1, t1), (q2, t2) = fake.requests[:2]
    assert q1 == q2 and t2 - t1 >= 0.95  # Retry-After: 1, not the 0.01 s backoff


def test_gives_up_after_bounded_tries_and_counts_by_reason(tmp_path, capsys):
    fake = FakeApi(["503"])
    with serve_in_thread(fake.app()) as url:
        source = write_source(tmp_path / "fake.toml", url, max_tries=3)
        code = main(["crawl", "--source", str(source), "--count", "5", "--out", str(tmp_path / "e.h5"),
                     "--concurrency", "1", "--max-failures", "4", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1 and "stopped before 5" in captured.err
    assert "failed:     4 (http 503: 4)" in captured.out
    assert len(fake.requests) == 4 * 3  # 4 vectors, 3 tries each
    assert dataset.info(tmp_path / "e.h5").count == 0


def test_client_errors_are_not_retried(tmp_path, capsys):
    fake = FakeApi(["404"])
    with serve_in_thread(fake.app()) as url:
        source = write_source(tmp_path / "fake.toml", url)
        assert main(["crawl", "--source", str(source), "--count", "5", "--out", str(tmp_path / "e.h5"),
                     "--concurrency", "1", "--max-failures", "3", "--no-progress"]) == 1
    assert len(fake.requests) == 3 and "http 404: 3" in capsys.readouterr().out


def test_rate_limit(tmp_path, capsys):
    fake = FakeApi()
    with serve_in_thread(fake.app()) as url:
        source = write_source(tmp_path / "fake.toml", url)
        start = time.monotonic()
        assert main(["crawl", "--source", str(source), "--count", "11", "--out", str(tmp_path / "e.h5"),
                     "--rate", "20", "--no-progress"]) == 0
        elapsed = time.monotonic() - start
    times = [t for _, t in fake.requests]
    assert times[-1] - times[0] >= 0.45 and elapsed >= 0.45  # 11 requests at 20/s: 10 gaps of 50 ms


def test_sigkill_leaves_whole_records_and_a_rerun_finishes(tmp_path, capsys):
    fake = FakeApi(["ok"] * 9 + ["500"], delay_s=0.01)
    out = tmp_path / "e.h5"
    with serve_in_thread(fake.app()) as url:
        source = write_source(tmp_path / "fake.toml", url)
        cmd = [sys.executable, "-m", "img2caricature", "crawl", "--source", str(source), "--count", "300",
               "--out", str(out), "--concurrency", "4", "--no-progress"]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(fake.requests) < 120 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        killed_at = dataset.info(out).count
        assert 0 < killed_at < 300
        check_file(out, killed_at)
        before = dataset.read_column(out, "sha256")
        assert main(["crawl", "--source", str(source), "--count", "300", "--out", str(out),
                     "--concurrency", "4", "--no-progress"]) == 0
    check_file(out, 300)
    assert list(dataset.read_column(out, "sha256")[:killed_at]) == list(before)
    assert f"resumed:    {killed_at} already in the file" in capsys.readouterr().out
