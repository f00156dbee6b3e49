"""Loss curves of a run, from its metrics.jsonl, as a PNG drawn with Pillow (a dependency
already), so every install gets `curves.png` beside its samples. For interactive plots,
TensorBoard reads the run's `tensorboard/` folder (README: "Watching a run")."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

PANEL = (300, 190)      # one curve's panel, pixels
MARGIN = (50, 22, 8, 18)  # left (values), top (title), right, bottom (steps)
RAW, SMOOTH = (170, 198, 232), (31, 119, 180)  # matplotlib's C0, and a light tint of it


def read_metrics(path: Path) -> list[dict]:
    """The records of a metrics.jsonl; a half-written last line (a killed run) is skipped."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def running_mean(values: list[float], k: int) -> list[float]:
    return [sum(values[i - k + 1:i + 1]) / k for i in range(k - 1, len(values))]


def _label(v: float) -> str:
    return f"{v:.3g}"


def draw_panel(draw: ImageDraw.ImageDraw, origin: tuple[int, int], title: str, steps: list[float],
               values: list[float], smooth: int, font) -> None:
    x0, y0 = origin
    left, top, right, bottom = MARGIN
    w, h = PANEL[0] - left - right, PANEL[1] - top - bottom
    box = (x0 + left, y0 + top, x0 + left + w, y0 + top + h)
    draw.text((x0 + left, y0 + 4), title, fill="black", font=font)
    draw.rectangle(box, outline=(160, 160, 160))
    finite = [(s, v) for s, v in zip(steps, values) if v == v and abs(v) != float("inf")]
    if not finite:
        return
    steps, values = [s for s, _ in finite], [v for _, v in finite]
    lo, hi = min(values), max(values)
    s_lo, s_hi = min(steps), max(steps)
    span, s_span = (hi - lo) or 1.0, (s_hi - s_lo) or 1.0
    to_xy = lambda s, v: (box[0] + (s - s_lo) / s_span * w, box[3] - (v - lo) / span * h)  # noqa: E731
    for line, colour in ((values, RAW), (running_mean(values, smooth) if len(values) > smooth else [], SMOOTH)):
        xs = steps[len(steps) - len(line):]
        points = [to_xy(s, v) for s, v in zip(xs, line)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2 if colour == SMOOTH else 1)
        elif points:  # a single record (an evaluation so far): a dot
            (x, y), = points
            draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=colour)
    draw.text((x0 + 2, box[1]), _label(hi), fill="black", font=font)
    draw.text((x0 + 2, box[3] - 10), _label(lo), fill="black", font=font)
    draw.text((box[0], box[3] + 3), f"{s_lo:g}", fill="black", font=font)
    last = f"step {s_hi:g}"
    draw.text((box[2] - draw.textlength(last, font=font), box[3] + 3), last, fill="black", font=font)


def plot_curves(metrics: Path, out: Path, keys: list[str] | None = None, smooth: int = 5, cols: int = 3) -> Path:
    """One panel per logged value (raw, and a running mean of `smooth` points through GAN noise)."""
    records = read_metrics(metrics)
    keys = keys or sorted({k for r in records for k in r} - {"step", "time", "elapsed_s", "lr"})
    rows = max(1, (len(keys) + cols - 1) // cols)
    image = Image.new("RGB", (PANEL[0] * cols, PANEL[1] * rows), "white")
    draw, font = ImageDraw.Draw(image), ImageFont.load_default()
    for i, key in enumerate(keys):
        points = [(r["step"], float(r[key])) for r in records if isinstance(r.get(key), (int, float))]
        draw_panel(draw, ((i % cols) * PANEL[0], (i // cols) * PANEL[1]), key,
                   [s for s, _ in points], [v for _, v in points], smooth, font)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out)
    return out


def write_curves(run_dir: Path) -> None:
    """`run_dir/curves.png` from its metrics so far."""
    metrics = Path(run_dir) / "metrics.jsonl"
    if metrics.exists():
        plot_curves(metrics, Path(run_dir) / "curves.png")
