"""The avatar server, as a client sees it: a real aiohttp server on 127.0.0.1."""

import io
import json
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from crawlers.avatar_render import render_png
from crawlers.avatar_server import make_app, server_options
from crawlers.avatar_space import PARAMS, BadParameter, parse_query
from crawlers.serving import serve_in_thread


@pytest.fixture(scope="module")
def server():
    with serve_in_thread(make_app(workers=1), **server_options()) as url:  # a real process pool of one
        yield url


def get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read()


def test_params_lists_the_space(server):
    status, ctype, body = get(server + "/params")
    assert status == 200 and ctype.startswith("application/json")
    space = json.loads(body)
    assert set(space["params"]) == set(PARAMS)
    assert "short_flat" in space["params"]["top"]["values"]
    assert "prescription_1" in space["params"]["accessory"]["values"]
    assert space["size"]["default"] == 152


def test_avatar_is_a_png_of_a_face_in_the_middle(server):
    status, ctype, body = get(server + "/avatar.png?top=bob&skin_color=dark_brown&accessory=round")
    assert status == 200 and ctype == "image/png"
    img = Image.open(io.BytesIO(body))
    assert img.format == "PNG" and img.size == (152, 152) and img.mode == "RGBA"
    alpha = np.asarray(img)[:, :, 3]
    ys, xs = np.nonzero(alpha > 128)
    assert abs(xs.mean() - 76) < 12  # centred left-right
    assert alpha[76, 76] == 255      # the face covers the centre
    face = np.asarray(img)[50:110, 46:106, :3].astype(int).reshape(-1, 3)
    is_skin = np.abs(face - (0xAE, 0x5D, 0x29)).max(axis=1) < 8  # dark brown, not the default light
    assert is_skin.mean() > 0.3


def test_size_and_parameters_change_the_picture(server):
    _, _, small = get(server + "/avatar.png?size=64")
    assert Image.open(io.BytesIO(small)).size == (64, 64)
    _, _, a = get(server + "/avatar.png?top=bob")
    _, _, b = get(server + "/avatar.png?top=fro")
    _, _, a2 = get(server + "/avatar.png?top=bob")
    assert a != b and a == a2  # deterministic


@pytest.mark.parametrize("query, message", [
    ("top=nope", "unknown value 'nope' for 'top'"),
    ("hair=bob", "unknown parameter 'hair'"),
    ("top=bob&top=fro", "given 2 times"),
    ("size=0", "size must be"),
    ("size=abc", "size must be"),
    ("size=99999", "size must be"),
    ("top=", "unknown value '' for 'top'"),
    ("top=%00%ff", "unknown value"),
])
def test_bad_requests_are_400_with_json(server, query, message):
    status, ctype, body = get(server + "/avatar.png?" + query)
    assert status == 400 and ctype.startswith("application/json")
    assert message in json.loads(body)["error"]


def test_unknown_path_is_a_json_404(server):
    status, ctype, body = get(server + "/nothing")
    assert status == 404 and "error" in json.loads(body)


def test_every_value_of_every_parameter_renders():
    """No value in /params may make the renderer fail (that would be a 500)."""
    base = {p.name: p.default for p in PARAMS.values()}
    for param in PARAMS.values():
        for value in param.values:
            png = render_png({**base, param.name: value}, 24)
            assert png[:8] == b"\x89PNG\r\n\x1a\n", (param.name, value)


def test_parse_query_fills_defaults():
    choice, size = parse_query({"top": ["bob"]})
    assert choice["top"] == "bob" and choice["skin_color"] == PARAMS["skin_color"].default and size == 152
    with pytest.raises(BadParameter) as err:
        parse_query({"eyes": ["x"]})
    assert "default" in err.value.allowed


def test_cli_refuses_a_busy_port(capsys):
    import socket

    from img2caricature.cli import main

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["avatar-server", "--port", str(port), "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("img2car avatar-server: error: cannot listen on 127.0.0.1:")
