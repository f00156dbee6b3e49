"""Crawling the real avatar server, resuming, and the pieces the crawler is made of."""

import asyncio
import time
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from crawlers.avatar_server import make_app
from crawlers.fetch import RetryPolicy, retry_after_s
from crawlers.ratelimit import RateLimiter
from crawlers.serving import serve_in_thread
from crawlers.store import EmojiStore
from img2caricature import dataset
from img2caricature.cli import main
from img2caricature.errors import UserError
from tests.crawl_fakes import write_source

LOCAL = str(Path(__file__).resolve().parents[1] / "img2caricature" / "configs" / "sources" / "local.toml")


def test_crawl_the_avatar_server_then_continue(tmp_path, capsys):
    out = tmp_path / "e.h5"
    with serve_in_thread(make_app(workers=2)) as url:
        args = ["crawl", "--source", LOCAL, "--url", url, "--out", str(out), "--concurrency", "4", "--no-progress"]
        assert main([*args, "--count", "12"]) == 0
        first = dataset.load_images(out)
        first_params = dataset.read_column(out, "params")
        assert main([*args, "--count", "20"]) == 0
    assert "resumed:    12 already in the file" in capsys.readouterr().out
    info = dataset.info(out, "emoji")
    assert info.count == 20 and info.names[:2] == ["top", "hair_color"]
    images = dataset.load_images(out)
    params = dataset.read_column(out, "params")
    assert images.shape == (20, 3, 152, 152)
    assert (images[:12] == first).all() and (params[:12] == first_params).all()
    assert len({tuple(p) for p in params}) == 20 and len(set(dataset.read_column(out, "sha256"))) == 20
    corners = images[:, :, :4, :4].reshape(20, -1)
    assert (corners == 255).all()  # transparent background flattened to white
    centre = images[:, :, 60:90, 60:90].float().mean(dim=(1, 2, 3))
    assert (centre < 250).all()  # something (a face) is drawn in the middle
    urls = dataset.read_column(out, "urls")
    assert urls[0].startswith(url + "/avatar.png?top=")


def test_count_already_reached_does_nothing(tmp_path, capsys):
    out = tmp_path / "e.h5"
    with serve_in_thread(make_app(workers=1)) as url:
        args = ["crawl", "--source", LOCAL, "--url", url, "--out", str(out), "--no-progress"]
        assert main([*args, "--count", "3"]) == 0
        assert main([*args, "--count", "2"]) == 0
    assert dataset.info(out).count == 3
    assert "stored:     0 new (3 in the file)" in capsys.readouterr().out


def test_unreachable_server_fails_by_reason(tmp_path, capsys):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    source = write_source(tmp_path / "fake.toml", f"http://127.0.0.1:{port}", max_tries=3)
    code = main(["crawl", "--source", str(source), "--count", "5",
                 "--out", str(tmp_path / "e.h5"), "--max-failures", "2", "--concurrency", "1", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 1 and "connection: 2" in captured.out and "stopped before 5" in captured.err


def test_other_parameter_space_in_the_same_file_is_refused(tmp_path):
    path = tmp_path / "e.h5"
    EmojiStore(path, "test", ["a", "b"], [["x", "y"], ["1"]]).close()
    with pytest.raises(UserError, match=r"parameters \[a, b\], not \[a\]"):
        EmojiStore(path, "test", ["a"])
    with pytest.raises(UserError, match="different parameter values"):
        EmojiStore(path, "test", ["a", "b"], [["x", "z"], ["1"]])


def test_store_deduplicates_and_buffers(tmp_path):
    path = tmp_path / "e.h5"
    img = np.zeros((152, 152, 3), np.uint8)
    with EmojiStore(path, "test", ["a"], batch_size=100, max_delay_s=60) as store:
        assert store.add(img, (1,), "u1", "h1")
        assert not store.add(img, (1,), "u2", "h2")  # same vector
        assert not store.add(img, (2,), "u3", "h1")  # same image
        assert store.add(img, (2,), "u4", "h2")
        assert store.count == 2 and store.writer.count == 0  # still buffered ...
    assert dataset.info(path).count == 2  # ... and written on close
    with EmojiStore(path, "test", ["a"]) as store:
        assert store.has_params((2,)) and "h1" in store.hashes and not store.add(img, (3,), "u", "h2")


def test_retry_after_parsing():
    assert retry_after_s("7") == 7.0
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=30), usegmt=True)
    assert 25 < retry_after_s(later) <= 30
    assert retry_after_s(None) is None and retry_after_s("soon") is None


def test_backoff_doubles_with_jitter_and_a_cap():
    policy = RetryPolicy(max_tries=5, backoff_s=0.1, backoff_max_s=1.0)
    for attempt, cap in [(0, 0.1), (1, 0.2), (2, 0.4), (3, 0.8), (6, 1.0)]:
        delays = [policy.backoff(attempt) for _ in range(200)]
        assert cap / 2 <= min(delays) and max(delays) <= cap
        assert max(delays) - min(delays) > cap / 10  # jittered, not fixed


def test_rate_limiter_spaces_requests():
    async def go() -> float:
        limiter = RateLimiter(50)
        start = time.monotonic()
        await asyncio.gather(*(limiter.wait() for _ in range(11)))
        return time.monotonic() - start

    assert 0.19 <= asyncio.run(go()) < 0.5
