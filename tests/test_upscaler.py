"""The learned 2x emoji upscaler: bicubic until trained, g-like faults for its inputs, and a
short training run that beats bicubic on the pairs it learns from."""

import numpy as np
import torch
import torch.nn.functional as F

from img2caricature import checkpoint, dataset
from img2caricature.batches import downscale
from img2caricature.nets.upscaler import Upscaler, UpscalerConfig, upscaler_from_snapshot
from img2caricature.train.upscaler import UpscalerTrainConfig, _blur, degrade, train_upscaler
from tests.conftest import make_emoji


def test_an_untrained_upscaler_is_bicubic():
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    y = Upscaler(UpscalerConfig(width=8, blocks=1))(x)
    assert y.shape == (2, 3, 32, 32)
    assert torch.allclose(y, F.interpolate(x, scale_factor=2, mode="bicubic").clamp(-1, 1))


def test_degradations_blur_add_noise_and_speckle_each_by_a_random_strength():
    x = torch.zeros(64, 3, 16, 16)
    x[..., 8:, :] = 0.5
    assert torch.allclose(_blur(x, torch.zeros(64)), x, atol=1e-6)              # sigma 0: unchanged
    blurred = _blur(x, torch.full((64,), 1.0))
    assert 0 < blurred[0, 0, 8, 0] < 0.5 and torch.allclose(blurred.mean(), x.mean(), atol=1e-3)
    none = UpscalerTrainConfig(max_blur_sigma=0, max_noise=0, max_speckle=0)
    assert torch.equal(degrade(x, none), x)
    noisy = degrade(x, UpscalerTrainConfig(max_blur_sigma=0, max_speckle=0), torch.Generator().manual_seed(0))
    per_image = (noisy - x).flatten(1).std(1)
    assert per_image.min() < 0.01 < 0.03 < per_image.max() <= 0.05              # strengths differ per image
    speckled = degrade(x, UpscalerTrainConfig(max_blur_sigma=0, max_noise=0, max_speckle=0.5),
                       torch.Generator().manual_seed(0))
    changed = (speckled != x).any(1).float().mean((1, 2))
    assert 0 < changed.mean() < 0.5 and changed.max() > 0.1                     # a share of pixels, in colour


def test_a_short_run_learns_to_beat_bicubic_on_its_pairs(tmp_path):
    emoji = make_emoji(tmp_path / "emoji.h5", n=12)
    cfg = UpscalerTrainConfig(width=16, blocks=2, steps=60, batch_size=8, crop=16, lr=3e-3,
                              max_blur_sigma=0, max_noise=0, max_speckle=0)
    summary = train_upscaler(emoji, tmp_path / "up", cfg, exclude=[0, 1])
    assert summary["steps"] == 60 and summary["n_emoji"] == 10
    model = upscaler_from_snapshot(checkpoint.load(tmp_path / "up" / "upscaler.pt"))
    high = downscale(dataset.load_images(emoji, "emoji"), 128)
    low, high = dataset.to_float(downscale(high, 64)), dataset.to_float(high)
    learned = F.l1_loss(model(low), high)
    bicubic = F.l1_loss(F.interpolate(low, scale_factor=2, mode="bicubic").clamp(-1, 1), high)
    assert learned < 0.97 * bicubic, (float(learned), float(bicubic))


def test_caricature_applies_an_upscaler_only_when_asked(tmp_path, capsys, tiny_run):
    from PIL import Image

    from img2caricature.nets.upscaler import upscaler_snapshot
    from tests.preprocess_photos import astronaut, save
    from tests.test_caricature import model as _model, run  # noqa: F401

    dtn = _model.__wrapped__(tiny_run)
    photo = save(astronaut(320), tmp_path / "face.jpg")
    up = Upscaler(UpscalerConfig(width=4, blocks=1))
    torch.nn.init.normal_(up.tail[0].weight, 0, 0.5)        # a visible correction
    checkpoint.save_atomic(upscaler_snapshot(up), tmp_path / "up.pt")
    outs = {}
    for name, extra in (("plain", []), ("upscaled", ["--upscaler", tmp_path / "up.pt"])):
        code, _, err = run([photo, "--model", dtn, "--no-detect", "-o", tmp_path / f"{name}.png", *extra], capsys)
        assert code == 0, err
        with Image.open(tmp_path / f"{name}.png") as img:
            outs[name] = np.asarray(img).astype(int)
    assert outs["plain"].shape == outs["upscaled"].shape == (256, 256, 3)
    assert np.abs(outs["plain"] - outs["upscaled"]).mean() > 2
    code, _, err = run([photo, "--model", dtn, "--upscaler", dtn, "-o", tmp_path / "x.png"], capsys)
    assert code == 2 and err.count("\n") == 1 and "not an upscaler checkpoint" in err
