"""The embedders: the weight-free fallback, and the MobileNet path's plumbing (random weights)."""

from __future__ import annotations

import numpy as np
import pytest

from vidkompy.alignment.embed import FALLBACK_ID, TORCHVISION_FILE, FrameEmbedder, fallback_embedding
from vidkompy.samples import source_frames


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    return np.stack([f[..., 1] for f in source_frames(64, 36, 12, seed=7)])


def test_fallback_is_unit_norm_and_blind_to_gain_and_offset(frames):
    a = fallback_embedding(frames)
    b = fallback_embedding(0.7 * frames + 20)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-4)
    assert np.allclose(a, b, atol=1e-3)


def test_fallback_ranks_the_same_frame_first(frames):
    emb = fallback_embedding(frames)
    noisy = fallback_embedding(frames + np.random.default_rng(0).normal(0, 4, frames.shape))
    assert np.array_equal((noisy @ emb.T).argmax(axis=1), np.arange(len(frames)))


def test_without_weights_the_fallback_runs(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv("VIDKOMPY_MOBILENET_WEIGHTS", raising=False)
    assert FrameEmbedder().model_id == FALLBACK_ID


def test_mobilenet_path_loads_weights_from_a_file(frames, tmp_path):
    """torch is a hard dependency: a broken install fails here at import instead of skipping. (Imported here,
    not at the top: collecting the suite in every xdist worker would import torch in each, ~3 s of CPU.)"""
    import torch
    from torchvision.models import mobilenet_v3_small

    torch.manual_seed(0)
    weights = tmp_path / "random-mobilenet.pth"
    torch.save(mobilenet_v3_small(weights=None).state_dict(), weights)
    embedder = FrameEmbedder(weights=weights)
    assert embedder.model_id.startswith("mobilenet_v3_small:")
    emb = embedder.embed(frames)
    assert emb.shape == (len(frames), 576)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)
    assert np.allclose(emb, embedder.embed(frames), atol=1e-5)


def test_weights_in_torchvisions_cache_are_found(tmp_path, monkeypatch):
    import torch
    from torchvision.models import mobilenet_v3_small

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(mobilenet_v3_small(weights=None).state_dict(), tmp_path / "hub" / "checkpoints" / TORCHVISION_FILE)
    assert FrameEmbedder().model_id.startswith("mobilenet_v3_small:")
