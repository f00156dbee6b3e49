"""`img2car avatar` latency: per photo with the model loaded (read, detect, crop, f, e, write
JSON + SVG + PNG drawn by the avatar engine), its parts, and the cold start of the whole CLI.

    python benchmarks/avatar.py [--model PATH] [--photo examples/astronaut.jpg] [--repeats 20]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="default: the avatar model shipped in the package")
    p.add_argument("--photo", default="examples/astronaut.jpg")
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args()

    from crawlers.avatar_render import full_choice, render_png, to_svg
    from img2caricature.avatar.model import load_avatar_model
    from img2caricature.commands.avatar import avatar_photo
    from preprocessing.finder import crop_finder
    from img2caricature.images import read_image

    torch.set_num_threads(2)
    device = torch.device("cpu")
    start = time.perf_counter()
    model = load_avatar_model(args.model, device)
    print(f"model load: {1000 * (time.perf_counter() - start):.0f} ms")
    find = crop_finder()
    photo = Path(args.photo)
    with tempfile.TemporaryDirectory() as tmp:
        avatar_photo(photo, model, find, Path(tmp), 256, device)  # warm-up
        warm = _median_ms(lambda: avatar_photo(photo, model, find, Path(tmp), 256, device), args.repeats)
        print(f"warm, per photo: median {warm:.1f} ms over {args.repeats} runs ({args.photo})")
        rgb = read_image(photo)
        crops = find(rgb)
        choice = full_choice(model.traits(crops, device)[0])
        for name, fn in [("  read", lambda: read_image(photo)), ("  detect + crop", lambda: find(rgb)),
                         ("  f + e", lambda: model.traits(crops, device)), ("  SVG", lambda: to_svg(choice, 256)),
                         ("  PNG (resvg)", lambda: render_png(choice, 256))]:
            print(f"{name}: {_median_ms(fn, args.repeats):.1f} ms")

        cold = []
        cmd = [sys.executable, "-m", "img2caricature", "avatar", args.photo, "-o", str(Path(tmp) / "cold")]
        if args.model:
            cmd += ["--model", args.model]
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            cold.append(time.perf_counter() - start)
        print(f"cold CLI start to avatar written: median {statistics.median(cold):.2f} s, best {min(cold):.2f} s")


if __name__ == "__main__":
    main()
