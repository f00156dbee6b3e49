"""`img2car caricature` latency: per photo with the model loaded (read, detect, crop, f, g,
upscale, write PNG), and the cold start of the whole CLI. Targets on a 2-core CPU:
<= 50 ms per photo warm, <= 3 s cold.

    python benchmarks/caricature.py [--model PATH] [--photo examples/astronaut.jpg] [--repeats 20]
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="default: the model shipped in the package")
    p.add_argument("--photo", default="examples/astronaut.jpg")
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args()

    from img2caricature.caricature import Outputs, caricature_photo, load_model
    from img2caricature.commands.caricature import crop_finder

    torch.set_num_threads(2)
    device = torch.device("cpu")
    model = load_model(args.model, device)
    find = crop_finder()
    with tempfile.TemporaryDirectory() as tmp:
        outputs = Outputs(Path(tmp), single=False)
        caricature_photo(Path(args.photo), model, find, outputs, 256, False, device)  # warm-up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            caricature_photo(Path(args.photo), model, find, outputs, 256, False, device)
            times.append(time.perf_counter() - start)
        print(f"warm, per photo: median {1000 * statistics.median(times):.1f} ms, "
              f"best {1000 * min(times):.1f} ms over {args.repeats} runs ({args.photo})")

        cold = []
        cmd = [sys.executable, "-m", "img2caricature", "caricature", args.photo, "-o", str(Path(tmp) / "cold.png")]
        if args.model:
            cmd += ["--model", args.model]
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            cold.append(time.perf_counter() - start)
        print(f"cold CLI start to emoji written: median {statistics.median(cold):.2f} s, best {min(cold):.2f} s")


if __name__ == "__main__":
    main()
