"""Each evaluation figure on tiny cases whose answer is known."""

import numpy as np
import pytest
import torch
from PIL import Image

from img2caricature.errors import UserError
from img2caricature.evaluate import attributes
from img2caricature.evaluate.classifier import ClassifierConfig
from img2caricature.evaluate.diversity import feature_diversity, pixel_diversity
from img2caricature.evaluate.heldout import heldout_identities, select_heldout
from img2caricature.evaluate.names import model_names
from img2caricature.evaluate.realism import c2st, kid
from img2caricature.evaluate.retrieval import identity_retrieval
from tests.conftest import SHARED_DATA

TINY_CLF = ClassifierConfig(size=16, widths=(8, 16), steps=40, batch_size=16, lr=3e-3)


def test_retrieval_with_a_perfect_oracle_ranks_everyone_first():
    labels = np.array([0, 0, 1, 1, 1, 2, 2, 3])        # person 3 has one photo: a distractor, not a query
    oracle = torch.nn.functional.one_hot(torch.from_numpy(labels)).float()
    r = identity_retrieval(oracle, oracle, labels)
    assert r == {"median_rank": 1.0, "top1": 1.0, "top5": 1.0, "queries": 7, "gallery": 7,
                 "ranks": [1.0] * 7, "query_people": [0, 0, 1, 1, 1, 2, 2]}


def test_retrieval_of_a_collapsed_generator_is_chance():
    torch.manual_seed(0)
    labels = np.repeat(np.arange(20), 2)
    photos = torch.randn(20, 8)[labels] + 0.1 * torch.randn(40, 8)   # a ruler that knows the people
    same_emoji = torch.ones(40, 8)                     # every emoji the same: ranks by photo alone
    r = identity_retrieval(same_emoji, photos, labels)
    assert r["top1"] < 0.3 and r["median_rank"] > 5
    flipped = identity_retrieval(-photos, photos, labels)  # emoji that point away from their person: last
    assert flipped["median_rank"] > 30


def test_c2st_identical_sets_are_indistinguishable_and_different_ones_are_not():
    torch.manual_seed(0)
    x = torch.rand(64, 3, 16, 16) * 2 - 1
    assert 0.3 <= c2st(x, x.clone(), TINY_CLF)["accuracy"] <= 0.7
    dark = torch.rand(64, 3, 16, 16) * 0.4 - 1
    light = torch.rand(64, 3, 16, 16) * 0.4 + 0.6
    result = c2st(dark, light, TINY_CLF)
    assert result["accuracy"] >= 0.95 and result["n_test"] == 64


def test_kid_is_zero_for_the_same_distribution_and_positive_for_another():
    torch.manual_seed(0)
    a, b = torch.randn(300, 32), torch.randn(300, 32)
    shifted = torch.randn(300, 32) + 0.5
    same, identical, other = kid(a, b, 10, 100), kid(a, a.clone(), 10, 100), kid(a, shifted, 10, 100)
    assert abs(same["kid"]) < 0.05 and abs(identical["kid"]) < 0.1
    assert other["kid"] > 0.5 and other["kid"] > 10 * abs(same["kid"])


def test_diversity_of_a_collapsed_generator_is_zero():
    one = torch.rand(1, 3, 8, 8) * 2 - 1
    assert pixel_diversity(one.repeat(5, 1, 1, 1)) == pytest.approx(0.0)
    assert feature_diversity(torch.randn(1, 16).repeat(5, 1)) == pytest.approx(0.0, abs=1e-9)
    black_and_white = torch.stack([-torch.ones(3, 8, 8), torch.ones(3, 8, 8)])
    assert pixel_diversity(black_and_white) == pytest.approx(1.0)   # the largest difference there is
    assert feature_diversity(torch.eye(4)) == pytest.approx(1.0)    # orthogonal features


def test_gender_agreement_and_its_chance_level():
    classes = ["female", "male"]
    photo = np.array([1, 1, 0, 0])
    assert attributes.gender_agreement(photo, photo, classes)["agreement"] == 1.0
    all_male = attributes.gender_agreement(photo, np.ones(4, int), classes)
    assert all_male["agreement"] == 0.5 and all_male["chance"] == 0.5 and all_male["emoji_male_share"] == 1.0
    people = np.array([0, 0, 0, 0, 1, 1])
    assert attributes.within_person_agreement(np.array([1, 1, 1, 1, 0, 0]), people) == 1.0
    assert attributes.within_person_agreement(np.array([1, 0, 1, 0, 0, 1]), people) == 0.5


def test_each_photo_gets_its_persons_majority_gender():
    people = np.array([3, 3, 3, 7, 7, 7, 7])
    predicted = np.array([1, 0, 1, 0, 0, 1, 0])   # person 3: mostly 1, person 7: mostly 0
    assert attributes.person_majority(predicted, people).tolist() == [1, 1, 1, 0, 0, 0, 0]


def make_gender_folder(root, n=24, size=24):
    """'male' images have a red square, 'female' ones a blue one."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = ["file,gender"]
    for i in range(n):
        gender = "male" if i % 2 else "female"
        img = rng.integers(100, 160, (size, size, 3)).astype(np.uint8)
        img[6:18, 6:18] = [220, 30, 30] if gender == "male" else [30, 30, 220]
        Image.fromarray(img).save(root / f"{i:03d}.png")
        rows.append(f"{i:03d}.png,{gender}")
    csv = root.with_suffix(".csv")
    csv.write_text("\n".join(rows) + "\n")
    return csv


def test_gender_classifier_learns_and_is_cached(tmp_path, monkeypatch):
    csv = make_gender_folder(tmp_path / "people")
    clf = attributes.gender_classifier(csv, tmp_path / "people", tmp_path / "cache", "photo", TINY_CLF)
    assert clf.classes == ["female", "male"] and clf.heldout["accuracy"] == 1.0 and clf.cache.is_file()
    monkeypatch.setattr(attributes, "fit_classifier", lambda *a, **k: pytest.fail("retrained despite the cache"))
    again = attributes.gender_classifier(csv, tmp_path / "people", tmp_path / "cache", "photo", TINY_CLF)
    assert again.heldout == clf.heldout
    images = torch.stack([torch.full((3, 24, 24), -0.2)] * 2)
    images[0, 0, 6:18, 6:18], images[1, 2, 6:18, 6:18] = 0.8, 0.8
    assert list(again.predict(images)) == [1, 0]
    with pytest.raises(UserError, match="image folder not found"):
        attributes.gender_classifier(csv, tmp_path / "nowhere", tmp_path / "cache2", "photo", TINY_CLF)


def test_heldout_selection_intersects_the_models(tmp_path):
    from tests.conftest import make_emoji, make_faces

    faces, emoji = make_faces(tmp_path / "faces.h5", n_ids=4, per_id=2), make_emoji(tmp_path / "emoji.h5", n=10)
    dtn = {"kind": "dtn", "faces": "x/faces.h5", "emoji": "x/emoji.h5", "heldout_emoji": [1, 2, 3],
           "encoder": {"heldout_identities": ["person1", "person2"]}}
    cyclegan = {"kind": "cyclegan", "faces": "faces.h5", "emoji": "emoji.h5", "heldout_emoji": [2, 3, 4],
                "heldout_identities": ["person2", "person3"]}
    assert heldout_identities(dtn) == ["person1", "person2"] and heldout_identities({"kind": "cyclegan"}) is None
    sel = select_heldout({"dtn": dtn, "cyclegan": cyclegan}, faces, emoji)
    assert sel.faces.tolist() == [4, 5] and sel.emoji.tolist() == [2, 3]      # person2's photos; emoji 2, 3
    other = select_heldout({"dtn": {**dtn, "faces": "other.h5", "emoji": "other.h5"}}, faces, emoji)
    assert len(other.faces) == 8 and len(other.emoji) == 10                     # another file: all of it
    with pytest.raises(UserError, match="no identity is held out by every model"):
        select_heldout({"a": dtn, "b": {**cyclegan, "heldout_identities": ["person0"]}}, faces, emoji)


def test_models_trained_on_different_splits_are_refused(tmp_path):
    from img2caricature.split import load_or_create, section_hash
    from tests.conftest import make_emoji, make_faces

    faces, emoji = make_faces(tmp_path / "faces.h5", n_ids=6, per_id=2), make_emoji(tmp_path / "emoji.h5", n=20)
    split = load_or_create(None, faces=faces, emoji=emoji)
    record = split.record(emoji)
    dtn = {"kind": "dtn", "faces": "faces.h5", "emoji": "emoji.h5", "split": record,
           "heldout_identities": split.heldout_identities, "heldout_emoji": split.emoji_records(emoji)[1].tolist()}
    other = {**dtn, "split": {**record, "faces": "0123456789ab"}}
    with pytest.raises(UserError, match="dtn and cyclegan hold out different people") as err:
        select_heldout({"dtn": dtn, "cyclegan": other}, faces, emoji)
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="hold out different emoji of emoji.h5"):
        select_heldout({"dtn": dtn, "cyclegan": {**dtn, "split": {**record, "emoji": "ffff"}}}, faces, emoji)
    # a DTN from before split files records none: only its lists count
    sel = select_heldout({"dtn": dtn, "old": {k: v for k, v in dtn.items() if k != "split"}}, faces, emoji)
    assert len(sel.faces) == 2 * len(split.heldout_identities)
    # --split: its held-out part exactly, and a model of another split refused
    by_file = select_heldout({"dtn": dtn}, faces, emoji, split)
    assert by_file.faces.tolist() == split.face_records(faces)[1].tolist()
    assert by_file.emoji.tolist() == split.emoji_records(emoji)[1].tolist()
    with pytest.raises(UserError, match=f"--split {split.path} and b hold out different people"):
        select_heldout({"b": other}, faces, emoji, split)
    assert section_hash(split.faces) == record["faces"]


def test_chance_levels_of_retrieval_match_a_random_ruler():
    from img2caricature.evaluate.retrieval import chance_retrieval, identity_retrieval

    labels = np.repeat(np.arange(6), [2, 3, 4, 2, 5, 3])
    chance = chance_retrieval(labels)
    torch.manual_seed(0)
    random = [identity_retrieval(torch.randn(len(labels), 8), torch.randn(len(labels), 8), labels)
              for _ in range(400)]
    assert chance["top1"] == pytest.approx(np.mean([r["top1"] for r in random]), abs=0.02)
    assert chance["top5"] == pytest.approx(np.mean([r["top5"] for r in random]), abs=0.03)
    assert chance_retrieval(np.array([0, 0, 1, 1]))["top1"] == pytest.approx(1 / 3)


@pytest.mark.skipif(not (SHARED_DATA / "bitmoji-faces.csv").exists(), reason="needs ../shared/data")
def test_the_shared_gender_csvs_read():
    for name in ("bitmoji-faces", "celeba-hq-aligned"):
        files, genders = attributes.read_labels(SHARED_DATA / f"{name}.csv", SHARED_DATA / name)
        assert len(files) >= 1000 and set(genders) == {"female", "male"}
        images, ok = attributes.load_folder(files[:4], 64)
        assert images.shape == (4, 3, 64, 64) and images.dtype == torch.uint8


class MeanColour(torch.nn.Module):
    """A stand-in face f: how much redder than blue the middle of the image is, and a constant.
    Counts its calls."""

    calls = 0

    def encode(self, x):
        MeanColour.calls += 1
        h, w = x.shape[-2:]
        middle = x[..., h // 4:3 * h // 4, w // 4:3 * w // 4].mean((2, 3))
        return torch.stack([middle[:, 0] - middle[:, 2], torch.ones(len(x))], 1)


def test_the_photo_gender_probe_reads_f_and_is_cached(tmp_path):
    csv = make_gender_folder(tmp_path / "genders", n=40)
    clf = attributes.probe_gender_classifier(csv, csv.with_suffix(""), tmp_path / "cache", MeanColour(), "mean")
    assert clf.classes == ["female", "male"] and clf.heldout["accuracy"] == 1.0 and clf.n_train == 32
    low, high = 30 / 127.5 - 1, 220 / 127.5 - 1          # the folder's squares, on [-1, 1]
    red, blue = torch.full((1, 3, 32, 32), low), torch.full((1, 3, 32, 32), low)
    red[:, 0], blue[:, 2] = high, high
    assert clf.predict(torch.cat([red, blue, red])).tolist() == [1, 0, 1]   # male, female, male
    calls = MeanColour.calls
    again = attributes.probe_gender_classifier(csv, csv.with_suffix(""), tmp_path / "cache", MeanColour(), "mean")
    assert MeanColour.calls == calls and again.cache == clf.cache   # read back, not refitted
    assert again.predict(torch.cat([blue, red])).tolist() == [0, 1]


def test_a_gender_ensemble_votes_with_members_of_different_seeds(tmp_path):
    csv = make_gender_folder(tmp_path / "people")
    ensemble = attributes.gender_ensemble(csv, tmp_path / "people", tmp_path / "cache", "emoji", TINY_CLF, 3)
    single = attributes.gender_classifier(csv, tmp_path / "people", tmp_path / "cache", "emoji", TINY_CLF)
    assert ensemble.members[0].cache == single.cache          # its first member is the one classifier of cfg
    assert len({m.cache for m in ensemble.members}) == 3      # the others: their own seeds, their own files
    assert ensemble.heldout["members"] == 3 and ensemble.heldout["accuracy_min"] <= ensemble.heldout["accuracy"]
    torch.manual_seed(0)
    squares = torch.rand(12, 3, 24, 24) * 2 - 1
    squares[:6, 0, 6:18, 6:18], squares[6:, 2, 6:18, 6:18] = 0.8, 0.8   # red squares, then blue ones
    assert ensemble.predict_each(squares).tolist() == [[1] * 6 + [0] * 6] * 3   # like what they learned on: all agree
    noise = torch.rand(12, 3, 24, 24) * 2 - 1   # far from it, as generated emoji are: the seeds disagree
    each = ensemble.predict_each(noise)
    assert each.shape == (3, 12) and (each != each[0]).any()
    assert ensemble.predict(noise).tolist() == [int(np.sum(c) >= 2) for c in each.T]
    assert attributes.vote(np.array([[1, 0, 0], [1, 1, 0], [0, 1, 0]]), 2).tolist() == [1, 1, 0]
    with pytest.raises(UserError, match="at least one classifier"):
        attributes.gender_ensemble(csv, tmp_path / "people", tmp_path / "cache", "emoji", TINY_CLF, 0)


def test_colour_between_people_is_an_intraclass_share():
    from img2caricature.evaluate.colours import between_people_share

    people = np.repeat([0, 1, 2], 4)
    steady = np.repeat([20.0, 50.0, 80.0], 4)                      # each person's emoji alike
    assert between_people_share(steady, people) == pytest.approx(1.0)
    by_light = np.tile([20.0, 50.0, 80.0, 35.0], 3)                # the same spread inside every person
    assert between_people_share(by_light, people) == pytest.approx(0.0)
    mixed = steady + np.tile([-5.0, 5.0, -5.0, 5.0], 3)
    assert 0.9 < between_people_share(mixed, people) < 1.0
    assert np.isnan(between_people_share(np.array([1.0, 2.0]), np.array([0, 1])))   # one photo each: nobody


def test_the_persons_typical_colour_is_the_mean_over_their_photos():
    from img2caricature.evaluate.colours import person_mean

    people = np.array([4, 4, 9, 9, 9])
    assert person_mean(np.array([10.0, 30.0, 1.0, 2.0, 6.0]), people).tolist() == [20.0, 20.0, 3.0, 3.0, 3.0]


def test_models_are_named_by_their_run_folder_or_their_file():
    from pathlib import Path
    # a run's own snapshot by its folder; a named file (the shipped default) by its name
    assert model_names([Path("runs/dtn-a/dtn.pt"), Path("runs/cg/cyclegan.pt"), Path("runs/av/avatar.pt")]) == [
        "dtn-a", "cg", "av"]
    assert model_names([Path("runs/old/default-2026-11-24.pt"), Path("img2caricature/models/default.pt")]) == [
        "default-2026-11-24", "default"]
    # not unique: the folder joins the name, then the whole path
    assert model_names([Path("runs/a/dtn-00500.pt"), Path("runs/b/dtn-00500.pt")]) == ["a/dtn-00500", "b/dtn-00500"]
    assert model_names([Path("x/a/dtn.pt"), Path("y/a/dtn.pt")]) == ["x/a/dtn.pt", "y/a/dtn.pt"]
    with pytest.raises(UserError):
        model_names([Path("runs/a/dtn.pt"), Path("runs/a/dtn.pt")])
