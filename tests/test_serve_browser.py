"""The `img2car serve` page in a real browser: headless Chromium (Debian's) driven by Playwright.

Skips where Playwright or Chromium is missing, except under CI (`CI` set), where `.ci/run`
installs both and a skip would hide a broken install. With IMG2CAR_SCREENSHOT=PATH the
photo test saves its screenshot there (the README's docs/serve-page.png is made so).
"""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from crawlers.serving import serve_in_thread
from img2caricature.cli import main
from img2caricature.serve.app import make_app
from tests.preprocess_photos import ASTRONAUT, astronaut, save_not_image
from tests.shipped_model import shipped_model

TIMEOUT_MS = 60_000  # a loaded 2-core CI machine draws an emoji in well under a second; leave room


def chromium_path() -> str | None:
    return os.environ.get("IMG2CAR_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def need(what: str):
    if os.environ.get("CI"):
        pytest.fail(f"{what}: .ci/run should have installed it")
    pytest.skip(what)


def webcam_video(rgb: np.ndarray, path: Path) -> Path:
    """A one-frame Y4M video (4:2:0) of the photo: Chromium's fake webcam plays it in a loop."""
    h, w = (s - s % 2 for s in rgb.shape[:2])
    ycbcr = np.asarray(Image.fromarray(rgb[:h, :w]).convert("YCbCr"))
    chroma = ycbcr[:, :, 1:].reshape(h // 2, 2, w // 2, 2, 2).mean(axis=(1, 3)).round().astype(np.uint8)
    frame = ycbcr[:, :, 0].tobytes() + chroma[:, :, 0].tobytes() + chroma[:, :, 1].tobytes()
    path.write_bytes(f"YUV4MPEG2 W{w} H{h} F25:1 Ip A1:1 C420jpeg\n".encode() + b"FRAME\n" + frame)
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need("the playwright package is not installed (pip install -e '.[test]')")
    executable = chromium_path()
    if executable is None:
        need("no chromium on PATH (apt-get install chromium)")
    camera = webcam_video(astronaut(320), tmp_path_factory.mktemp("webcam") / "astronaut.y4m")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=[
            "--no-sandbox",  # CI runs as root
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={camera}"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def server():
    from img2caricature.api import load_avatar

    with serve_in_thread(make_app(shipped_model(), avatar=load_avatar())) as url:
        yield url


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1000, "height": 780}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server + "/")
    yield page
    context.close()


def emoji_shown(page, count: int = 1) -> None:
    page.wait_for_function(
        "n => { const e = [...document.querySelectorAll('#results img.emoji')];"
        " return e.length === n && e.every(i => i.complete && i.naturalWidth === 256); }", arg=count)
    assert page.locator("#error").is_hidden()


def test_a_photo_shows_its_face_and_emoji_to_download(page, tmp_path):
    page.set_input_files("#file", str(ASTRONAUT))
    emoji_shown(page)
    assert page.locator("#results img.face").count() == 1
    page.wait_for_function("document.body.dataset.latencyMs")
    assert page.locator("#status").inner_text().startswith("1 face, ")
    with page.expect_download() as download:
        page.get_by_text("Download PNG").click()
    assert download.value.suggested_filename == "astronaut.emoji.png"
    saved = tmp_path / "saved.png"
    download.value.save_as(saved)
    with Image.open(saved) as img:
        assert img.format == "PNG" and img.size == (256, 256)
    # the editable avatar: drawn, and its parameters downloadable as the JSON `img2car avatar --params` takes
    page.wait_for_function("() => { const i = document.querySelector('#avatar-svg img');"
                           " return i && i.complete && i.naturalWidth > 0; }")
    assert page.locator("#avatar").is_visible()
    if os.environ.get("IMG2CAR_SCREENSHOT"):
        page.screenshot(path=os.environ["IMG2CAR_SCREENSHOT"], full_page=True)
    with page.expect_download() as download:
        page.get_by_text("Download parameters (JSON)").click()
    assert download.value.suggested_filename == "astronaut.avatar.json"
    download.value.save_as(tmp_path / "avatar.json")
    assert main(["avatar", "--params", str(tmp_path / "avatar.json"), "-o", str(tmp_path)]) == 0


def test_a_text_file_shows_the_error_sentence(page, tmp_path):
    notes = save_not_image(tmp_path / "notes.txt")
    page.set_input_files("#file", str(notes))
    error = page.locator("#error")
    error.wait_for(state="visible")
    assert error.inner_text() == ("That file is not a picture this page can read: "
                                  "try a JPEG, PNG, WebP, GIF, BMP or TIFF photo.")
    assert page.locator("#results img").count() == 0


def test_a_file_over_the_limit_is_refused_before_upload(page, tmp_path):
    big = tmp_path / "huge.jpg"
    big.write_bytes(ASTRONAUT.read_bytes() + bytes(11 * 2**20))
    sent = []
    page.on("request", lambda r: sent.append(r.url) if "api/caricature" in r.url else None)
    page.set_input_files("#file", str(big))
    page.locator("#error").wait_for(state="visible")
    assert page.locator("#error").inner_text() == "That file is larger than the 10 MB limit."
    assert sent == []  # the page knew the limit: 11 MB were not uploaded for nothing


def test_a_dropped_photo_every_face_option(page):
    """Drag and drop, as a file manager does it, with "every face" ticked."""
    page.check("#all-faces")
    data = list(ASTRONAUT.read_bytes())
    transfer = page.evaluate_handle(
        "bytes => { const t = new DataTransfer();"
        " t.items.add(new File([new Uint8Array(bytes)], 'dropped.jpg', {type: 'image/jpeg'})); return t; }", data)
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    emoji_shown(page)
    assert page.locator("a.download").get_attribute("download") == "dropped.emoji.png"


def test_the_webcam_photo_is_drawn(page):
    page.click("#webcam-start")
    page.wait_for_function("document.getElementById('video').videoWidth > 0")
    page.click("#webcam-shoot")
    emoji_shown(page)
    assert page.locator("a.download").get_attribute("download") == "webcam.emoji.png"
