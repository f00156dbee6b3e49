"""Shared fixtures: tiny datasets made on the fly, and the path to the shared real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from img2caricature import dataset

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def make_faces(path: Path, n_ids: int = 4, per_id: int = 6, seed: int = 0) -> Path:
    """A faces dataset whose identities differ in colour and pattern, so they are learnable."""
    rng = np.random.default_rng(seed)
    dataset.create(path, "faces", producer="tests")
    images, labels = [], []
    for label in range(n_ids):
        base = rng.integers(40, 215, size=3)
        for _ in range(per_id):
            img = np.clip(base + rng.normal(0, 12, (152, 152, 3)), 0, 255).astype(np.uint8)
            img[40 + 10 * label: 70 + 10 * label, 50:100] = 255 - base  # identity-specific bar
            images.append(img)
            labels.append(label)
    with dataset.Writer(path, "faces") as w:
        w.append(images=np.stack(images), labels=np.array(labels, np.int32),
                 sources=[f"id{l}/{i}.jpg" for i, l in enumerate(labels)])
        w.set_names([f"person{i}" for i in range(n_ids)])
    return path


def make_emoji(path: Path, n: int = 16, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    dataset.create(path, "emoji", producer="tests", param_names=["hair", "skin"])
    images = np.full((n, 152, 152, 3), 255, np.uint8)
    params = rng.integers(0, 5, size=(n, 2)).astype(np.int32)
    for i, (hair, skin) in enumerate(params):
        images[i, 30:120, 40:112] = [60 + 30 * skin, 50 + 20 * skin, 40]
        images[i, 20:45, 35:117] = [40 * hair, 20, 20]
    with dataset.Writer(path, "emoji") as w:
        w.append(images=images, params=params, urls=[f"u{i}" for i in range(n)],
                 sha256=[f"h{i}" for i in range(n)])
    return path


@pytest.fixture
def faces_h5(tmp_path: Path) -> Path:
    return make_faces(tmp_path / "faces.h5")


@pytest.fixture
def emoji_h5(tmp_path: Path) -> Path:
    return make_emoji(tmp_path / "emoji.h5")


TINY_ENCODER = ["widths=[8,16]", "embedding_dim=16", "input_size=32", "batch_size=8",
                "val_per_identity=1", "eval_every=2", "log_every=1", "warmup_steps=1", "seed=0"]
TINY_DTN = ["g_widths=[32,16,8,8]", "d_widths=[8,16,16,16]", "batch_size=4",
            "log_every=1", "sample_every=2", "checkpoint_every=2", "n_samples=4", "seed=0"]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> dict[str, Path]:
    """Tiny faces, emoji and a 2-step encoder, shared by the training tests."""
    from img2caricature.config import load_config
    from img2caricature.train.encoder import EncoderTrainConfig, train_encoder

    root = tmp_path_factory.mktemp("tiny")
    faces = make_faces(root / "faces.h5", n_ids=5, per_id=4)
    emoji = make_emoji(root / "emoji.h5", n=20)
    cfg = load_config(EncoderTrainConfig, None, TINY_ENCODER + ["steps=2"])
    train_encoder(faces, root / "encoder", cfg, show_progress=False)
    return {"root": root, "faces": faces, "emoji": emoji, "encoder": root / "encoder" / "encoder.pt"}
TINY_CYCLEGAN = ["size=16", "ngf=4", "n_down=1", "n_blocks=1", "ndf=4", "d_layers=2", "batch_size=2", "pool_size=3",
                 "log_every=1", "sample_every=2", "checkpoint_every=2", "n_samples=4", "seed=0"]
