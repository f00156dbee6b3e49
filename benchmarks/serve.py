"""`img2car serve` latency, warm: one photo from the moment the page gets it to its emoji shown
(upload, read, detect, crop, f, g, PNG-encode, answer, decode in the page), measured by the
page itself in headless Chromium; beside it the server's share and a bare API call, taken in
the same run so they compare as ratios.

    python benchmarks/serve.py [--photo examples/astronaut.jpg] [--repeats 20] [--chromium /usr/bin/chromium]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photo", default="examples/astronaut.jpg")
    p.add_argument("--model", default=None, help="default: the model shipped in the package")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = p.parse_args()

    from playwright.sync_api import sync_playwright

    import img2caricature
    from crawlers.serving import serve_in_thread
    from img2caricature.serve.app import make_app

    model = img2caricature.load(args.model, device="cpu")
    model.warm_up()
    with serve_in_thread(make_app(model)) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(url + "/")
        shown, server, api = [], [], []
        for i in range(args.repeats + 3):  # 3 warm-up rounds; page and API alternate, so both see the same load
            page.evaluate("delete document.body.dataset.latencyMs")
            page.set_input_files("#file", args.photo)
            page.wait_for_function("document.body.dataset.latencyMs", timeout=120_000)
            start = time.perf_counter()
            model(args.photo)
            if i >= 3:
                api.append(1000 * (time.perf_counter() - start))
                shown.append(float(page.evaluate("document.body.dataset.latencyMs")))
                server.append(float(page.evaluate("document.body.dataset.serverMs")))
        browser.close()

    def line(name: str, ms: list[float]) -> str:
        return f"{name:<34} median {statistics.median(ms):7.1f} ms   best {min(ms):7.1f} ms"

    print(f"{args.repeats} uploads of {args.photo}, warm:")
    print(line("page: upload -> emoji shown", shown))
    print(line("  server: read, find, draw, PNGs", server))
    print(line("bare API call model(photo)", api))


if __name__ == "__main__":
    main()
