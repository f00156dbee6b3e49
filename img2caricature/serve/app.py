"""The web app behind `img2car serve`: one page, and one endpoint that turns a photo into emoji.

    GET  /                      the page (static/index.html)
    GET  /api/info              limits and features the page adapts to
    POST /api/caricature        body: the photo's bytes (or a multipart form with one file)
         ?all_faces=1&detect=0&size=256
         -> 200 {"faces": [{"face": PNG data URL, "emoji": PNG data URL}], "avatar": null, "ms": ...}
         -> 4xx/503 {"error": "one sentence for the person at the page"}

Uploads are read into memory, never written to disk, and dropped with the answer. The
body size is capped (413), and at most `concurrency` photos are drawn at once with
`queue` more waiting; a request beyond that is told the server is busy (503) before its
body is read. Inference runs in a thread pool, so the event loop keeps answering.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from typing import Callable

import numpy as np
from aiohttp import web
from PIL import Image

from img2caricature.api import Caricaturist, to_rgb
from img2caricature.images import MAX_PIXELS, ImageError

log = logging.getLogger(__name__)

# The editable avatar (`api.load_avatar`): face crop (RGB array) -> {"params": ..., "svg": ...}.
# When given, each answer carries it as "avatar" and the page shows its section.
AvatarMaker = Callable[[np.ndarray], dict]


@dataclass(frozen=True)
class ServeOptions:
    max_upload_mb: float = 10.0   # a phone photo is 2-8 MB
    concurrency: int = 2          # photos drawn at once (the CPU's cores are the real limit)
    queue: int = 8                # requests allowed to wait for a turn; beyond: 503
    size: int = 256               # default emoji side, pixels

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


class PageError(Exception):
    """A sentence for the page, with its HTTP status."""

    def __init__(self, status: int, sentence: str):
        super().__init__(sentence)
        self.status, self.sentence = status, sentence


def sentence_for(err: ImageError, stage: str) -> str:
    """The image readers' short reasons as sentences a person can act on."""
    if stage == "read":
        return {
            "not an image": "That file is not a picture this page can read: try a JPEG, PNG, WebP, GIF, BMP or TIFF photo.",
            "corrupt": "That picture is damaged or cut short: try saving it again.",
            "too small": f"That picture is too small ({err.detail} pixels) to hold a face.",
            "too large": f"That picture has too many pixels (at most {MAX_PIXELS // 1_000_000} megapixels).",
        }.get(err.reason, f"That picture cannot be used ({err.reason}).")
    return {
        "no face": "No face was found in that photo: try one where the face is large, lit and looking at the "
                   "camera, or tick \u201cthe photo is already a face\u201d.",
        "too small": "The faces in that photo are too small: try a closer photo.",
    }.get(err.reason, f"No usable face in that photo ({err.reason}).")


def png_data_url(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def caricature_upload(model: Caricaturist, data: bytes, all_faces: bool, detect: bool, size: int,
                      avatar: AvatarMaker | None) -> dict:
    """Photo bytes -> the page's answer. Runs in a worker thread."""
    start = time.perf_counter()
    try:
        rgb = to_rgb(data)
    except ImageError as err:
        raise PageError(422, sentence_for(err, "read")) from None
    try:
        faces = model.faces(rgb, all_faces=all_faces, detect=detect)
    except ImageError as err:
        raise PageError(422, sentence_for(err, "faces")) from None
    emoji = model.draw(faces, size=size)
    return {"faces": [{"face": png_data_url(f.resize((size, size), Image.Resampling.BICUBIC)),
                       "emoji": png_data_url(e)} for f, e in zip(faces, emoji)],
            "avatar": avatar(np.asarray(faces[0])) if avatar else None,
            "ms": round(1000 * (time.perf_counter() - start), 1)}


async def read_upload(request: web.Request, limit: int) -> bytes:
    """The photo's bytes, held in memory only: a raw body, or the first file of a multipart form
    (read part by part: aiohttp's `post()` would spool the file to a temporary file)."""
    too_large = PageError(413, f"That file is larger than the {limit / 2**20:.3g} MB limit.")
    if request.content_length is not None and request.content_length > limit:
        raise too_large
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        async for part in reader:
            if getattr(part, "filename", None) is None:
                continue
            data = bytearray()
            while chunk := await part.read_chunk():
                data += chunk
                if len(data) > limit:
                    raise too_large
            return bytes(data)
        return b""
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise too_large from None


def flag(request: web.Request, name: str, default: bool) -> bool:
    value = request.query.get(name)
    return default if value is None else value.lower() in ("1", "true", "yes", "on")


class Admission:
    """At most `running + waiting` requests inside; the rest are turned away. (The thread pool,
    `running` workers wide, is what keeps the others waiting.)"""

    def __init__(self, running: int, waiting: int):
        self.capacity = running + waiting
        self.inside = 0

    def enter(self) -> None:
        if self.inside >= self.capacity:
            raise PageError(503, "The server is busy with other photos: try again in a moment.")
        self.inside += 1

    def leave(self) -> None:
        self.inside -= 1


OPTIONS: web.AppKey[ServeOptions] = web.AppKey("options", ServeOptions)
MODEL: web.AppKey[Caricaturist] = web.AppKey("model", Caricaturist)
POOL: web.AppKey[ThreadPoolExecutor] = web.AppKey("pool", ThreadPoolExecutor)
AVATAR: web.AppKey[object] = web.AppKey("avatar", object)
ADMISSION: web.AppKey[Admission] = web.AppKey("admission", Admission)


async def caricature(request: web.Request) -> web.Response:
    app, options = request.app, request.app[OPTIONS]
    try:
        size = int(request.query.get("size", options.size))
        if not 8 <= size <= 1024:
            raise ValueError
    except ValueError:
        return web.json_response({"error": "size must be a whole number of pixels from 8 to 1024."}, status=400)
    try:
        app[ADMISSION].enter()
    except PageError as err:
        return web.json_response({"error": err.sentence}, status=err.status, headers={"Retry-After": "2"})
    try:
        data = await read_upload(request, options.max_upload_bytes)
        if not data:
            raise PageError(400, "No photo was sent: pick or drop a photo first.")
        answer = await asyncio.get_running_loop().run_in_executor(
            app[POOL], caricature_upload, app[MODEL], data, flag(request, "all_faces", False),
            flag(request, "detect", True), size, app[AVATAR])
        return web.json_response(answer)
    except PageError as err:
        return web.json_response({"error": err.sentence}, status=err.status)
    except Exception:  # a bug, not the user's photo: say so in the page, keep the traceback in the log
        log.exception("caricature failed")
        return web.json_response({"error": "Something went wrong on the server while drawing the emoji."}, status=500)
    finally:
        app[ADMISSION].leave()


async def info(request: web.Request) -> web.Response:
    options = request.app[OPTIONS]
    return web.json_response({"max_upload_bytes": options.max_upload_bytes, "size": options.size,
                              "avatar": request.app[AVATAR] is not None})


def page_html() -> bytes:
    return (resources.files("img2caricature.serve") / "static" / "index.html").read_bytes()


def make_app(model: Caricaturist, options: ServeOptions = ServeOptions(),
             avatar: AvatarMaker | None = None) -> web.Application:
    # client_max_size: aiohttp's own cap on a body read whole (a little over ours, so our
    # sentence, not its bare 413, is what a too-large raw upload gets)
    app = web.Application(client_max_size=options.max_upload_bytes + 1)
    app[OPTIONS], app[MODEL], app[AVATAR] = options, model, avatar
    html = page_html()

    async def index(request: web.Request) -> web.Response:
        return web.Response(body=html, content_type="text/html", charset="utf-8",
                            headers={"Cache-Control": "no-cache"})

    app.router.add_get("/", index)
    app.router.add_get("/api/info", info)
    app.router.add_post("/api/caricature", caricature)

    async def context(app: web.Application):
        app[ADMISSION] = Admission(options.concurrency, options.queue)
        app[POOL] = ThreadPoolExecutor(options.concurrency, thread_name_prefix="caricature")
        yield
        app[POOL].shutdown(wait=False, cancel_futures=True)

    app.cleanup_ctx.append(context)
    return app


def serve(model: Caricaturist, host: str, port: int, options: ServeOptions = ServeOptions(),
          avatar: AvatarMaker | None = None) -> None:
    app = make_app(model, options, avatar)
    shown = f"[{host}]" if ":" in host else host
    ready = f"img2car serve: open http://{shown}:{port}/ in a browser (Ctrl-C stops)"
    web.run_app(app, host=host, port=port, access_log=None, print=lambda _: print(ready, flush=True))
