"""Loss curves of a run, from its metrics.jsonl, as a PNG (needs matplotlib: the `plots` extra)."""

from __future__ import annotations

import json
from pathlib import Path

from img2caricature.errors import UserError


def plot_curves(metrics: Path, out: Path, keys: list[str] | None = None, smooth: int = 5) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("plotting needs matplotlib: pip install 'img2caricature[plots]'") from None
    records = [json.loads(l) for l in Path(metrics).read_text().splitlines() if l.strip()]
    keys = keys or sorted({k for r in records for k in r} - {"step", "time", "elapsed_s", "lr"})
    cols = 3
    rows = (len(keys) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.6 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        points = [(r["step"], r[key]) for r in records if key in r]
        steps, values = zip(*points) if points else ((), ())
        ax.plot(steps, values, lw=0.6, alpha=0.4, color="C0")
        if len(values) > smooth:  # a running mean shows the trend through GAN noise
            k = smooth
            ax.plot(steps[k - 1:], [sum(values[i - k + 1:i + 1]) / k for i in range(k - 1, len(values))], color="C0")
        ax.set_title(key, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def write_curves(run_dir: Path) -> None:
    """`run_dir/curves.png` when matplotlib is installed; training never depends on it."""
    metrics = Path(run_dir) / "metrics.jsonl"
    if metrics.exists():
        try:
            plot_curves(metrics, Path(run_dir) / "curves.png")
        except UserError:
            pass
