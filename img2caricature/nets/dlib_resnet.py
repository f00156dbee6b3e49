"""dlib's face-recognition ResNet (`dlib_face_recognition_resnet_model_v1.dat`, CC0) as a
torch module: 29 convolutions, a 128-d metric embedding, 99.38% on LFW.

The weights are read from dlib's own file (see `dlib_format`), with every affine layer
(dlib's batch norm, already reduced to a scale and shift) folded into the convolution before
it, which is exact. What dlib does differently from a plain torchvision ResNet:
- convolutions with stride 2 are not padded, stride-1 ones are ("same");
- a down block's skip is a 2x2/2 average pool of its input, and dlib's residual add
  zero-pads the smaller tensor (channels, and twice the spatial size) instead of projecting;
- the input is RGB in 0..255, minus the mean colour, divided by 256, at 150x150.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from img2caricature.nets.dlib_format import DlibFormatError, Network, read_network_file

WEIGHTS_FILE = "dlib_face_recognition_resnet_model_v1.dat"


@dataclass
class DlibResNetConfig:
    stem_width: int = 32
    stem_kernel: int = 7
    # (output channels, stride) of each residual block, input side first
    blocks: tuple[tuple[int, int], ...] = (
        (32, 1), (32, 1), (32, 1),
        (64, 2), (64, 1), (64, 1), (64, 1),
        (128, 2), (128, 1), (128, 1),
        (256, 2), (256, 1), (256, 1),
        (256, 2))
    embedding_dim: int = 128
    input_size: int = 150
    mean_rgb: tuple[float, float, float] = (122.782, 117.001, 104.298)


def padded_add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """dlib's add_prev: the sum over the larger of each dimension, the smaller tensor zero-padded
    at the end (more channels after a down block; one pixel more when the pool's output is)."""
    if a.shape == b.shape:
        return a + b
    c, h, w = (max(a.shape[i], b.shape[i]) for i in (1, 2, 3))

    def pad(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, w - t.shape[3], 0, h - t.shape[2], 0, c - t.shape[1]))
    return pad(a) + pad(b)


class ResidualBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.stride = stride
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1 if stride == 1 else 0)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.conv1(x)))
        skip = F.avg_pool2d(x, 2, 2) if self.stride != 1 else x
        return F.relu(padded_add(y, skip))


class DlibResNet(nn.Module):
    """Images in [-1, 1] at `input_size` -> the 128-d descriptor (not normalised, as dlib's)."""

    def __init__(self, cfg: DlibResNetConfig = DlibResNetConfig()):
        super().__init__()
        self.cfg = cfg
        self.stem = nn.Conv2d(3, cfg.stem_width, cfg.stem_kernel, 2, 0)
        blocks, c = [], cfg.stem_width
        for width, stride in cfg.blocks:
            blocks.append(ResidualBlock(c, width, stride))
            c = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(c, cfg.embedding_dim, bias=False)
        self.register_buffer("mean", torch.tensor(cfg.mean_rgb).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = ((images + 1) * 127.5 - self.mean) / 256
        x = F.max_pool2d(F.relu(self.stem(x)), 3, 2)
        x = self.blocks(x)
        return self.fc(x.mean((2, 3)))


# ---- from dlib's file ----------------------------------------------------------------------

def _conv_affine(conv, affine) -> tuple[np.ndarray, np.ndarray]:
    """A con_4 layer and the affine_ after it, folded: W' = gamma W, b' = gamma b + beta."""
    n, k, nr, nc = conv.fields["filters"]
    weight = conv.params[:n * k * nr * nc].reshape(n, k, nr, nc)
    bias = conv.params[n * k * nr * nc:n * k * nr * nc + n]
    gamma, beta = affine.params[:n], affine.params[n:2 * n]
    if len(affine.params) != 2 * n:
        raise DlibFormatError(f"affine layer has {len(affine.params)} values for {n} channels")
    return weight * gamma[:, None, None, None], bias * gamma + beta


def _expect(layers, i: int, *names: str) -> int:
    got = tuple(layer.name for layer in layers[i:i + len(names)])
    if got != names:
        raise DlibFormatError(f"layers {i}..: expected {names}, found {got}")
    return i + len(names)


def convert(net: Network) -> tuple[DlibResNetConfig, dict[str, torch.Tensor]]:
    """A parsed dlib network -> (config, state dict of `DlibResNet`)."""
    layers = net.layers
    i = _expect(layers, 0, "con_4", "affine_", "relu_", "max_pool_2")
    stem = layers[0]
    state: dict[str, np.ndarray] = {}
    state["stem.weight"], state["stem.bias"] = _conv_affine(layers[0], layers[1])
    blocks, c = [], stem.fields["num_filters"]
    while layers[i].name == "con_4":
        conv1, affine1, _, conv2, affine2 = layers[i:i + 5]
        i = _expect(layers, i, "con_4", "affine_", "relu_", "con_4", "affine_")
        stride = conv1.fields["stride_y"]
        if stride != 1:
            i = _expect(layers, i, "avg_pool_2")
        i = _expect(layers, i, "add_prev_", "relu_")
        b = f"blocks.{len(blocks)}"
        state[f"{b}.conv1.weight"], state[f"{b}.conv1.bias"] = _conv_affine(conv1, affine1)
        state[f"{b}.conv2.weight"], state[f"{b}.conv2.bias"] = _conv_affine(conv2, affine2)
        blocks.append((conv1.fields["num_filters"], stride))
        c = conv1.fields["num_filters"]
    i = _expect(layers, i, "avg_pool_2", "fc_2")
    fc = layers[i - 1]
    if i != len(layers):
        raise DlibFormatError(f"{len(layers) - i} unexpected layers after the fc layer")
    n_in, n_out = fc.fields["num_inputs"], fc.fields["num_outputs"]
    if n_in != c:
        raise DlibFormatError(f"fc layer takes {n_in} inputs, the last block gives {c}")
    state["fc.weight"] = fc.params[:n_in * n_out].reshape(n_in, n_out).T   # dlib stores in x out
    cfg = DlibResNetConfig(stem_width=stem.fields["num_filters"], stem_kernel=stem.fields["nr"],
                           blocks=tuple(blocks), embedding_dim=n_out, input_size=net.input_size[0],
                           mean_rgb=tuple(round(m, 3) for m in net.input_mean))
    return cfg, {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in state.items()}


def load_dlib_file(path: str | Path) -> DlibResNet:
    cfg, state = convert(read_network_file(path))
    model = DlibResNet(cfg)
    model.load_state_dict(state)
    return model.eval()


def installed_weights() -> Path | None:
    """dlib's file from the `face-recognition-models` package, found without importing it
    (its __init__ needs pkg_resources, which new setuptools no longer ship)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / WEIGHTS_FILE
    return path if path.is_file() else None


# The part of the project's 152x152 Haar crop the network sees (then resized to 150x150):
# calibrated on training identities, see docs/MODEL.md.
CROP_FRACTION = 0.65
CROP_SHIFT = 0.2
