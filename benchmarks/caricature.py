"""`img2car caricature` latency: per photo with the model loaded (read, detect, crop, f, g,
upscale, write PNG), for each detector choice and for the old default (Haar on a 320-px
copy), interleaved in one run so their ratios hold on a busy machine; then the cold start
of the whole CLI with the default and with `--detector haar`, interleaved with a bare
`python -c "import torch"` (the floor no CLI start goes under). Targets on a 2-core CPU:
<= 80 ms per photo warm with the default, <= 3 s cold.

Besides wall time, CPU time: on a machine busy with other jobs it stays close to what the
work costs (with --threads 1 it is the wall time an idle core would take).

    python benchmarks/caricature.py [--model PATH] [--photo examples/astronaut.jpg] [--repeats 20]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def old_finder():
    """caricature's previous default: Haar on a 320-px copy, 1.2 scale step, largest face of 32 px."""
    from preprocessing.detect import FaceOptions, find_faces
    from preprocessing.finder import HAAR_FAST

    options = FaceOptions(detect=HAAR_FAST, min_face=32, policy="largest")
    return lambda rgb: find_faces(rgb, options).crops


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="default: the model shipped in the package")
    p.add_argument("--photo", default="examples/astronaut.jpg")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--cold-repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2,
                   help="torch threads for f and g (default 2, as the CLI given several photos on 2 cores; one: 1)")
    args = p.parse_args()

    from img2caricature.caricature import Outputs, caricature_photo, load_model
    from preprocessing.finder import CHOICES, crop_finder, warm_up

    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    model = load_model(args.model, device)
    finders = {f"{c}{' (default)' if c == 'mtcnn' else ''}": crop_finder(c) for c in CHOICES}
    finders["old default (haar, 320 px)"] = old_finder()
    for c in CHOICES:
        warm_up(c)
    times = {name: [] for name in finders}
    cpu = {name: [] for name in finders}
    with tempfile.TemporaryDirectory() as tmp:
        outputs = Outputs(Path(tmp), single=False)
        for find in finders.values():  # warm-up
            caricature_photo(Path(args.photo), model, find, outputs, 256, False, device)
        for _ in range(args.repeats):
            for name, find in finders.items():
                start, start_cpu = time.perf_counter(), time.process_time()
                caricature_photo(Path(args.photo), model, find, outputs, 256, False, device)
                times[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
        old = statistics.median(times["old default (haar, 320 px)"])
        old_cpu = statistics.median(cpu["old default (haar, 320 px)"])
        print(f"warm, per photo ({args.photo}, {args.repeats} runs each, interleaved, {args.threads} torch threads):")
        for name, t in times.items():
            c = statistics.median(cpu[name])
            print(f"  {name:28s} wall median {1000 * statistics.median(t):6.1f} ms, best {1000 * min(t):6.1f} ms "
                  f"({statistics.median(t) / old:.2f}x old);  CPU median {1000 * c:6.1f} ms ({c / old_cpu:.2f}x old)")

        cli = [sys.executable, "-m", "img2caricature", "caricature", args.photo, "-o", str(Path(tmp) / "cold.png"),
               *(["--model", args.model] if args.model else [])]
        commands = {"python -c 'import torch'": [sys.executable, "-c", "import torch"],
                    "default (mtcnn)": cli, "--detector haar": [*cli, "--detector", "haar"]}
        cold = {name: ([], []) for name in commands}
        for _ in range(args.cold_repeats):  # interleaved, so a busy machine weighs on each alike
            for name, cmd in commands.items():
                start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
                subprocess.run(cmd, check=True, capture_output=True)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cold[name][0].append(time.perf_counter() - start)
                cold[name][1].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        floor = [statistics.median(times) for times in cold["python -c 'import torch'"]]
        print(f"cold CLI start to emoji written ({args.cold_repeats} runs each; importing torch is the floor):")
        for name, (wall, cpu_s) in cold.items():
            w, c = statistics.median(wall), statistics.median(cpu_s)
            print(f"  {name:28s} wall median {w:.2f} s, best {min(wall):.2f} s ({w / floor[0]:.2f}x torch);  "
                  f"CPU median {c:.2f} s, best {min(cpu_s):.2f} s ({c / floor[1]:.2f}x torch)")


if __name__ == "__main__":
    main()
