"""The colour code beside f(x): what it reads, how photos map onto emoji, and that the DTN
trainer feeds it to g, trains g's colours with L_COLOUR and saves it in the snapshot."""

import numpy as np
import pytest
import torch

from img2caricature import checkpoint
from img2caricature.avatar.appearance import lab as opencv_lab
from img2caricature.config import load_config
from img2caricature.nets.colour_code import ColourCode, interp, lab, read_colours
from img2caricature.nets.encoder import load_encoder
from img2caricature.train.dtn import Batch, DTNConfig, build_nets, generator_losses, train_dtn
from img2caricature.train.run import StopEarly
from img2caricature.translate import g_input, load_translator
from tests.conftest import TINY_DTN


def test_lab_is_opencvs():
    rgb = torch.randint(0, 256, (2, 3, 5, 7), dtype=torch.uint8)
    ours = lab(rgb.float() / 127.5 - 1).permute(0, 2, 3, 1).numpy()
    theirs = opencv_lab(rgb.permute(0, 2, 3, 1).numpy())
    assert np.abs(ours - theirs).max() < 0.5   # OpenCV approximates (tables); 0.5 is far below a visible step


def flat(colour_rgb, size=32):
    return (torch.tensor(colour_rgb, dtype=torch.float32)[None, :, None, None] / 127.5 - 1).expand(1, 3, size, size)


def test_reads_skin_from_the_cheeks_and_hair_from_above_the_forehead():
    image = flat((200, 150, 120), 64).clone()
    image[:, :, :10] = flat((40, 30, 20), 64)[:, :, :10]          # dark hair band on top
    image[:, :, 36:40, 28:36] = flat((250, 250, 250), 64)[:, :, :4, :8]  # white teeth inside the cheeks
    code = read_colours(image)[0]
    skin, hair = lab(flat((200, 150, 120), 1))[0, :, 0, 0], lab(flat((40, 30, 20), 1))[0, :, 0, 0]
    assert torch.allclose(code[:3], skin, atol=0.5)   # the teeth are outliers, not averaged in
    assert torch.allclose(code[3:], hair, atol=0.5)


def test_photo_codes_are_mapped_onto_the_emojis_by_quantile():
    photos = torch.stack([flat((v, v * 0.8, v * 0.6))[0] for v in torch.linspace(60, 200, 30)])
    emoji = torch.stack([flat((v, v * 0.8, v * 0.6))[0] for v in torch.linspace(120, 250, 30)])
    colour = ColourCode().fit(read_colours(photos), read_colours(emoji))
    # the median photo lands on the median emoji, and a photo read as an emoji does not
    middle_photo, middle_emoji = photos[15:16], emoji[15:16]
    assert torch.allclose(colour(middle_photo, "photo"), colour(middle_emoji, "emoji"), atol=0.1)
    assert (colour(middle_photo, "emoji")[0, 0] < colour(middle_emoji, "emoji")[0, 0] - 1)
    # standardised by the emoji's statistics
    codes = colour(emoji, "emoji")
    assert codes.mean(0).abs().max() < 1e-4 and torch.allclose(codes.std(0)[:3], torch.ones(3), atol=0.05)


def test_interp_is_numpys():
    xp, fp = torch.tensor([[0.0], [1.0], [3.0]]), torch.tensor([[10.0], [20.0], [0.0]])
    x = torch.tensor([[-1.0], [0.5], [2.0], [5.0]])
    assert interp(x, xp, fp)[:, 0].tolist() == pytest.approx(np.interp(x[:, 0], xp[:, 0], fp[:, 0]).tolist())


def colour_setup(tiny_run, **overrides):
    cfg = load_config(DTNConfig, None, TINY_DTN + ["colour_code=true"] + [f"{k}={v}" for k, v in overrides.items()])
    torch.manual_seed(0)
    photos, emoji = torch.rand(8, 3, 152, 152) * 2 - 1, torch.rand(8, 3, 152, 152) * 2 - 1
    colour = ColourCode().fit(read_colours(photos), read_colours(emoji))
    nets = build_nets(load_encoder(tiny_run["encoder"]), cfg, torch.device("cpu"), colour)
    batch = Batch(g_input(nets.f, colour, photos[:4], "photo"), g_input(nets.f, colour, emoji[:4], "emoji"),
                  torch.nn.functional.interpolate(emoji[:4], size=cfg.output_size, mode="area"))
    return cfg, nets, batch


def test_g_reads_the_colour_code_and_l_colour_reaches_g(tiny_run):
    cfg, nets, batch = colour_setup(tiny_run)
    assert nets.g.cfg.input_dim == nets.f.dim + ColourCode.dim
    _, parts = generator_losses(nets, batch, cfg)
    assert parts["L_COLOUR"] > 0
    # L_COLOUR alone has a gradient in g: the code is read from g's emoji differentiably
    nets.g.zero_grad()
    cfg_colour_only = load_config(DTNConfig, None, TINY_DTN + ["colour_code=true", "alpha=0", "beta=0", "gamma=0"])
    loss, parts = generator_losses(nets, batch, cfg_colour_only)
    (loss - parts["L_GANG"]).backward()
    assert nets.g.to_rgb[0].weight.grad.abs().sum() > 0
    # and the colour code changes what g draws
    changed = Batch(batch.f_source.clone(), batch.f_target, batch.target)
    changed.f_source[0, nets.f.dim:] += 2.0   # one photo's colours (a shift of all would be BatchNorm's to cancel)
    before, after = nets.g(batch.f_source)[0], nets.g(changed.f_source)[0]
    assert (before - after).abs().mean() > 0.01 * before.abs().mean()


def test_l_colour_moves_the_emojis_colours_towards_the_photos(tiny_run):
    cfg, nets, batch = colour_setup(tiny_run, alpha=0, beta=0, gamma=0)
    opt = torch.optim.Adam(nets.g.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        loss, parts = generator_losses(nets, batch, cfg)
        first = parts["L_COLOUR"].item() if first is None else first
        opt.zero_grad()
        parts_colour = loss - parts["L_GANG"]   # L_COLOUR alone (the other weights are 0)
        parts_colour.backward()
        opt.step()
    assert parts["L_COLOUR"].item() < 0.5 * first


def test_colour_run_saves_the_code_and_resumes(tiny_run, tmp_path):
    t = tiny_run
    cfg = load_config(DTNConfig, None, TINY_DTN + ["steps=2", "colour_code=true"])
    train_dtn(t["faces"], t["emoji"], t["encoder"], tmp_path / "run", cfg, show_progress=False, stop=StopEarly(steps=1))
    train_dtn(t["faces"], t["emoji"], t["encoder"], tmp_path / "run", cfg, resume=True, show_progress=False)
    snap = checkpoint.load(tmp_path / "run" / "dtn.pt")
    assert "colour" in snap["state_dicts"] and snap["state_dicts"]["colour"]["std"].shape == (6,)
    translator = load_translator(tmp_path / "run" / "dtn.pt")
    assert translator.colour is not None and translator(torch.rand(2, 3, 152, 152) * 2 - 1).shape == (2, 3, 64, 64)
    # fitted on the run's own photos and emoji, not the untrained placeholder
    assert not torch.equal(translator.colour.std, torch.ones(6))


def test_colours_kept_ranks_photos_against_their_emoji():
    from img2caricature.evaluate.colours import colour_agreement, emoji_colours

    shades = torch.linspace(40, 220, 12)
    photos = torch.stack([flat((v, v * 0.8, v * 0.7), 64)[0] for v in shades])
    kept = torch.stack([flat((v / 2 + 120, v / 2 + 90, v / 2 + 60), 64)[0] for v in shades])   # other scale, same order
    assert colour_agreement(read_colours(photos), emoji_colours(kept))["skin"] == pytest.approx(1.0)
    assert colour_agreement(read_colours(photos), emoji_colours(kept.flip(0)))["skin"] == pytest.approx(-1.0)
