"""`img2car evaluate-avatar`: avatar models against two baselines on people no model saw.

Each method gives every held-out photo an avatar (its traits, by name); the avatars are drawn
by the avatar engine itself (`render`, passed in by the CLI), and then measured alike:
- skin tone and hair colour: Spearman between the photo's lightness in a fixed region
  and the lightness of the avatar's skin / hair colour (hair: avatars that have hair);
- glasses and facial hair, against hand labels when a labels CSV is given;
- gender presentation: a linear probe on an f, trained on labelled photos, applied to the
  photo and to the avatar's render (agreement, and what independence would give);
- identity retrieval among the held-out people, by a ruler f the models did not train with
  (and, for reference, by the model's own f).
Baselines: a random crawled avatar, and the crawled avatar nearest to the photo in the
model's f (plus the majority vote of the k nearest, a training-free method).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from img2caricature import checkpoint, dataset
from img2caricature.avatar.face_encoder import fingerprint, load_face_encoder
from img2caricature.avatar.features import encode_records
from img2caricature.avatar.model import load_avatar_model
from img2caricature.avatar.space import ParamSpace, read_space
from img2caricature.errors import UserError
from img2caricature.evaluate import avatar_metrics as am
from img2caricature.evaluate.names import model_names
from img2caricature.evaluate.retrieval import identity_retrieval
from img2caricature.metrics import cosine_similarity_matrix
from img2caricature.runtime import log
from img2caricature.batches import map_batches
from img2caricature.grids import first_per_identity, save_pairs
from img2caricature.split import split_faces_by_heldout

Render = Callable[[dict[str, str]], np.ndarray]   # traits -> uint8 (152, 152, 3) on white
Traits = list[dict[str, str]]


@dataclass
class Colours:
    """Each parameter value's colour, where it has one (skin_color, hair_color)."""
    skin: dict[str, str]
    hair: dict[str, str]


def python_avatars_colours() -> Colours:
    import python_avatars as pa

    return Colours({m.name.lower(): m.value for m in pa.SkinColor}, {m.name.lower(): m.value for m in pa.HairColor})


# ---- methods -----------------------------------------------------------------------------

def crawled_traits(space: ParamSpace, rows: np.ndarray) -> Traits:
    cols = space.trait_index
    return [space.choice(row[cols].tolist()) for row in rows]


def random_avatars(space: ParamSpace, params: np.ndarray, n: int, seed: int = 0) -> Traits:
    return crawled_traits(space, params[np.random.default_rng(seed).integers(len(params), size=n)])


def nearest_avatars(f_photos: torch.Tensor, f_crawl: torch.Tensor, space: ParamSpace, params: np.ndarray,
                    k: int = 1) -> Traits:
    """The crawled avatar nearest to each photo in f (cosine); with k > 1, each trait by the
    majority of the k nearest (ties to the nearer)."""
    sims = torch.cat([cosine_similarity_matrix(chunk, f_crawl) for chunk in f_photos.split(256)])
    top = sims.topk(k, dim=1).indices.numpy()
    if k == 1:
        return crawled_traits(space, params[top[:, 0]])
    rows = []
    nearer = 1 + 1e-3 * np.arange(k, 0, -1)   # breaks ties towards the nearer neighbours
    for neighbours in top:
        votes = params[neighbours][:, space.trait_index]
        rows.append([int(np.bincount(v, weights=nearer, minlength=space.sizes[i]).argmax())
                     for v, i in zip(votes.T, space.trait_index)])
    return [space.choice(r) for r in rows]


# ---- measuring ---------------------------------------------------------------------------

@dataclass
class Ruler:
    name: str
    f: nn.Module
    photos: torch.Tensor          # f of the held-out photos
    probe: am.LinearProbe | None  # gender, trained on labelled photos
    male: int                     # the probe's label for "male"
    renders: RenderFeatures


def encode(f: nn.Module, images_u8: torch.Tensor) -> torch.Tensor:
    return map_batches(lambda x: f.encode(dataset.to_float(x)), images_u8, 64)


def render_all(traits: Traits, render: Render, desc: str) -> torch.Tensor:
    """uint8 (N, 3, 152, 152) renders, each distinct avatar drawn once."""
    drawn: dict[str, np.ndarray] = {}
    out = []
    for t in tqdm(traits, desc=desc, unit="avatar", leave=False):
        key = json.dumps(t, sort_keys=True)
        if key not in drawn:
            drawn[key] = render(t)
        out.append(drawn[key])
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).contiguous()


class RenderFeatures:
    """f of avatar renders, each distinct avatar encoded once (methods share many)."""

    def __init__(self, f: nn.Module):
        self.f, self.memo = f, {}

    def __call__(self, traits: Traits, renders: torch.Tensor) -> torch.Tensor:
        keys = [json.dumps(t, sort_keys=True) for t in traits]
        new = sorted({k: i for i, k in enumerate(keys) if k not in self.memo}.items(), key=lambda kv: kv[1])
        if new:
            feats = encode(self.f, renders[[i for _, i in new]])
            self.memo.update({k: feats[j] for j, (k, _) in enumerate(new)})
        return torch.stack([self.memo[k] for k in keys])


def measure(traits: Traits, renders: torch.Tensor, photo_skin: np.ndarray, photo_hair: np.ndarray,
            labels: np.ndarray, rulers: list[Ruler], colours: Colours,
            hand_labels: dict[str, np.ndarray] | None) -> dict:
    skin = np.array([am.hex_lightness(colours.skin[t["skin_color"]]) for t in traits])
    has_hair = np.array([t.get("top", "none") != "none" for t in traits])
    hair = np.array([am.hex_lightness(colours.hair[t["hair_color"]]) for t in traits])
    row: dict = {"skin_spearman": am.spearman(photo_skin, skin),
                 "hair_spearman": am.spearman(photo_hair[has_hair], hair[has_hair]),
                 "hair_n": int(has_hair.sum()),
                 "distinct_avatars": len({json.dumps(t, sort_keys=True) for t in traits})}
    if hand_labels is not None:
        drawn = {"glasses": np.array([t.get("accessory", "none") != "none" for t in traits]),
                 "facial_hair": np.array([t.get("facial_hair", "none") != "none" for t in traits])}
        for key, (judged, present) in hand_labels.items():
            row[key] = am.balanced_agreement(present[judged], drawn[key][judged])
    for ruler in rulers:
        feats = ruler.renders(traits, renders)
        row[f"retrieval/{ruler.name}"] = identity_retrieval(feats, ruler.photos, labels)
        if ruler.probe is not None:
            row[f"gender/{ruler.name}"] = am.agreement_with_chance(ruler.probe.predict(ruler.photos) == ruler.male,
                                                                   ruler.probe.predict(feats) == ruler.male)
    return row


def gender_probe(f: nn.Module, csv_path: Path, images_dir: Path) -> tuple[am.LinearProbe, int, dict]:
    """A probe trained on 4/5 of a `file,gender` folder, its accuracy on the rest."""
    from img2caricature.evaluate.attributes import encode_labelled, fit_gender_probe

    probe, classes, heldout, n_train = fit_gender_probe(*encode_labelled(f, csv_path, images_dir))
    male = classes.index("male") if "male" in classes else len(classes) - 1
    return probe, male, {"heldout_accuracy": heldout["accuracy"], "n_train": n_train, "n_test": heldout["n_test"]}


def read_hand_labels(path: Path, sources: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """`source,glasses,facial_hair` (1 / 0, blank = could not be judged) for the photos'
    `sources` entries -> per attribute (judged, present)."""
    if not Path(path).is_file():
        raise UserError(f"hand labels not found: {path}")
    with open(path, newline="") as fh:
        rows = {r["source"]: r for r in csv.DictReader(fh)}
    if not any(s in rows for s in sources):
        raise UserError(f"{path}: none of its sources are among the held-out photos")
    out = {}
    for key in ("glasses", "facial_hair"):
        values = [rows[s][key].strip() if s in rows else "" for s in sources]
        out[key] = (np.array([v != "" for v in values]), np.array([v == "1" for v in values]))
    return out


# ---- the whole evaluation ----------------------------------------------------------------

def evaluate_avatar(model_paths: list[Path], faces: Path, emoji: Path, ruler_spec: str, out: Path, render: Render,
                    gender_csv: Path | None = None, gender_images: Path | None = None,
                    hand_labels_csv: Path | None = None, knn: int = 25, grid_people: int = 24,
                    crawl_limit: int = 0, cache_dir: Path | None = Path("data/f-cache"),
                    complete: Callable[[dict[str, str]], dict[str, str]] = dict) -> dict:
    """`render` draws an avatar from its traits; `complete` gives every parameter of one (the
    engine's defaults for those the model does not set), which is what gets measured."""
    models = {name: load_avatar_model(p) for name, p in zip(model_names(model_paths), model_paths)}
    first = next(iter(models.values()))
    held_names = checkpoint.load(model_paths[0]).get("heldout_identities")
    if not held_names:
        raise UserError(f"{model_paths[0]} records no held-out people: evaluate models from `img2car train-avatar`")
    _, held = split_faces_by_heldout(faces, held_names)
    if len(held) == 0:
        raise UserError(f"{faces} holds none of the model's held-out people")
    labels = dataset.read_column(faces, "labels", "faces")[held]
    sources = dataset.read_column(faces, "sources", "faces")[held]
    photos = dataset.load_images(faces, "faces", held)
    crops = photos.permute(0, 2, 3, 1).numpy()
    photo_skin = am.region_lightness(crops, am.SKIN_REGION)
    photo_hair = am.region_lightness(crops, am.HAIR_REGION)
    log.info(f"{len(held)} photos of {len(np.unique(labels))} held-out people")

    space = read_space(emoji, first.space.traits)
    params = dataset.read_column(emoji, "params", "emoji")
    params = params[:crawl_limit or len(params)]
    f_key = fingerprint(first.f)
    # the trainer's cache entries (its image_size, 64 by default) serve here too
    f_crawl = encode_records(first.f, f_key, emoji, "emoji", np.arange(len(params)), 64, cache_dir,
                             desc="f(crawled avatars)")[0]
    f_photos = encode_records(first.f, f_key, faces, "faces", held, 64, cache_dir, desc="f(photos)")[0]

    methods: dict[str, Traits] = {name: m.traits(list(crops)) for name, m in models.items()}
    methods["baseline: random crawled avatar"] = random_avatars(space, params, len(held))
    methods["baseline: nearest crawled avatar in f"] = nearest_avatars(f_photos, f_crawl, space, params)
    if knn > 1:
        methods[f"{knn} nearest crawled avatars in f, majority per trait"] = nearest_avatars(
            f_photos, f_crawl, space, params, knn)

    ruler_f = load_face_encoder(ruler_spec)
    if fingerprint(ruler_f) == f_key:
        raise UserError(f"the ruler '{ruler_spec}' is the f the model trained with: pass another with --ruler")
    rulers = []
    for name, f, key in [("ruler", ruler_f, fingerprint(ruler_f)), ("model f", first.f, f_key)]:
        probe, male, probe_info = (gender_probe(f, gender_csv, gender_images) if gender_csv else (None, 1, {}))
        f_held = encode_records(f, key, faces, "faces", held, 64, cache_dir, desc=f"{name}(photos)")[0]
        rulers.append(Ruler(name, f, f_held, probe, male, RenderFeatures(f)))
        if probe_info:
            log.info(f"gender probe on the {name}: {probe_info['heldout_accuracy']:.1%} on held-out labelled photos")
    hand = read_hand_labels(hand_labels_csv, sources) if hand_labels_csv else None
    colours = python_avatars_colours()
    rows, renders = {}, {}
    methods = {name: [complete(t) for t in traits] for name, traits in methods.items()}
    for name, traits in methods.items():
        renders[name] = render_all(traits, render, name[:30])
        rows[name] = measure(traits, renders[name], photo_skin, photo_hair, labels, rulers, colours, hand)
    reference = {"photo instead of avatar": {f"retrieval/{r.name}": identity_retrieval(r.photos, r.photos, labels)
                                             for r in rulers}}
    report = {"people": int(len(np.unique(labels))), "photos": int(len(held)), "ruler": ruler_spec,
              "crawl": f"{emoji} (first {len(params)} records)",
              "models": [str(p) for p in model_paths], "rows": rows, "reference": reference}
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    (out / "report.md").write_text(markdown_table(report))
    grid_idx = first_per_identity(np.arange(len(held)), labels, grid_people)
    save_grid(out / "grid.jpg", photos[grid_idx], [renders[n][grid_idx] for n in methods
                                                   if n in models or "nearest crawled avatar in f" in n])
    return report


def save_grid(path: Path, photos: torch.Tensor, columns: list[torch.Tensor], per_row: int = 4) -> None:
    save_pairs(path, dataset.to_float(photos), [dataset.to_float(c) for c in columns], pairs_per_row=per_row,
               size=112)


def _fmt(v: float, pct: bool = False) -> str:
    return "n/a" if v is None or v != v else (f"{100 * v:.1f}%" if pct else f"{v:.3f}")


def markdown_table(report: dict) -> str:
    rows = report["rows"]
    cols = ["skin tone (Spearman)", "hair colour (Spearman)"]
    sample = next(iter(rows.values()))
    if "glasses" in sample:
        cols += ["glasses (balanced agr.)", "facial hair (balanced agr.)"]
    rulers = [k.split("/", 1)[1] for k in sample if k.startswith("retrieval/")]
    cols += [f"gender agreement (probe on {r}; chance)" for r in rulers if f"gender/{r}" in sample]
    cols += [f"retrieval by {r}: median rank / top-1 / top-5" for r in rulers]
    lines = [f"{report['photos']} photos of {report['people']} people no model saw; ruler = {report['ruler']}", "",
             "| method | " + " | ".join(cols) + " | distinct avatars |", "|---" * (len(cols) + 2) + "|"]
    for name, r in rows.items():
        cells = [_fmt(r["skin_spearman"]), _fmt(r["hair_spearman"])]
        if "glasses" in r:
            cells += [_fmt(r["glasses"]["balanced"], True), _fmt(r["facial_hair"]["balanced"], True)]
        cells += [f"{_fmt(r[f'gender/{x}']['agreement'], True)} ({_fmt(r[f'gender/{x}']['chance'], True)})"
                  for x in rulers if f"gender/{x}" in r]
        cells += [f"{r[f'retrieval/{x}']['median_rank']:g} / {_fmt(r[f'retrieval/{x}']['top1'], True)} / "
                  f"{_fmt(r[f'retrieval/{x}']['top5'], True)}" for x in rulers]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {r['distinct_avatars']} |")
    ref = report["reference"]["photo instead of avatar"]
    lines += ["", "Reference, a photo instead of an avatar: " + "; ".join(
        f"{k.split('/', 1)[1]} {v['median_rank']:g} / {_fmt(v['top1'], True)} / {_fmt(v['top5'], True)}"
        for k, v in ref.items())]
    return "\n".join(lines) + "\n"
