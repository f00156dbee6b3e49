"""g at 128 px with a subpixel last x2, warm-started from a trained 64-px g."""

import pytest
import torch
import torch.nn.functional as F

from img2caricature import checkpoint
from img2caricature.config import load_config
from img2caricature.errors import UserError
from img2caricature.nets.dtn import Generator, GeneratorConfig, init_dcgan
from img2caricature.train.dtn import DTNConfig, train_dtn, warm_start
from img2caricature.translate import load_translator
from tests.conftest import TINY_DTN

TINY_128 = ["output_size=128", 'g_last_up="subpixel"', "d_widths=[8,16,16,16,16]"]


def enlarged(g64: Generator, z: torch.Tensor) -> torch.Tensor:
    """The 64-px g's image enlarged as the subpixel head does: bilinear before the tanh."""
    pre = torch.atanh(g64(z).double().clamp(-1 + 1e-12, 1 - 1e-12))
    return torch.tanh(F.interpolate(pre, scale_factor=2, mode="bilinear", align_corners=False))


@pytest.fixture(scope="module")
def run64(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("run64") / "run"
    cfg = load_config(DTNConfig, None, TINY_DTN + ["steps=2"])
    train_dtn(tiny_run["faces"], tiny_run["emoji"], tiny_run["encoder"], out, cfg, show_progress=False)
    return out / "dtn.pt"


def generator_of(snapshot: dict) -> Generator:
    g = Generator(GeneratorConfig(**snapshot["config"]["generator"]))
    g.load_state_dict(snapshot["state_dicts"]["generator"])
    return g.eval()


def test_a_warm_started_subpixel_g_draws_the_64px_g_enlarged_until_it_learns(run64):
    snap = checkpoint.load(run64)
    g64 = generator_of(snap)
    gen = snap["config"]["generator"]
    g128 = Generator(GeneratorConfig(gen["input_dim"], 128, tuple(gen["widths"]), last_up="subpixel", detail_width=8))
    init_dcgan(g128)
    warm_start(g128, snap, snap["encoder"])
    g128.eval()
    z = torch.randn(3, gen["input_dim"])
    with torch.no_grad():
        out = g128(z)
        assert out.shape == (3, 3, 128, 128)
        assert torch.allclose(out.double(), enlarged(g64, z), atol=1e-5)
    # the head is not dead: its zero last convolution gets a gradient
    g128.train()
    g128(z).square().mean().backward()
    assert g128.detail[-2].weight.grad.abs().sum() > 0


def test_warm_start_refuses_what_does_not_fit(run64):
    snap = checkpoint.load(run64)
    gen = snap["config"]["generator"]
    transposed = Generator(GeneratorConfig(gen["input_dim"], 128, tuple(gen["widths"])))   # a new block, not a head
    with pytest.raises(UserError, match="lacks layers"):
        warm_start(transposed, snap, snap["encoder"])
    wider_input = Generator(GeneratorConfig(gen["input_dim"] + 6, 128, tuple(gen["widths"]), last_up="subpixel"))
    with pytest.raises(UserError, match="does not fit"):
        warm_start(wider_input, snap, snap["encoder"])
    other_f = {**snap["encoder"], "config": {"encoder": {"arch": "something-else"}}}
    g128 = Generator(GeneratorConfig(gen["input_dim"], 128, tuple(gen["widths"]), last_up="subpixel"))
    with pytest.raises(UserError, match="another f"):
        warm_start(g128, snap, other_f)


def test_a_128px_run_warm_started_from_a_64px_run_trains_and_its_emoji_are_128px(tiny_run, run64, tmp_path):
    # lr_g = 0: g (and so its moving average) must still be exactly the 64-px g plus a zero head
    cfg = load_config(DTNConfig, None, TINY_DTN + TINY_128 + ["steps=2", "lr_g=0.0", f'init_from="{run64}"'])
    train_dtn(tiny_run["faces"], tiny_run["emoji"], tiny_run["encoder"], tmp_path / "run", cfg, show_progress=False)
    snap, snap64 = checkpoint.load(tmp_path / "run" / "dtn.pt"), checkpoint.load(run64)
    params = dict(generator_of(snap).named_parameters())
    for k, v in generator_of(snap64).named_parameters():
        assert torch.equal(params[k], v), k
    assert params["detail.4.weight"].abs().sum() == 0
    emoji = load_translator(tmp_path / "run" / "dtn.pt")(torch.rand(2, 3, 152, 152) * 2 - 1)
    assert emoji.shape == (2, 3, 128, 128)

    # with a learning rate the head learns, and the run resumes from its own state, not the warm start
    cfg = load_config(DTNConfig, None, TINY_DTN + TINY_128 + ["steps=4", f'init_from="{run64}"'])
    train_dtn(tiny_run["faces"], tiny_run["emoji"], tiny_run["encoder"], tmp_path / "run2", cfg, show_progress=False)
    ahead = checkpoint.load(tmp_path / "run2" / "dtn.pt")["state_dicts"]["generator"]
    assert ahead["detail.4.weight"].abs().sum() > 0
    cfg2 = load_config(DTNConfig, None, TINY_DTN + TINY_128 + ["steps=2", f'init_from="{run64}"'])
    train_dtn(tiny_run["faces"], tiny_run["emoji"], tiny_run["encoder"], tmp_path / "run3", cfg2, show_progress=False)
    cfg3 = load_config(DTNConfig, None, TINY_DTN + TINY_128 + ["steps=4", f'init_from="{run64}"'])
    train_dtn(tiny_run["faces"], tiny_run["emoji"], tiny_run["encoder"], tmp_path / "run3", cfg3, resume=True,
              show_progress=False)
    resumed = checkpoint.load(tmp_path / "run3" / "dtn.pt")["state_dicts"]["generator"]
    assert all(torch.allclose(resumed[k], ahead[k], atol=1e-5) for k in ahead if ahead[k].is_floating_point())
