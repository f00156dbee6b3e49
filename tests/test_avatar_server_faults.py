"""The avatar server against clients that misbehave (issue 17, class 6): every bad parameter
is a 400, abandoned requests are not rendered, renders waiting are bounded, and a
connection that never finishes its headers is closed."""

import json
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from crawlers.avatar_server import make_app, server_options
from crawlers.serving import serve_in_thread


class SlowPool(ThreadPoolExecutor):
    """One render at a time, each `delay_s` longer, counting the renders that really ran."""

    def __init__(self, delay_s: float):
        super().__init__(1)
        self.delay_s, self.ran = delay_s, 0

    def submit(self, fn, /, *args, **kwargs):
        def run():
            self.ran += 1
            time.sleep(self.delay_s)
            return fn(*args, **kwargs)
        return super().submit(run)


def get(url: str, timeout: float = 60) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


@pytest.fixture(scope="module")
def server():
    pool = SlowPool(0.0)
    with serve_in_thread(make_app(workers=1, pool=pool), **server_options()) as url:
        yield url
    pool.shutdown()


@pytest.mark.parametrize("size", ["%C2%B2", "1" * 5000, "-5", "+64", "64.0", "%2064", "0x40", "%EF%BC%96%EF%BC%94"])
def test_every_bad_size_is_a_400(server, size):
    status, headers, body = get(f"{server}/avatar.png?size={size}")
    assert status == 400 and headers["Content-Type"].startswith("application/json")
    assert "size must be an integer" in json.loads(body)["error"]


def test_requests_whose_client_hung_up_are_not_rendered():
    pool = SlowPool(0.2)
    with serve_in_thread(make_app(workers=1, pool=pool), **server_options()) as url:
        host, port = url.removeprefix("http://").split(":")
        clients = [socket.create_connection((host, int(port))) for _ in range(30)]
        for i, c in enumerate(clients):
            c.sendall(b"GET /avatar.png?size=16 HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.05)
        for c in clients:
            c.close()  # gave up after 50 ms
        time.sleep(0.3)
        start = time.monotonic()
        status, _, _ = get(f"{url}/avatar.png?size=16")
        waited = time.monotonic() - start
    pool.shutdown()
    assert status == 200
    assert pool.ran <= 5, pool.ran  # the one rendering when they left, and the next request's
    assert waited < 2.0, waited    # not 30 x 0.2 s behind abandoned work


def test_renders_waiting_are_bounded():
    pool = SlowPool(0.3)
    with serve_in_thread(make_app(workers=1, pool=pool, max_queued=3), **server_options()) as url:
        with ThreadPoolExecutor(12) as clients:
            answers = list(clients.map(lambda i: get(f"{url}/avatar.png?size=16"), range(12)))
    pool.shutdown()
    statuses = sorted(status for status, _, _ in answers)
    assert statuses.count(200) >= 3 and statuses.count(503) >= 6, statuses
    busy = [(h, b) for s, h, b in answers if s == 503]
    assert all(h["Retry-After"] == "1" and "busy" in json.loads(b)["error"] for h, b in busy)


def test_a_connection_that_never_finishes_its_headers_is_closed():
    pool = SlowPool(0.0)
    with serve_in_thread(make_app(workers=1, pool=pool), **server_options(header_timeout_s=1.0)) as url:
        host, port = url.removeprefix("http://").split(":")
        slow = [socket.create_connection((host, int(port))) for _ in range(50)]
        for c in slow:
            c.sendall(b"GET /avatar.png HTTP/1.1\r\nHost: t\r\n")  # and never the blank line
            c.settimeout(10)
        start = time.monotonic()
        closed = [c.recv(1024) == b"" for c in slow]
        waited = time.monotonic() - start
        assert get(f"{url}/params")[0] == 200  # the server still serves
    pool.shutdown()
    for c in slow:
        c.close()
    assert all(closed) and waited < 5, waited
