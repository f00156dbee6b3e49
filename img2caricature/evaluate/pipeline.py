"""The whole evaluation: held-out data in, every model's emoji made once, each figure computed
from those (see definitions.py), the report and grid written."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from img2caricature import dataset, registry
from img2caricature.batches import map_batches
from img2caricature.errors import UserError
from img2caricature.evaluate import attributes, colours, diversity, intervals, realism, realism_set, report
from img2caricature.evaluate.classifier import ClassifierConfig
from img2caricature.evaluate.heldout import select_heldout, split_record
from img2caricature.evaluate.names import model_names
from img2caricature.evaluate.retrieval import chance_retrieval, identity_retrieval
from img2caricature.grids import save_pairs
from img2caricature.nets.colour_code import read_colours
from img2caricature.nets.encoder import Encoder, encoder_from_snapshot
from img2caricature.runtime import log, pick_device, seed_everything
from img2caricature.split import read_split
from img2caricature.translate import translator_from_snapshot


FEW_PEOPLE = 10   # below this many held-out people, evaluate warns and prints chance levels


@dataclass
class EvalConfig:
    seed: int = 0
    c2st_steps: int = 300          # the two-sample test's classifier: fixed training budget
    realism_size: int = 128        # C2ST and KID compare emoji at this side (g's output resized: realism_set.py)
    realism_per_side: int = 128    # real emoji gathered so the test half has at least this many a side ...
    realism_fill: bool = True      # ... filled with emoji the models trained on when too few are held out
    gender_steps: int = 800        # each gender classifier (trained once, then cached)
    gender_size: int = 64
    # a gender ruler on pixels is a vote of this many small CNNs, seeds seed, seed + 1, ...: one
    # CNN's reading of generated emoji moves by 10 points with its seed alone (attributes.GenderEnsemble)
    gender_ensemble: int = 5
    # the photo's gender: "cnn" (a small CNN on the pixels), a published f's name (a linear probe
    # on its features), or "auto": dlib-resnet-v1 where its weights are installed, else cnn
    photo_gender_ruler: str = "auto"
    classifier_batch: int = 32
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    grid_people: int = 12
    grid_size: int = 128           # side of each image in the grid
    batch_size: int = 128          # inference batch

    def __post_init__(self) -> None:   # before any slow work
        if self.gender_ensemble < 1:
            raise UserError(f"gender_ensemble must be at least 1 (the gender rulers' CNN count), "
                            f"got {self.gender_ensemble}")


@dataclass
class EvalInputs:
    models: list[Path]
    faces: Path
    emoji: Path
    out: Path
    judge_encoder: Path | None = None
    photo_genders: Path | None = None
    photo_gender_images: Path | None = None
    emoji_genders: Path | None = None
    emoji_gender_images: Path | None = None
    cache_dir: Path | None = None
    device: str = "auto"
    split: Path | None = None          # the split file the models trained on (else: what their snapshots record)


def _load_judge(path: Path) -> tuple[Encoder, list[str]]:
    snap = registry.load_snapshot(path)
    if snap.get("kind") != "encoder":
        raise UserError(f"--judge-encoder {path} is not an encoder checkpoint (from `img2car pretrain-encoder`)")
    return encoder_from_snapshot(snap), list(snap.get("train_identities", []))


def _rulers(inputs: EvalInputs, translators: dict[str, nn.Module], evaluated_people: set[str],
            notes: list[str]) -> dict[str, Encoder]:
    """Encoders to measure with: the independent judge, and each DTN's own f (CycleGAN has none)."""
    rulers: dict[str, Encoder] = {}
    if inputs.judge_encoder is not None:
        rulers["judge"], judge_trained = _load_judge(inputs.judge_encoder)
        seen = evaluated_people & set(judge_trained)
        if seen:
            notes.append(f"the judge encoder trained on {len(seen)} of the {len(evaluated_people)} evaluated people: "
                         "its retrieval figures are optimistic, for every model alike")
    # one ruler per distinct f: DTNs trained on the same encoder would repeat the same figures
    own: dict[tuple[str, ...], Encoder] = {}
    for name, translator in translators.items():
        if hasattr(translator, "encoder"):
            shared = next((names for names, f in own.items() if _same_weights(f, translator.encoder)), None)
            if shared:
                own[shared + (name,)] = own.pop(shared)
            else:
                own[(name,)] = translator.encoder
    rulers.update({f"f of {', '.join(names)}": f for names, f in own.items()})
    return rulers


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)  # False on a shape mismatch


def _model_figures(emoji: torch.Tensor, real: torch.Tensor, labels: np.ndarray, first_photo: np.ndarray,
                   photo_features: dict[str, torch.Tensor], encode: dict, feature_ruler: str | None,
                   real_features: torch.Tensor | None, cfg: EvalConfig, device: torch.device) -> dict:
    """Retrieval, realism and diversity of one model's emoji (made from the held-out photos, in order);
    `real`: real emoji at cfg.realism_size, `real_features` theirs by the feature ruler."""
    emoji_features = {ruler: map_batches(fn, emoji, cfg.batch_size, device) for ruler, fn in encode.items()}
    figures: dict = {"retrieval": {ruler: identity_retrieval(feats, photo_features[ruler], labels)
                                   for ruler, feats in emoji_features.items()},
                     # the same people told apart among the emoji alone: no crossing from cartoon to photo
                     "retrieval_among_emoji": {ruler: identity_retrieval(feats, feats, labels)
                                               for ruler, feats in emoji_features.items()}}
    c2st_cfg = ClassifierConfig(size=cfg.realism_size, steps=cfg.c2st_steps, batch_size=cfg.classifier_batch,
                                seed=cfg.seed)
    seen = realism_set.generated_at(emoji, cfg.realism_size)   # as a user sees them
    figures["c2st"] = realism.c2st(seen, real, c2st_cfg, device)
    # diversity as a user sees the emoji, at realism_size like the real ones it is set beside,
    # so the figures of a 64-px and a 128-px model, and of reports of either, compare
    figures["diversity"] = {"pixel_l1": diversity.pixel_diversity(seen[first_photo])}
    if feature_ruler is not None:
        seen_features = map_batches(encode[feature_ruler], seen, cfg.batch_size, device)
        figures["kid"] = realism.kid(seen_features, real_features, cfg.kid_subsets, cfg.kid_subset_size, cfg.seed)
        figures["diversity"]["feature"] = diversity.feature_diversity(seen_features[first_photo])
    return figures


def evaluate(inputs: EvalInputs, cfg: EvalConfig) -> dict:
    device = pick_device(inputs.device)
    dataset.info(inputs.faces, "faces"), dataset.info(inputs.emoji, "emoji")  # kind checks first: one-line errors
    seed_everything(cfg.seed)
    paths = [Path(p) for p in inputs.models]
    snapshots = dict(zip(model_names(paths), (registry.load_snapshot(p) for p in paths)))
    split = read_split(inputs.split) if inputs.split is not None else None
    selection = select_heldout(snapshots, inputs.faces, inputs.emoji, split)
    translators: dict[str, nn.Module] = {n: translator_from_snapshot(s).to(device) for n, s in snapshots.items()}
    notes = list(selection.notes)

    labels = dataset.read_column(inputs.faces, "labels", "faces")[selection.faces]
    chance = {"retrieval": chance_retrieval(labels), "c2st": 0.5}
    n_people = len(np.unique(labels))
    if n_people < FEW_PEOPLE:
        warning = (f"only {n_people} held-out people: the figures are noisy; by chance retrieval top-1 is "
                   f"{100 * chance['retrieval']['top1']:.0f}% and top-5 {100 * chance['retrieval']['top5']:.0f}%")
        log.warning(f"warning: {warning}")
        notes.append(warning)
    photos = dataset.to_float(dataset.load_images(inputs.faces, "faces", selection.faces))
    real_u8 = dataset.load_images(inputs.emoji, "emoji", selection.emoji)
    real_set = realism_set.real_records(selection.emoji, dataset.info(inputs.emoji, "emoji").count,
                                        max(2 * cfg.realism_per_side, len(photos)), cfg.realism_fill, cfg.seed)
    real = realism_set.real_at(dataset.load_images(inputs.emoji, "emoji", real_set.records), cfg.realism_size)
    if real_set.n_trained_on:
        notes.append(f"realism (C2ST, KID) at {cfg.realism_size} px on {len(real)} real emoji: the "
                     f"{real_set.n_heldout} held out and {real_set.n_trained_on} the models trained on "
                     "(realism_fill; g draws from photos, so none is copied)")
    few = realism_set.per_side_note(len(photos), len(real), cfg.realism_per_side)
    if few:
        log.warning(f"warning: {few}")
        notes.append(few)
    log.info(f"evaluating {len(translators)} model(s) on {len(photos)} photos and {len(real_u8)} emoji")
    made = {n: map_batches(t, photos, cfg.batch_size, device) for n, t in translators.items()}
    first_photo = np.unique(labels, return_index=True)[1]   # one photo per person

    identity_names = dataset.info(inputs.faces).names
    rulers = _rulers(inputs, translators, {identity_names[i] for i in np.unique(labels) if i < len(identity_names)},
                     notes)
    for ruler in rulers.values():
        ruler.to(device)
    encode = {name: (lambda x, r=r: r.encode(x)) for name, r in rulers.items()}
    feature_ruler = "judge" if "judge" in rulers else next(iter(rulers), None)
    if feature_ruler is None:
        notes.append("no encoder to compute features with (pass --judge-encoder): KID and feature diversity skipped")
    elif feature_ruler != "judge":
        notes.append(f"KID and feature diversity use the {feature_ruler} (no --judge-encoder): it may favour that model")

    photo_features = {name: map_batches(fn, photos, cfg.batch_size, device) for name, fn in encode.items()}
    real_seen = realism_set.real_at(real_u8, cfg.realism_size)   # the held-out real emoji, as the models' are seen
    reference: dict[str, dict] = {
        "retrieval": {ruler: identity_retrieval(feats, feats, labels) for ruler, feats in photo_features.items()},
        "diversity": {"pixel_l1": diversity.pixel_diversity(real_seen)}}
    if feature_ruler is not None:
        reference["diversity"]["feature"] = diversity.feature_diversity(
            map_batches(encode[feature_ruler], real_seen, cfg.batch_size, device))

    real_features = (map_batches(encode[feature_ruler], real, cfg.batch_size, device)
                     if feature_ruler is not None else None)
    photo_colours = map_batches(read_colours, photos, cfg.batch_size)
    reference["colour"] = {f"{region}_between_people": colours.between_people_share(photo_colours[:, col].numpy(),
                                                                                    labels)
                           for region, col in (("skin", colours.SKIN_L), ("hair", colours.HAIR_L))}
    results: dict[str, dict] = {}
    made_colours = {name: colours.emoji_colours(emoji) for name, emoji in made.items()}
    first = next(iter(made))   # the paired figures' baseline
    for (name, emoji), path in zip(made.items(), paths):
        log.info(f"{name}: retrieval, two-sample test, KID, diversity")
        results[name] = {"kind": snapshots[name]["kind"], "path": str(path), "step": snapshots[name].get("step"),
                         "output_size": emoji.shape[-1],
                         **_model_figures(emoji, real, labels, first_photo, photo_features,
                                          encode, feature_ruler, real_features, cfg, device)}
        results[name]["colour"] = colours.colour_agreement(photo_colours, made_colours[name], labels,
                                                           made_colours[first] if name != first else None)
    for ruler in rulers:   # how sure top-1 is, and each model against the first, person by person
        for figure in ("retrieval", "retrieval_among_emoji"):
            found = intervals.retrieval_intervals({n: r[figure][ruler] for n, r in results.items()})
            for name, extra in found.items():
                results[name][figure][ruler].update(extra)
    classifiers = _gender(inputs, cfg, photos, labels, made, results, notes, device)

    out = Path(inputs.out)
    shown = first_photo[:cfg.grid_people]
    save_pairs(out / "grid.png", photos[shown], [e[shown] for e in made.values()],
               pairs_per_row=2 if len(shown) > 6 else 1, size=cfg.grid_size)
    metrics = {
        "models": results, "reference": reference, "chance": chance, "rulers": list(rulers),
        "feature_ruler": feature_ruler, "split": [split_record(s) for s in snapshots.values()],
        "classifiers": classifiers, "grid": "grid.png", "notes": notes, "config": dataclasses.asdict(cfg),
        "data": {"faces": str(inputs.faces), "emoji": str(inputs.emoji), "n_faces": len(photos),
                 "n_identities": int(len(np.unique(labels))),
                 "n_queries": next(iter(reference["retrieval"].values()), {}).get("queries"),
                 "n_emoji": len(real_u8), "face_records": selection.faces.tolist(),
                 "emoji_records": selection.emoji.tolist(),
                 "realism": {"size": cfg.realism_size, "n_real": len(real), "n_heldout": real_set.n_heldout,
                             "n_trained_on": real_set.n_trained_on, "records": real_set.records.tolist()}},
    }
    report.write_report(out, metrics)
    return metrics


def _gender(inputs: EvalInputs, cfg: EvalConfig, photos: torch.Tensor, labels: np.ndarray,
            made: dict[str, torch.Tensor], results: dict[str, dict], notes: list[str],
            device: torch.device) -> dict[str, dict]:
    """Gender agreement into `results`; the classifiers' own figures returned."""
    if inputs.photo_genders is None or inputs.emoji_genders is None:
        notes.append("gender agreement skipped: pass --photo-genders and --emoji-genders")
        return {}
    cache = Path(inputs.cache_dir) if inputs.cache_dir else Path(inputs.out).parent / "cache"
    gcfg = ClassifierConfig(size=cfg.gender_size, steps=cfg.gender_steps, batch_size=cfg.classifier_batch, seed=cfg.seed)
    default_dir = lambda csv: Path(csv).with_suffix("")  # noqa: E731  (x.csv beside folder x/)
    photo_images = inputs.photo_gender_images or default_dir(inputs.photo_genders)
    ruler = _photo_gender_ruler(cfg.photo_gender_ruler)
    if ruler == "cnn":
        photo_clf = attributes.gender_ensemble(inputs.photo_genders, photo_images, cache, "photo", gcfg,
                                               cfg.gender_ensemble, device)
    else:
        f = registry.encoder_from_snapshot(registry.load_encoder_snapshot(ruler)).eval().to(device)
        photo_clf = attributes.probe_gender_classifier(inputs.photo_genders, photo_images, cache, f, ruler,
                                                       cfg.seed, device)
    emoji_clf = attributes.gender_ensemble(inputs.emoji_genders, inputs.emoji_gender_images or
                                           default_dir(inputs.emoji_genders), cache, "emoji", gcfg,
                                           cfg.gender_ensemble, device)
    if photo_clf.classes != emoji_clf.classes:
        raise UserError(f"the gender CSVs use different labels: {photo_clf.classes} vs {emoji_clf.classes}")
    photo_gender = photo_clf.predict(photos, device)
    person_gender = attributes.person_majority(photo_gender, labels)
    first_agrees = None
    for name, emoji in made.items():
        each = emoji_clf.predict_each(emoji, device)   # every member's answer, then their vote
        emoji_gender = attributes.vote(each, len(emoji_clf.classes))
        agrees = person_gender == emoji_gender
        results[name]["gender"] = attributes.gender_agreement(photo_gender, emoji_gender, photo_clf.classes) | {
            "agreement_interval": list(intervals.person_bootstrap(photo_gender == emoji_gender, labels)),
            "agreement_each_emoji_classifier": [float(np.mean(photo_gender == e)) for e in each],
            "person_agreement": float(np.mean(agrees)),
            "person_agreement_interval": list(intervals.person_bootstrap(agrees, labels))}
        if first_agrees is None:
            first_agrees = agrees
        else:
            results[name]["gender"]["person_agreement_vs_first"] = intervals.paired_difference(
                agrees, first_agrees, labels)
    figures = {f"{domain} gender classifier": {**clf.heldout, "n_train": clf.n_train, "cache": str(clf.cache)}
               for domain, clf in (("photo", photo_clf), ("emoji", emoji_clf))}
    cnn_vote = f"vote of {cfg.gender_ensemble} small CNNs (seeds {cfg.seed}+)"
    figures["photo gender classifier"]["ruler"] = cnn_vote if ruler == "cnn" else f"linear probe on {ruler}"
    figures["emoji gender classifier"]["ruler"] = cnn_vote
    # trained on aligned CelebA-HQ, judging our crops: how consistent is it across one person's photos?
    figures["photo gender classifier"]["within_person_agreement"] = attributes.within_person_agreement(
        photo_gender, labels)
    return figures


def _photo_gender_ruler(name: str) -> str:
    """"auto" -> dlib's f where its weights are installed (the steadier ruler), else the CNN."""
    from img2caricature.nets.dlib_resnet import installed_weights

    if name != "auto":
        return name
    return "dlib-resnet-v1" if installed_weights() is not None else "cnn"

