"""`img2car serve` over HTTP, as the page and curl use it: a real server on 127.0.0.1.
(The page itself, in a real browser: test_serve_browser.py.)"""

import base64
import builtins
import http.client
import io
import json
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image

from crawlers.serving import serve_in_thread
from img2caricature.cli import main
from img2caricature.serve.app import ADMISSION, ServeOptions, make_app
from tests.preprocess_photos import ASTRONAUT, astronaut, save, save_corrupt, two_faces
from tests.shipped_model import shipped_model

LIMIT_MB = 0.1  # ~105 kB: the astronaut (75 kB) fits, 200 kB does not
PHOTO = ASTRONAUT.read_bytes()


@pytest.fixture(scope="module")
def model():
    return shipped_model()


@pytest.fixture(scope="module")
def server(model):
    with serve_in_thread(make_app(model, ServeOptions(max_upload_mb=LIMIT_MB))) as url:
        yield url


def request(url: str, body: bytes | None = None, content_type: str = "image/jpeg") -> tuple[int, dict | bytes]:
    req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
    if body is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            status, ctype, data = resp.status, resp.headers["Content-Type"], resp.read()
    except urllib.error.HTTPError as err:
        status, ctype, data = err.code, err.headers["Content-Type"], err.read()
    return status, json.loads(data) if ctype.startswith("application/json") else data


def multipart(data: bytes, filename: str = "photo.jpg") -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"{filename}\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def png(data_url: str) -> np.ndarray:
    assert data_url.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))) as img:
        assert img.format == "PNG"
        return np.asarray(img.convert("RGB"))


def test_the_page_and_its_settings(server):
    status, page = request(server + "/")
    assert status == 200 and b'id="file"' in page and b"api/caricature" in page
    status, info = request(server + "/api/info")
    assert status == 200 and info == {"max_upload_bytes": int(LIMIT_MB * 2**20), "size": 256, "avatar": False}


def test_a_photo_gets_its_face_and_the_apis_emoji(server, model):
    status, answer = request(server + "/api/caricature", PHOTO)
    assert status == 200, answer
    face, = answer["faces"]
    assert png(face["face"]).shape == (256, 256, 3)
    assert np.array_equal(png(face["emoji"]), np.asarray(model(ASTRONAUT)))  # the API's own emoji
    assert answer["avatar"] is None and answer["ms"] > 0


def test_multipart_form_every_face_and_size(server, tmp_path):
    photo = save(two_faces(astronaut(320)), tmp_path / "two.jpg").read_bytes()
    body, ctype = multipart(photo)
    status, answer = request(server + "/api/caricature?all_faces=1&size=64", body, ctype)
    assert status == 200, answer
    assert [png(f["emoji"]).shape for f in answer["faces"]] == [(64, 64, 3)] * 2
    wall = save(np.full((200, 300, 3), 200, np.uint8), tmp_path / "wall.jpg").read_bytes()
    status, answer = request(server + "/api/caricature?detect=0", wall)
    assert status == 200 and len(answer["faces"]) == 1  # no detection: the whole photo is the face


@pytest.mark.parametrize("body, status, words", [
    (b"just some text\n", 422, "not a picture"),
    (b"", 400, "No photo was sent"),
    ("truncated", 422, "damaged or cut short"),
    ("wall", 422, "No face was found"),
    ("tiny", 422, "too small"),
])
def test_bad_photos_get_one_sentence(server, tmp_path, body, status, words):
    if body == "truncated":
        body = save_corrupt(tmp_path / "cut.jpg").read_bytes()
    elif body == "wall":
        body = save(np.full((240, 240, 3), 127, np.uint8), tmp_path / "wall.jpg").read_bytes()
    elif body == "tiny":
        body = save(np.zeros((4, 4, 3), np.uint8), tmp_path / "tiny.png").read_bytes()
    got, answer = request(server + "/api/caricature", body)
    assert got == status and words in answer["error"]
    assert answer["error"].endswith(".") and "\n" not in answer["error"]


def test_bad_size_is_a_sentence(server):
    assert request(server + "/api/caricature?size=5", PHOTO) == (
        400, {"error": "size must be a whole number of pixels from 8 to 1024."})


def post_chunked(url: str, body: bytes, content_type: str) -> tuple[int, dict]:
    """Sent without a Content-Length, so the limit must be enforced while reading."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("POST", "/api/caricature", body=iter([body[i:i + 8192] for i in range(0, len(body), 8192)]),
                     headers={"Content-Type": content_type}, encode_chunked=True)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


@pytest.mark.parametrize("how", ["raw", "raw chunked", "multipart", "multipart chunked"])
def test_uploads_over_the_limit_are_refused(server, how):
    big = PHOTO + bytes(200_000)  # a JPEG with junk after it: only its size is wrong
    body, ctype = multipart(big) if how.startswith("multipart") else (big, "image/jpeg")
    if how.endswith("chunked"):
        status, answer = post_chunked(server, body, ctype)
    else:
        status, answer = request(server + "/api/caricature", body, ctype)
    assert status == 413 and answer["error"] == f"That file is larger than the {LIMIT_MB:g} MB limit."
    small, ctype = multipart(PHOTO) if how.startswith("multipart") else (PHOTO, "image/jpeg")
    assert (post_chunked(server, small, ctype) if how.endswith("chunked") else
            request(server + "/api/caricature", small, ctype))[0] == 200


def test_nothing_uploaded_is_written_to_disk(model, monkeypatch):
    """Every way Python writes a file is closed off while the server reads uploads, large
    ones included (aiohttp's own form parser spools files over 1 MiB to a temporary file)."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"the server tried to write a file: {args[:2]}")

    real_open = builtins.open

    def open_read_only(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+"):
            refuse(file, mode)
        return real_open(file, mode, *args, **kwargs)

    for name in ("TemporaryFile", "NamedTemporaryFile", "SpooledTemporaryFile", "mkstemp", "mkdtemp"):
        monkeypatch.setattr(tempfile, name, refuse)
    monkeypatch.setattr(builtins, "open", open_read_only)
    monkeypatch.setattr(io, "open", open_read_only)
    large = PHOTO + bytes(3 * 2**20)  # a JPEG with padding after its end: still the same photo
    with serve_in_thread(make_app(model, ServeOptions(max_upload_mb=4))) as url:
        for photo in (PHOTO, large):
            body, ctype = multipart(photo)
            assert request(url + "/api/caricature", body, ctype)[0] == 200
            assert request(url + "/api/caricature", photo)[0] == 200


class SlowModel:
    """Stands in for the model: blocks until released, and counts how many run at once."""

    def __init__(self, real):
        self.real, self.release = real, threading.Event()
        self.running = self.most = 0
        self.lock = threading.Lock()

    def faces(self, rgb, **kwargs):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        self.release.wait(timeout=60)
        with self.lock:
            self.running -= 1
        return self.real.faces(rgb, **kwargs)

    def draw(self, faces, **kwargs):
        return self.real.draw(faces, **kwargs)


def test_concurrent_requests_are_bounded(model):
    slow = SlowModel(model)
    app = make_app(slow, ServeOptions(concurrency=2, queue=1))
    with serve_in_thread(app) as url:
        results: list[int] = []
        threads = [threading.Thread(target=lambda: results.append(request(url + "/api/caricature", PHOTO)[0]))
                   for _ in range(3)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while (app[ADMISSION].inside < 3 or slow.running < 2) and time.monotonic() < deadline:
            time.sleep(0.02)  # until 2 are drawing and 1 is waiting
        status, answer = request(url + "/api/caricature", PHOTO)  # one too many
        assert status == 503 and "busy" in answer["error"]
        slow.release.set()
        for t in threads:
            t.join(timeout=60)
        assert sorted(results) == [200, 200, 200] and slow.most == 2
        assert request(url + "/api/caricature", PHOTO)[0] == 200  # room again once they are done


def test_serve_command_errors(capsys, model):
    assert main(["serve", "--port", "70000"]) == 2
    assert main(["serve", "--max-upload-mb", "0"]) == 2
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["serve", "--port", str(taken.getsockname()[1]), "--device", "cpu"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and "--port must be" in err[0] and "--max-upload-mb" in err[1] and "cannot listen" in err[2]


def test_with_an_avatar_model_the_answer_holds_its_editable_avatar(model):
    """`img2car serve` hands the shipped avatar model to the page: the first face's avatar,
    as the avatar server's parameters (which `img2car avatar --params` re-renders) and SVG."""
    from crawlers.avatar_render import full_choice, to_svg
    from crawlers.avatar_space import parse_query
    from img2caricature.api import load_avatar
    from img2caricature.avatar.model import load_avatar_model

    avatar = load_avatar()
    with serve_in_thread(make_app(model, ServeOptions(), avatar)) as url:
        assert request(url + "/api/info")[1]["avatar"] is True
        status, answer = request(url + "/api/caricature", PHOTO)
    assert status == 200, answer
    params = answer["avatar"]["params"]
    assert parse_query({k: [v] for k, v in params.items()})[0] == params
    crop = np.asarray(model.faces(ASTRONAUT)[0])
    assert params == full_choice(load_avatar_model(None).traits([crop])[0])   # the first face's avatar
    assert answer["avatar"]["svg"] == to_svg(params, 256)
