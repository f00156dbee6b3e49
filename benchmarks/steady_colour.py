"""Would a steadier colour code help? The shipped g reads the photo's skin and hair colour from
its pixels (nets/colour_code.py), and so draws each photo's light: one person's emoji change
skin tone from photo to photo. This feeds the same g, unchanged, a steadier code instead: a
ridge regression, fitted on the training people's photos, from the photo's reading, the crop's
mean Lab and f(x) to the person's mean reading over all their photos (rescaled to the spread of
the photos' own readings, which g was trained on), blended with the photo's own reading.

    python benchmarks/steady_colour.py [--model img2caricature/models/default.pt] \\
        [--split runs/split.json] [--faces data/faces.h5] [--blends 1 0.5 0] [--picture steady_colour.png]

Prints, on the held-out people, per blend (1 = the photo's reading alone, as shipped): the emoji's
lightness against the photo's reading and against the person's mean reading (Spearman; the
latter with its paired interval against blend 1), and the share of its variance between
people. Writes the first people's photos with their emoji per blend, a row each."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.utils import save_image

from img2caricature import dataset
from img2caricature.batches import map_batches
from img2caricature.evaluate import intervals
from img2caricature.evaluate.avatar_metrics import spearman
from img2caricature.evaluate.colours import HAIR_L, SKIN_L, between_people_share, person_mean
from img2caricature.nets.colour_code import lab, read_colours
from img2caricature.split import read_split
from img2caricature.translate import load_translator


def features(f, photos: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(the photo's colour reading (N, 6), the regression's inputs: reading, crop mean Lab, f(x))."""
    reading = map_batches(read_colours, photos, 64)
    crop = map_batches(lambda x: lab(x).mean((2, 3)), photos, 64)
    fx = map_batches(lambda x: f.encode(x), photos, 32).float()
    return reading.numpy(), np.c_[reading.numpy(), crop.numpy(), 10 * fx.numpy()]


def fit_ridge(x: np.ndarray, y: np.ndarray, people: np.ndarray, spread: np.ndarray, alphas=np.logspace(0, 4, 9)):
    """Ridge from x to y, its strength chosen by 5-fold cross-validation over people; returns
    predict(x), its predictions rescaled to `spread` per column (the photo readings' own, which
    g was trained on: the ridge shrinks them towards the mean)."""
    mu, sd = x.mean(0), x.std(0) + 1e-8
    z = (x - mu) / sd
    fold = np.unique(people, return_inverse=True)[1] % 5

    def solve(zt, yt, a):
        return np.linalg.solve(zt.T @ zt + a * np.eye(z.shape[1]), zt.T @ (yt - yt.mean(0))), yt.mean(0)

    def cv_error(a):
        err = 0.0
        for k in range(5):
            w, m = solve(z[fold != k], y[fold != k], a)
            err += float((((z[fold == k] @ w) + m - y[fold == k]) ** 2).sum())
        return err

    alpha = min(alphas, key=cv_error)
    w, m = solve(z, y, alpha)
    scale = spread / (z @ w).std(0)
    print(f"ridge: alpha {alpha:g} (5-fold over people), spread restored x{np.round(scale, 2).tolist()}")
    return lambda xn: ((xn - mu) / sd) @ w * scale + m


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="img2caricature/models/default.pt")
    p.add_argument("--split", default="runs/split.json")
    p.add_argument("--faces", default="data/faces.h5")
    p.add_argument("--blends", type=float, nargs="+", default=[1.0, 0.5, 0.0])
    p.add_argument("--picture", default="steady_colour.png")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    model = load_translator(args.model).eval()
    if model.colour is None:
        raise SystemExit(f"{args.model} has no colour code")
    faces = Path(args.faces)
    train, held = (np.asarray(r) for r in read_split(Path(args.split)).face_records(faces))
    labels = dataset.read_column(faces, "labels", "faces")
    load = lambda idx: dataset.to_float(dataset.load_images(faces, "faces", idx))  # noqa: E731
    reading_tr, x_tr = features(model.encoder, load(train))
    photos = load(held)
    reading, x = features(model.encoder, photos)
    steady = fit_ridge(x_tr, person_mean_all(reading_tr, labels[train]), labels[train], reading_tr.std(0))(x)
    people = labels[held]
    fx = map_batches(lambda im: model.encoder.encode(im), photos, 32).float()
    drawn, read_back = {}, {}
    for blend in args.blends:
        code = torch.from_numpy(blend * reading + (1 - blend) * steady).float()
        g_in = torch.cat([fx, model.colour.standardise(code, "photo")], 1)
        with torch.no_grad():
            drawn[blend] = map_batches(model.generator, g_in, 32)
        read_back[blend] = map_batches(read_colours, drawn[blend]).numpy()
    base = args.blends[0]
    print(f"{len(held)} photos of {len(np.unique(people))} held-out people; blend 1 = the photo's reading alone")
    for name, col in (("skin", SKIN_L), ("hair", HAIR_L)):
        typical = person_mean(reading[:, col], people)
        print(f"{name}: photos' own share of variance between people {between_people_share(reading[:, col], people):.3f}")
        for blend, e in read_back.items():
            vs_person = spearman(typical, e[:, col])
            line = (f"  blend {blend:.2f}: vs photo {spearman(reading[:, col], e[:, col]):.3f}, "
                    f"vs person's mean {vs_person:.3f}")
            if blend != base:
                lo, hi = intervals.statistic_interval(
                    lambda i: spearman(typical[i], e[i, col]) - spearman(typical[i], read_back[base][i, col]), people)
                line += f" ({vs_person - spearman(typical, read_back[base][:, col]):+.3f}, {lo:+.3f} to {hi:+.3f})"
            print(line + f", share between people {between_people_share(e[:, col], people):.3f}")
    first = np.unique(people, return_index=True)[1][:12]
    rows = [photos[first]] + [F.interpolate(drawn[b][first], size=photos.shape[-1]) for b in args.blends]
    save_image(torch.cat(rows) * 0.5 + 0.5, args.picture, nrow=len(first))
    print(f"photos, then each blend's emoji: {args.picture}")


def person_mean_all(values: np.ndarray, people: np.ndarray) -> np.ndarray:
    """person_mean of every column."""
    return np.stack([person_mean(values[:, c], people) for c in range(values.shape[1])], 1)


if __name__ == "__main__":
    main()
