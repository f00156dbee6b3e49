"""The evaluation's files: `metrics.json` (everything), `metrics.md` (a table a person reads)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from img2caricature.evaluate.definitions import DATA, FIGURES


def _fmt(value: Any, percent: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if percent:
        return f"{100 * value:.1f}%"
    if isinstance(value, str):
        return value
    return f"{value:.4g}"


def _interval(bounds: list[float] | None, percent: bool = True) -> str:
    return "—" if not bounds else f"{_fmt(bounds[0], percent)} to {_fmt(bounds[1], percent)}"


def _span(values: list[float] | None) -> list[float] | None:
    return [min(values), max(values)] if values else None


def _difference(d: dict | None, percent: bool = True) -> str:
    if not d:
        return "—"
    if not percent:
        return f"{d['difference']:+.2f} ({_interval(d['interval'], False)})"
    return f"{100 * d['difference']:+.1f} ({_interval(d['interval'])})"


def _get(tree: dict, *keys: str) -> Any:
    for k in keys:
        if not isinstance(tree, dict) or k not in tree:
            return None
        tree = tree[k]
    return tree


def table_rows(metrics: dict) -> list[tuple[str, list[str], str]]:
    """(figure, one cell per model, reference cell) for the Markdown table."""
    models = metrics["models"]
    ref = metrics.get("reference", {})
    chance = metrics.get("chance", {})
    rows: list[tuple[str, list[str], str]] = []

    def row(label: str, keys: tuple[str, ...], percent: bool = False, ref_keys: tuple[str, ...] | None = None) -> None:
        cells = [_fmt(_get(m, *keys), percent) for m in models.values()]
        rows.append((label, cells, _fmt(_get(ref, *ref_keys), percent) if ref_keys else ""))

    for ruler in metrics.get("rulers", []):
        for key, label, percent in (("median_rank", "median rank", False), ("top1", "top-1", True),
                                    ("top5", "top-5", True)):
            by_chance = _get(chance, "retrieval", key)
            label += f" (chance {_fmt(by_chance, True)})" if by_chance is not None else ""
            row(f"retrieval ({ruler}): {label}", ("retrieval", ruler, key), percent,
                ("retrieval", ruler, key))
        first = next(iter(models), "")
        rows.append((f"retrieval ({ruler}): top-1, 95% interval (people resampled)",
                     [_interval(_get(m, "retrieval", ruler, "top1_interval")) for m in models.values()], ""))
        if len(models) > 1:
            rows.append((f"retrieval ({ruler}): top-1 minus `{first}`'s, 95% interval",
                         [_difference(_get(m, "retrieval", ruler, "top1_vs_first")) for m in models.values()], ""))
        row(f"retrieval ({ruler}), emoji among emoji: top-1", ("retrieval_among_emoji", ruler, "top1"), True,
            ("retrieval", ruler, "top1"))
        if len(models) > 1:
            rows.append((f"retrieval ({ruler}), emoji among emoji: top-1 minus `{first}`'s, 95% interval",
                         [_difference(_get(m, "retrieval_among_emoji", ruler, "top1_vs_first"))
                          for m in models.values()], ""))
    size = _get(metrics, "data", "realism", "size")
    at = f" at {size} px" if size else ""
    row(f"C2ST accuracy{at} (chance 50% = indistinguishable)", ("c2st", "accuracy"), True)
    row("C2ST emoji tested a side", ("c2st", "test_per_side"))
    row(f"KID ({metrics.get('feature_ruler') or 'no encoder'})", ("kid", "kid"))
    row("gender agreement", ("gender", "agreement"), True)
    if any(_get(m, "gender", "agreement_interval") for m in models.values()):
        rows.append(("the same, 95% interval (people resampled)",
                     [_interval(_get(m, "gender", "agreement_interval")) for m in models.values()], ""))
    if any(_get(m, "gender", "agreement_each_emoji_classifier") for m in models.values()):
        rows.append(("the same, each emoji classifier of the vote alone (lowest to highest)",
                     [_interval(_span(_get(m, "gender", "agreement_each_emoji_classifier")))
                      for m in models.values()], ""))
    row("gender agreement by chance", ("gender", "chance"), True)
    row("gender agreement with the person's majority answer", ("gender", "person_agreement"), True)
    if any(_get(m, "gender", "person_agreement_interval") for m in models.values()):
        rows.append(("the same, 95% interval (people resampled)",
                     [_interval(_get(m, "gender", "person_agreement_interval")) for m in models.values()], ""))
    if len(models) > 1 and any(_get(m, "gender", "person_agreement_vs_first") for m in models.values()):
        rows.append((f"the same, minus `{next(iter(models))}`'s, 95% interval",
                     [_difference(_get(m, "gender", "person_agreement_vs_first")) for m in models.values()], ""))
    for region in ("skin", "hair"):
        row(f"{region} lightness kept (Spearman, photo vs emoji)", ("colour", region))
        if any(_get(m, "colour", f"{region}_interval") for m in models.values()):
            rows.append(("the same, 95% interval (people resampled)",
                         [_interval(_get(m, "colour", f"{region}_interval"), False) for m in models.values()], ""))
        if len(models) > 1 and any(_get(m, "colour", f"{region}_vs_first") for m in models.values()):
            rows.append((f"the same, minus `{next(iter(models))}`'s, 95% interval",
                         [_difference(_get(m, "colour", f"{region}_vs_first"), False) for m in models.values()], ""))
        row(f"{region} lightness kept against the person's typical one (Spearman, mean over their photos)",
            ("colour", f"{region}_vs_person"))
        row(f"{region} lightness: share of its variance between people (1 = a person's emoji all alike)",
            ("colour", f"{region}_between_people"), False, ("colour", f"{region}_between_people"))
    row("diversity: pixel L1", ("diversity", "pixel_l1"), False, ("diversity", "pixel_l1"))
    row("diversity: 1 - cos of features", ("diversity", "feature"), False, ("diversity", "feature"))
    return rows


def markdown(metrics: dict) -> str:
    names = list(metrics["models"])
    lines = [f"# Evaluation: {', '.join(names)}", ""]
    lines += [f"| figure | {' | '.join(names)} | reference (photos / real emoji) |",
              "|---|" + "---|" * len(names) + "---|"]
    lines += [f"| {label} | {' | '.join(cells)} | {ref} |" for label, cells, ref in table_rows(metrics)]
    data = metrics["data"]
    lines += ["", "## Data", "",
              f"- faces: {data['faces']} — {data['n_faces']} photos of {data['n_identities']} people "
              f"({data['n_queries']} of the photos are queries: their person has another photo)",
              f"- emoji: {data['emoji']} — {data['n_emoji']} real emoji"]
    if data.get("realism"):
        r = data["realism"]
        lines.append(f"- realism (C2ST, KID) at {r['size']}x{r['size']} on {r['n_real']} real emoji "
                     f"({r['n_heldout']} held out, {r['n_trained_on']} the models trained on)")
    lines.append("")
    lines += [f"- model `{n}`: {m['kind']}, {m['path']}, step {m.get('step')}, {m['output_size']}x{m['output_size']}"
              for n, m in metrics["models"].items()]
    if metrics.get("classifiers"):
        lines += ["", "## Judges", ""]
        for name, c in metrics["classifiers"].items():
            lines.append(f"- {name}: " + ", ".join(f"{k} {_fmt(v, k.endswith(('accuracy', 'agreement')))}" for k, v in c.items()
                                                  if not isinstance(v, (list, dict))))
    if metrics.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in metrics["notes"]]
    lines += ["", "## Grid", "", f"![grid]({metrics['grid']})", "",
              f"Each group: the photo, then the emoji of {', '.join(f'`{n}`' for n in names)}, in that order.",
              "", "## Definitions", ""]
    lines += [f"- **{name}**: {text}" for name, text in FIGURES.items()] + ["", DATA, ""]
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    """NaN -> null (JSON has no NaN); numpy numbers -> Python numbers."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    return None if isinstance(value, float) and math.isnan(value) else value


def write_report(out: Path, metrics: dict) -> tuple[Path, Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(_plain(metrics), indent=2) + "\n")
    (out / "metrics.md").write_text(markdown(metrics))
    return out / "metrics.json", out / "metrics.md"
