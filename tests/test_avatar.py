"""The parametric avatar model: networks, training step, `train-avatar`, `avatar`, `evaluate-avatar`.

A tiny crawl is drawn by the avatar server's own renderer (no HTTP needed for the pairs);
f is the session's tiny encoder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from crawlers.avatar_render import full_choice, render_png, render_rgb
from crawlers.avatar_space import parse_query
from crawlers.store import EmojiStore
from img2caricature import images
from img2caricature.cli import main
from img2caricature.config import load_config
from img2caricature.train.avatar import AvatarConfig, build_nets, encoder_step, imitator_step, train_avatar
from tests.preprocess_photos import astronaut, save

NAMES = ["top", "skin_color", "facial_hair", "accessory"]
VALUES = [["short_flat", "bob", "none"], ["light", "brown", "black"], ["none", "beard_medium"], ["none", "round"]]
TINY_AVATAR = ["imitator_widths=[16,8,8,8]", "d_widths=[8,8,8,8]", "encoder_hidden=[16]", "image_size=32",
               "heldout_avatars=4", "batch_size=4", "imitator_batch_size=4", "log_every=1", "sample_every=2",
               "checkpoint_every=2", "n_samples=2", "imitator_steps=2", "steps=4", "seed=0", 'imitator="pixels"',
               "cache_dir=''"]  # f's cache stays out of the checkout (the cache has its own test)


def make_crawl(path: Path, n: int = 24, seed: int = 0) -> Path:
    """What `img2car crawl` writes, drawn in-process by the server's renderer."""
    rng = np.random.default_rng(seed)
    with EmojiStore(path, "tests", NAMES, VALUES) as store:
        for i in range(n):
            p = tuple(int(rng.integers(len(v))) for v in VALUES)
            image = render_rgb({name: v[j] for name, v, j in zip(NAMES, VALUES, p)})
            store.add(image, p, f"u{i}", images.sha256(image))
    return path


@pytest.fixture(scope="module")
def crawl(tiny_run) -> Path:
    return make_crawl(tiny_run["root"] / "avatars.h5")


def tiny_cfg(tiny_run, *extra: str) -> AvatarConfig:
    return load_config(AvatarConfig, None, TINY_AVATAR + [f"f={json.dumps(str(tiny_run['encoder']))}", *extra])


@pytest.fixture(scope="module")
def model(tiny_run, crawl) -> Path:
    out = tiny_run["root"] / "avatar"
    if not (out / "avatar.pt").exists():
        train_avatar(tiny_run["faces"], crawl, out, tiny_cfg(tiny_run), render=render_rgb, show_progress=False)
    return out / "avatar.pt"


def nets_for(tiny_run, crawl, *extra: str):
    from img2caricature.avatar.face_encoder import f_from_record, f_record
    from img2caricature.avatar.space import read_space

    cfg = tiny_cfg(tiny_run, *extra)
    rec = f_record(cfg.f)
    torch.manual_seed(0)
    return build_nets(f_from_record(rec), rec["dim"], read_space(crawl), cfg, torch.device("cpu")), cfg


def test_imitator_and_encoder_shapes(tiny_run, crawl):
    from img2caricature.nets.avatar import relax

    nets, cfg = nets_for(tiny_run, crawl)
    assert nets.space.traits == NAMES and nets.space.sizes == [3, 3, 2, 2] and nets.space.code_dim == 10
    codes = nets.space.one_hot(torch.tensor([[0, 1, 0, 1], [2, 2, 1, 0]]))
    assert codes.shape == (2, 10) and codes.sum(1).tolist() == [4.0, 4.0]
    drawn = nets.c(codes)
    assert drawn.shape == (2, 3, 32, 32) and drawn.abs().max() <= 1
    logits = nets.e(torch.randn(5, nets.e.cfg.input_dim))
    assert [tuple(l.shape) for l in logits] == [(5, 3), (5, 3), (5, 2), (5, 2)]
    for how in ("softmax", "straight-through", "gumbel-straight-through"):
        code = relax(logits[0], how)
        assert code.shape == (5, 3) and torch.allclose(code.sum(1), torch.ones(5))
    hard = relax(logits[0], "straight-through")
    assert set(hard.detach().unique().tolist()) <= {0.0, 1.0}   # c sees what it was trained on
    assert nets.c(nets.space.code([relax(l, "straight-through") for l in logits])).shape == (5, 3, 32, 32)


def test_features_imitator_and_its_step(tiny_run, crawl):
    nets, cfg = nets_for(tiny_run, crawl, "imitator=\"features\"", "imitator_hidden=[16]", "d_widths=[8]")
    dim = nets.e.cfg.input_dim
    codes = nets.space.one_hot(torch.tensor([[0, 1, 0, 1], [2, 2, 1, 0]]))
    assert nets.c(codes).shape == (2, dim) and nets.D(nets.c(codes)).shape == (2, 1)
    c0 = _state(nets.c)
    opt_c = torch.optim.Adam(nets.c.parameters(), lr=1e-2)
    parts = imitator_step(nets, torch.tensor([[0, 1, 0, 1]] * 4), torch.zeros(4, 3, 32, 32), torch.randn(4, dim),
                          cfg, opt_c)
    assert set(parts) == {"c/f_cos"} and _changed(c0, nets.c)
    f0, c0, e0 = _state(nets.f), _state(nets.c), _state(nets.e)
    opt_e = torch.optim.Adam(nets.e.parameters(), lr=1e-2)
    opt_d = torch.optim.Adam(nets.D.parameters(), lr=1e-2)
    parts = encoder_step(nets, torch.randn(4, dim), torch.randn(4, dim), torch.tensor([[0, 1, 0, 1]] * 4),
                         nets.space.one_hot(torch.tensor([[1, 1, 1, 1]] * 4)), cfg, opt_e, opt_d)
    assert {"L_CONST", "L_PARAM", "L_GAN", "L_D"} <= set(parts)
    assert _changed(e0, nets.e) and not _changed(f0, nets.f) and not _changed(c0, nets.c)


def _state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def _changed(before, module):
    return [k for k, v in module.state_dict().items() if v.dtype.is_floating_point and not torch.equal(v, before[k])]


def test_a_training_step_updates_e_and_never_f_or_c(tiny_run, crawl):
    nets, cfg = nets_for(tiny_run, crawl, "gan_weight=0.5")
    f0, c0, e0, d0 = _state(nets.f), _state(nets.c), _state(nets.e), _state(nets.D)
    opt_e = torch.optim.Adam(nets.e.parameters(), lr=1e-2)
    opt_d = torch.optim.Adam(nets.D.parameters(), lr=1e-2)
    dim = nets.e.cfg.input_dim
    parts = encoder_step(nets, torch.randn(4, dim), torch.randn(4, dim), torch.tensor([[0, 1, 0, 1]] * 4),
                         nets.space.one_hot(torch.tensor([[1, 1, 1, 1]] * 4)), cfg, opt_e, opt_d)
    assert {"L_CONST", "L_PARAM", "L_GAN", "L_D"} <= set(parts)
    assert _changed(e0, nets.e) and _changed(d0, nets.D)
    assert not _changed(f0, nets.f) and not _changed(c0, nets.c)   # BatchNorm statistics included
    assert all(p.grad is None for p in nets.f.parameters())


def test_const_alone_reaches_e_through_the_imitator_and_f(tiny_run, crawl):
    nets, cfg = nets_for(tiny_run, crawl, "gan_weight=0", "param_weight=0")
    e0 = _state(nets.e)
    opt_e = torch.optim.SGD(nets.e.parameters(), lr=1.0)
    dim = nets.e.cfg.input_dim
    encoder_step(nets, torch.randn(4, dim), torch.randn(4, dim), torch.zeros(4, 4, dtype=torch.long),
                 nets.space.one_hot(torch.zeros(4, 4, dtype=torch.long)), cfg, opt_e, None)
    assert _changed(e0, nets.e)


def test_imitator_step_updates_c_and_never_f(tiny_run, crawl):
    nets, cfg = nets_for(tiny_run, crawl)
    f0, c0 = _state(nets.f), _state(nets.c)
    opt = torch.optim.Adam(nets.c.parameters(), lr=1e-2)
    parts = imitator_step(nets, torch.tensor([[0, 1, 0, 1]] * 4), torch.zeros(4, 3, 32, 32),
                          torch.randn(4, nets.e.cfg.input_dim), cfg, opt)
    assert {"c/L1", "c/f_cos"} <= set(parts)
    assert _changed(c0, nets.c) and not _changed(f0, nets.f)


def _metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_train_avatar_cli_writes_model_samples_and_resumes(tiny_run, crawl, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train-avatar", "--faces", tiny_run["faces"], "--emoji", crawl, "--out", out,
            *[x for s in TINY_AVATAR + [f"f={json.dumps(str(tiny_run['encoder']))}"] for x in ("--set", s)]]
    assert main([*map(str, args), "--steps", "3"]) == 0
    assert sorted(p.name for p in out.glob("state-*.pt")) == ["state-00000002.pt", "state-00000003.pt"]
    assert (out / "samples" / "imitator-00000002.png").exists() and (out / "samples" / "photos-00000003.png").exists()
    assert main([*map(str, args), "--steps", "3"]) == 2   # an existing run is never overwritten
    assert main([*map(str, args), "--steps", "5", "--resume"]) == 0
    steps = [m["step"] for m in _metrics(out) if "L_E" in m]
    assert steps == [3, 4, 5]
    phase = {m["step"]: ("c/L1" in m) for m in _metrics(out) if "c/L1" in m or "L_E" in m}
    assert phase == {1: True, 2: True, 3: False, 4: False, 5: False}
    held = [m for m in _metrics(out) if "held/acc/mean" in m]
    assert held and 0 <= held[-1]["held/acc/mean"] <= 1
    snap = torch.load(out / "avatar.pt", weights_only=True)
    assert snap["kind"] == "avatar" and snap["heldout_identities"] and snap.get("imitator") is None  # pixels: c stays in the run
    # a second run reuses the imitator and goes straight to e
    out2 = tmp_path / "run2"
    args2 = [str(a) if a != out else str(out2) for a in args]
    assert main([*args2, "--steps", "2", "--imitator", str(out / "imitator.pt")]) == 0
    assert all("c/L1" not in m for m in _metrics(out2))
    # ... but not an imitator of another kind
    args3 = [str(a) if a != out else str(tmp_path / "run3") for a in args]
    code = main([*args3, "--steps", "2", "--imitator", str(out / "imitator.pt"), "--set", 'imitator="features"'])
    assert code == 2 and "another kind or size of imitator" in capsys.readouterr().err


def run_avatar(args, capsys):
    code = main(["avatar", *map(str, args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_photo_in_avatar_out_and_json_round_trips(model, tmp_path, capsys):
    photo = save(astronaut(320), tmp_path / "face.jpg")
    code, out, err = run_avatar([photo, "--model", model, "--size", "96"], capsys)
    assert code == 0, err
    written = [Path(p) for p in out.split()]
    assert [p.name for p in written] == ["face.avatar.json", "face.avatar.svg", "face.avatar.png"]
    choice = json.loads(written[0].read_text())
    assert set(choice) == set(parse_query({})[0])      # every parameter of the server, by name
    assert parse_query({k: [v] for k, v in choice.items()}) == (choice, 152)   # the server's parser takes it back
    assert choice["clothing"] == "shirt_crew_neck"     # not a trait: the server's default
    with Image.open(written[2]) as img:
        assert img.size == (96, 96)
    assert written[2].read_bytes() == render_png(choice, 96)
    assert 'width="96"' in written[1].read_text()


def test_edited_json_re_renders(model, tmp_path, capsys):
    photo = save(astronaut(320), tmp_path / "face.jpg")
    assert run_avatar([photo, "--model", model, "-o", tmp_path / "out"], capsys)[0] == 0
    path = tmp_path / "out" / "face.avatar.json"
    choice = json.loads(path.read_text())
    before = (tmp_path / "out" / "face.avatar.png").read_bytes()
    choice["skin_color"] = "dark_brown" if choice["skin_color"] != "dark_brown" else "pale"
    choice["clothing_color"] = "red"
    path.write_text(json.dumps(choice))
    code, out, err = run_avatar(["--params", path], capsys)
    assert code == 0, err
    after = (tmp_path / "out" / "face.avatar.png").read_bytes()
    assert after != before and after == render_png(full_choice(choice), 256)
    assert json.loads(path.read_text()) == choice


@pytest.mark.parametrize("text, message", [
    ('{"top": "bobx"}', "unknown value 'bobx' for 'top' (allowed: none, "),
    ('{"tops": "bob"}', "unknown parameter 'tops'"),
    ('["bob"]', "expected an object"),
    ('{"top": ', "not valid JSON"),
])
def test_bad_json_is_one_line_and_exit_1(tmp_path, capsys, text, message):
    path = tmp_path / "x.avatar.json"
    path.write_text(text)
    code, out, err = run_avatar(["--params", path], capsys)
    assert code == 1 and out == "" and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.avatar.png").exists()


def test_photo_problems_like_caricature(model, tmp_path, capsys):
    from tests.test_caricature import EXPECTED_ERRORS, make_bad_inputs

    inputs = make_bad_inputs(tmp_path / "in")
    code, out, err = run_avatar([*inputs.values(), "--model", model, "-o", tmp_path / "out"], capsys)
    assert code == 1 and "Traceback" not in err
    lines = err.strip().splitlines()
    for name, reason in EXPECTED_ERRORS.items():
        matching = [l for l in lines if l.startswith(str(inputs[name]) + ":")]
        assert len(matching) == 1 and reason in matching[0], (name, lines)
    assert len(lines) == len(EXPECTED_ERRORS)
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == sorted(f"{n}.avatar.{ext}" for n in ("cmyk", "gray", "rgba", "rotated")
                             for ext in ("json", "png", "svg"))
    code, out, err = run_avatar([inputs["no_face"], "--model", model, "--no-detect"], capsys)
    assert code == 0 and "wall.avatar.json" in out
    code, _, err = run_avatar([inputs["no_face"], "--model", inputs["not_image"]], capsys)
    assert code == 2 and "not a readable checkpoint" in err


def test_a_model_refuses_another_f_than_it_learned(model, tmp_path):
    from img2caricature.avatar.model import load_avatar_model
    from img2caricature.errors import UserError

    snap = torch.load(model, weights_only=True)
    snap["f"] = {**snap["f"], "name": "default", "embedded": None}   # claims the shipped f, holds another's hash
    torch.save(snap, tmp_path / "other.pt")
    with pytest.raises(UserError, match="another f"):
        load_avatar_model(tmp_path / "other.pt")


def _default_avatar_model():
    from img2caricature.avatar.model import default_avatar_model_path

    return default_avatar_model_path()


@pytest.mark.skipif(not _default_avatar_model().is_file(),
                    reason="no default avatar model shipped yet (issue 18 is open: its training run did not finish)")
def test_shipped_default_model_is_small_and_draws(tmp_path, capsys):
    path = _default_avatar_model()
    assert path.stat().st_size < 8 * 2**20   # f (float16, 4 MB), e, the imitator (float16) and the probe
    photo = save(astronaut(320), tmp_path / "face.jpg")
    code, out, err = run_avatar([photo], capsys)
    assert code == 0, err
    assert json.loads((tmp_path / "face.avatar.json").read_text())["clothing"] == "shirt_crew_neck"


# ---- evaluate-avatar -------------------------------------------------------------------

def test_lightness_spearman_and_balanced_agreement():
    from img2caricature.evaluate import avatar_metrics as am

    assert am.hex_lightness("#FFFFFF") == pytest.approx(100, abs=0.01)
    assert am.hex_lightness("#000000") == pytest.approx(0, abs=0.01)
    assert am.hex_lightness("#777777") == pytest.approx(50.0, abs=0.5)   # sRGB 119 is L* 50
    assert am.spearman(np.array([1, 2, 3, 4]), np.array([10, 20, 30, 40])) == pytest.approx(1)
    assert am.spearman(np.array([1, 2, 3, 4]), np.array([4, 3, 2, 1])) == pytest.approx(-1)
    # ties share their mean rank: Pearson of ranks (1, 2.5, 2.5, 4) and (1, 2, 3, 4)
    assert am.spearman(np.array([1, 2, 2, 3]), np.array([1, 2, 3, 4])) == pytest.approx(0.9486833)
    assert np.isnan(am.spearman(np.array([1, 1, 1]), np.array([1, 2, 3])))
    agreement = am.balanced_agreement(np.array([1, 1, 0, 0, 0, 0]), np.array([1, 0, 0, 0, 0, 1]))
    assert agreement["balanced"] == pytest.approx((0.5 + 0.75) / 2) and agreement["positives"] == 2
    crops = np.zeros((2, 100, 100, 3), np.uint8)
    crops[1, 50:70, 30:70] = 255
    assert am.region_lightness(crops, am.SKIN_REGION).tolist() == pytest.approx([0, 100], abs=0.01)


def test_nearest_and_majority_of_the_k_nearest():
    from img2caricature.avatar.space import ParamSpace
    from img2caricature.evaluate.avatar import nearest_avatars

    space = ParamSpace(["a", "b"], [["x", "y", "z"], ["p", "q"]], ["a", "b"], {})
    crawl = torch.tensor([[1.0, 0, 0], [0.9, 0.1, 0], [0.8, 0.2, 0], [0, 1.0, 0]])
    params = np.array([[0, 1], [2, 0], [2, 0], [1, 1]])
    photos = torch.tensor([[1.0, 0.05, 0], [0, 1, 0.1]])
    assert nearest_avatars(photos, crawl, space, params) == [{"a": "x", "b": "q"}, {"a": "y", "b": "q"}]
    assert nearest_avatars(photos, crawl, space, params, k=3)[0] == {"a": "z", "b": "p"}


def test_evaluate_avatar_cli_measures_models_and_baselines(tiny_run, crawl, model, tmp_path, capsys):
    from img2caricature import dataset
    from img2caricature.train.encoder import EncoderTrainConfig, train_encoder
    from tests.conftest import TINY_ENCODER

    ruler = tmp_path / "ruler"
    train_encoder(tiny_run["faces"], ruler, load_config(EncoderTrainConfig, None, TINY_ENCODER + ["steps=2", "seed=1"]),
                  show_progress=False)
    faces = dataset.load_images(tiny_run["faces"], "faces").permute(0, 2, 3, 1).numpy()
    (tmp_path / "g").mkdir()
    for i, image in enumerate(faces[:10]):
        Image.fromarray(image).save(tmp_path / "g" / f"{i}.png")
    (tmp_path / "g.csv").write_text("file,gender\n" + "".join(f"{i}.png,{'male' if i % 2 else 'female'}\n"
                                                              for i in range(10)))
    sources = dataset.read_column(tiny_run["faces"], "sources", "faces")
    (tmp_path / "hand.csv").write_text("source,glasses,facial_hair\n" + "".join(
        f"{s},{i % 3 == 0:d},{'' if i == 1 else i % 2}\n" for i, s in enumerate(sources)))
    out = tmp_path / "report"
    args = ["evaluate-avatar", "--model", model, "--faces", tiny_run["faces"], "--emoji", crawl,
            "--ruler", ruler / "encoder.pt", "--out", out, "--gender-csv", tmp_path / "g.csv",
            "--gender-images", tmp_path / "g", "--hand-labels", tmp_path / "hand.csv", "--knn", "3",
            "--cache", tmp_path / "cache"]
    assert main([str(a) for a in args]) == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert list(report["rows"]) == ["avatar", "baseline: random crawled avatar",
                                    "baseline: nearest crawled avatar in f",
                                    "3 nearest crawled avatars in f, majority per trait"]
    row = report["rows"]["avatar"]
    assert {"skin_spearman", "hair_spearman", "glasses", "facial_hair", "retrieval/ruler", "retrieval/model f",
            "gender/ruler", "gender/model f"} <= set(row)
    assert row["retrieval/ruler"]["queries"] == report["photos"] == 8   # the tiny f's two held-out people
    assert (out / "grid.jpg").exists() and "| avatar |" in (out / "report.md").read_text()
    # the model's own f is not a ruler
    args[args.index("--ruler") + 1] = tiny_run["encoder"]
    assert main([str(a) for a in args]) == 2


def test_features_model_ships_its_policy_probe_and_imitator(tiny_run, crawl, tmp_path, capsys):
    """The shipped kind of model: a features imitator (inside the model, for the trait search),
    a gender probe on f from a labelled folder, thresholds calibrated on the training photos."""
    from img2caricature.avatar.model import load_avatar_model

    labelled = tmp_path / "labelled"
    labelled.mkdir()
    rows = ["file,gender"]
    for i in range(12):
        save(astronaut(96 + 8 * i), labelled / f"{i}.jpg")
        rows.append(f"{i}.jpg,{'female' if i % 2 else 'male'}")
    (tmp_path / "genders.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "run"
    cfg = tiny_cfg(tiny_run, 'imitator="features"', "imitator_hidden=[16]", "d_widths=[8]",
                   f"gender_csv={json.dumps(str(tmp_path / 'genders.csv'))}",
                   f"gender_images={json.dumps(str(labelled))}")
    train_avatar(tiny_run["faces"], crawl, out, cfg, show_progress=False)
    snap = torch.load(out / "avatar.pt", weights_only=True)
    assert set(snap["policy"]["thresholds"]) == {"facial_hair", "accessory"}
    assert snap["gender_probe"]["classes"] == ["female", "male"]
    assert all(v.dtype == torch.float16 for v in snap["imitator"]["state_dict"].values())
    model = load_avatar_model(out / "avatar.pt")
    assert model.imitator is not None and model.gender is not None
    photo = save(astronaut(320), tmp_path / "face.jpg")
    code, _, err = run_avatar([photo, "--model", out / "avatar.pt"], capsys)
    assert code == 0, err
    choice = json.loads((tmp_path / "face.avatar.json").read_text())
    assert choice["skin_color"] in {"pale", "light", "brown", "black"}   # read from the pixels, in the tiny space


def test_an_f_without_held_out_people_holds_out_the_shipped_models():
    # a published f (dlib's) knows no held-out people: the avatar run then holds out the
    # shipped DTN's, which that model keeps itself (its f, dlib's, has none)
    from img2caricature import checkpoint
    from img2caricature.caricature import default_model_path
    from img2caricature.train.avatar import heldout_names

    shipped = checkpoint.load(default_model_path())
    expected = shipped.get("heldout_identities") or shipped["encoder"]["heldout_identities"]
    assert len(expected) >= 2
    assert heldout_names({"name": "dlib-resnet-v1", "embedded": None}) == list(expected)
    assert heldout_names({"embedded": {"heldout_identities": ["a", "b"]}}) == ["a", "b"]
