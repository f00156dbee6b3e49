"""Attribute agreement: does the emoji keep the photo's apparent gender?

Two gender rulers, one per domain, each trained on a labelled folder (a CSV of
`file,gender` beside a folder of images) and cached as a file keyed by the CSV's content,
the folder and the training config, so reruns skip the training. A ruler on pixels is a
vote of small CNNs that differ only in their seed (GenderEnsemble); the photo's may instead
be a linear probe on a pretrained f (ProbeGenderClassifier).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from img2caricature import checkpoint, dataset
from img2caricature.errors import UserError
from img2caricature.evaluate.classifier import (ClassifierConfig, accuracy, fit_classifier, predict, resize,
                                                small_cnn)
from img2caricature.images import ImageError, read_image
from img2caricature.probe import LinearProbe
from img2caricature.runtime import log
from img2caricature.augment import AugmentConfig

# Robustness to framing and colour: the photo classifier learns on aligned CelebA-HQ faces but
# judges our Haar-cascade crops.
AUGMENT = AugmentConfig(scale_range=(0.85, 1.15))


@dataclass
class GenderClassifier:
    model: nn.Module
    classes: list[str]
    size: int
    heldout: dict[str, float]      # accuracy, balanced_accuracy, n_test on its own held-out fifth
    n_train: int
    cache: Path

    def predict(self, images: torch.Tensor, device: torch.device | None = None) -> np.ndarray:
        return predict(self.model, images, self.size, device)


def read_labels(csv_path: Path, images_dir: Path) -> tuple[list[Path], list[str]]:
    if not Path(csv_path).is_file():
        raise UserError(f"gender CSV not found: {csv_path}")
    if not Path(images_dir).is_dir():
        raise UserError(f"image folder not found: {images_dir} (pass it with --photo-gender-images / --emoji-gender-images)")
    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"file", "gender"} <= set(rows[0]):
        raise UserError(f"{csv_path} must have the columns file,gender")
    return [Path(images_dir) / r["file"] for r in rows], [r["gender"].strip().lower() for r in rows]


def load_folder(files: list[Path], size: int) -> tuple[torch.Tensor, np.ndarray]:
    """uint8 (N, 3, size, size) of the readable files, and which files those were."""
    images, ok = [], []
    for i, path in enumerate(tqdm(files, desc="reading labelled images", unit="img", leave=False)):
        try:
            rgb = torch.from_numpy(read_image(path).copy()).permute(2, 0, 1)[None]
        except ImageError:
            continue
        images.append(dataset.to_uint8(resize(dataset.to_float(rgb), size)))
        ok.append(i)
    if not images:
        raise UserError(f"none of the {len(files)} labelled images could be read")
    return torch.cat(images), np.array(ok)


def encode_labelled(f: nn.Module, csv_path: Path, images_dir: Path,
                    device: torch.device | str | None = None) -> tuple[torch.Tensor, list[str]]:
    """f of every readable image of a `file,gender` folder (at 152 px, f frames it), and its labels."""
    from img2caricature.batches import map_batches

    files, genders = read_labels(csv_path, images_dir)
    images, ok = load_folder(files, 152)
    feats = map_batches(lambda x: f.encode(dataset.to_float(x)), images, 64, device)
    return feats, [genders[i] for i in ok]


def _cache_key(csv_path: Path, images_dir: Path, cfg: ClassifierConfig) -> str:
    h = hashlib.sha256(Path(csv_path).read_bytes())
    h.update(str(Path(images_dir).resolve()).encode())
    h.update(json.dumps(dataclasses.asdict(cfg), sort_keys=True).encode())
    return h.hexdigest()[:12]


def gender_classifier(csv_path: Path, images_dir: Path, cache_dir: Path, domain: str, cfg: ClassifierConfig,
                      device: torch.device | None = None) -> GenderClassifier:
    """Trained on a random 4/5 of the labelled images, measured on the rest; cached."""
    cache = Path(cache_dir) / f"gender-{domain}-{_cache_key(csv_path, images_dir, cfg)}.pt"
    if cache.is_file():
        saved = checkpoint.load(cache)
        model = small_cnn(len(saved["classes"]), cfg.widths)
        model.load_state_dict(saved["state_dict"])
        return GenderClassifier(model.eval().to(device or "cpu"), list(saved["classes"]), cfg.size,
                                dict(saved["heldout"]), int(saved["n_train"]), cache)
    files, genders = read_labels(csv_path, images_dir)
    images, ok = load_folder(files, cfg.size)
    classes = sorted(set(genders))
    labels = np.array([classes.index(genders[i]) for i in ok])
    order = np.random.default_rng(cfg.seed).permutation(len(labels))
    n_test = max(1, len(labels) // 5)
    test, train = order[:n_test], order[n_test:]
    log.info(f"training the {domain} gender classifier on {len(train)} images ({cfg.steps} steps)")
    model = fit_classifier(dataset.to_float(images[train]), torch.from_numpy(labels[train]), cfg, AUGMENT, device,
                           desc=f"{domain} gender classifier")
    heldout = accuracy(predict(model, dataset.to_float(images[test]), cfg.size, device), labels[test])
    heldout["n_test"] = len(test)
    checkpoint.save_atomic({"kind": "gender-classifier", "domain": domain, "classes": classes,
                            "config": dataclasses.asdict(cfg), "heldout": heldout, "n_train": len(train),
                            "state_dict": {k: v.cpu() for k, v in model.state_dict().items()}}, cache)
    return GenderClassifier(model, classes, cfg.size, heldout, len(train), cache)


@dataclass
class GenderEnsemble:
    """Small CNNs trained alike but for their seed (which draws both their held-out fifth and
    their initialisation), answering by majority vote. On generated emoji, far from the real
    ones they learned on, one CNN's answers depend on its seed much more than its held-out
    accuracy shows: eight seeds, all 98-99.7% on held-out real Bitmoji, read the same model's
    emoji as keeping the photo's gender 84.3% to 95.0% of the time. The vote is steadier, and
    each member's own figure is reported beside it, so the spread stays in view."""
    members: list[GenderClassifier]

    @property
    def classes(self) -> list[str]:
        return self.members[0].classes

    @property
    def heldout(self) -> dict[str, float]:
        """Each member on its own held-out fifth: the mean, the lowest and the highest."""
        each = [m.heldout["accuracy"] for m in self.members]
        return {"accuracy": float(np.mean(each)), "accuracy_min": min(each), "accuracy_max": max(each),
                "balanced_accuracy": float(np.mean([m.heldout["balanced_accuracy"] for m in self.members])),
                "n_test": self.members[0].heldout["n_test"], "members": len(self.members)}

    @property
    def n_train(self) -> int:
        return self.members[0].n_train

    @property
    def cache(self) -> Path:
        return self.members[0].cache

    def predict_each(self, images: torch.Tensor, device: torch.device | None = None) -> np.ndarray:
        """(members, N): each member's answer."""
        return np.stack([m.predict(images, device) for m in self.members])

    def predict(self, images: torch.Tensor, device: torch.device | None = None) -> np.ndarray:
        return vote(self.predict_each(images, device), len(self.classes))


def vote(each: np.ndarray, n_classes: int) -> np.ndarray:
    """(members, N) answers -> the most common answer for each of N (ties: the lower class)."""
    return np.array([np.bincount(answers, minlength=n_classes).argmax() for answers in each.T], dtype=int)


def gender_ensemble(csv_path: Path, images_dir: Path, cache_dir: Path, domain: str, cfg: ClassifierConfig,
                    members: int, device: torch.device | None = None) -> GenderEnsemble:
    """`members` gender_classifiers with seeds cfg.seed, cfg.seed + 1, ... (each cached; the
    first is the one a single classifier of cfg would be). An odd count leaves no ties."""
    if members < 1:
        raise UserError(f"a gender ruler needs at least one classifier, got {members}")
    return GenderEnsemble([gender_classifier(csv_path, images_dir, cache_dir, domain,
                                             dataclasses.replace(cfg, seed=cfg.seed + k), device)
                           for k in range(members)])


@dataclass
class ProbeGenderClassifier:
    """Gender read by a linear probe on a pretrained face f's features. On our Haar crops it is
    far steadier than the small CNN trained on aligned faces (dlib's f: one person's photos get
    their majority answer 97% of the time, against 82%), and the photo's label depends on no
    model evaluated, whatever f the models trained with."""
    f: nn.Module
    probe: LinearProbe
    classes: list[str]
    heldout: dict[str, float]
    n_train: int
    cache: Path

    def predict(self, images: torch.Tensor, device: torch.device | None = None) -> np.ndarray:
        from img2caricature.batches import map_batches

        feats = map_batches(lambda x: self.f.encode(x), images, 64, device)
        return self.probe.predict(feats.cpu()).astype(int)   # True = classes[1]


def fit_gender_probe(feats: torch.Tensor, genders: list[str], seed: int = 0
                     ) -> tuple[LinearProbe, list[str], dict[str, float], int]:
    """A probe fitted on a random 4/5 of labelled features, measured on the rest: the probe, its
    classes (sorted; the probe answers True for classes[1]), its held-out figures, n_train."""
    classes = sorted(set(genders))
    if len(classes) != 2:
        raise UserError(f"a gender probe needs exactly two labels, got {classes}")
    labels = np.array([classes.index(g) for g in genders])
    order = np.random.default_rng(seed).permutation(len(labels))
    n_test = max(1, len(labels) // 5)
    test, train = order[:n_test], order[n_test:]
    feats = feats.cpu()
    probe = LinearProbe(feats[train], labels[train])
    heldout = accuracy(probe.predict(feats[test]).astype(int), labels[test])
    heldout["n_test"] = len(test)
    return probe, classes, heldout, len(train)


def probe_gender_classifier(csv_path: Path, images_dir: Path, cache_dir: Path, f: nn.Module, f_name: str,
                            seed: int = 0, device: torch.device | None = None) -> ProbeGenderClassifier:
    """fit_gender_probe on f's features of a labelled folder; cached (its weights and figures)
    under a key of the CSV, the folder and f's name."""
    h = hashlib.sha256(Path(csv_path).read_bytes())
    h.update(f"{Path(images_dir).resolve()}|{f_name}|{seed}".encode())
    cache = Path(cache_dir) / f"gender-probe-{h.hexdigest()[:12]}.pt"
    if cache.is_file():
        saved = checkpoint.load(cache)
        return ProbeGenderClassifier(f, LinearProbe.from_state(saved["probe"]), list(saved["classes"]),
                                     dict(saved["heldout"]), int(saved["n_train"]), cache)
    probe, classes, heldout, n_train = fit_gender_probe(*encode_labelled(f, csv_path, images_dir, device), seed)
    checkpoint.save_atomic({"kind": "gender-probe", "f": f_name, "classes": classes, "heldout": heldout,
                            "n_train": n_train, "probe": probe.state()}, cache)
    return ProbeGenderClassifier(f, probe, classes, heldout, n_train, cache)


def gender_agreement(photo_gender: np.ndarray, emoji_gender: np.ndarray, classes: list[str]) -> dict[str, float]:
    """Share of photos whose emoji has the same predicted gender; and what independence would give."""
    male = classes.index("male") if "male" in classes else len(classes) - 1
    p, q = float(np.mean(photo_gender == male)), float(np.mean(emoji_gender == male))
    return {"agreement": float(np.mean(photo_gender == emoji_gender)), "chance": p * q + (1 - p) * (1 - q),
            "photo_male_share": p, "emoji_male_share": q}


def person_majority(predicted: np.ndarray, people: np.ndarray) -> np.ndarray:
    """Each photo's label replaced by its person's majority answer (ties: the lower class). A
    person's gender does not change between photos, so this is a steadier label than one
    photo's classification, which on our crops disagrees with it often (within_person_agreement)."""
    majority = {p: int(np.bincount(predicted[people == p]).argmax()) for p in np.unique(people)}
    return np.array([majority[p] for p in people])


def within_person_agreement(predicted: np.ndarray, people: np.ndarray) -> float:
    """Mean over people of the share of their photos given their majority answer: a label-free
    check of the photo classifier on our crops (1 = consistent; 0.5 = coin flips)."""
    shares = [np.bincount(predicted[people == p]).max() / np.sum(people == p) for p in np.unique(people)]
    return float(np.mean(shares))
