"""Monotonic alignment against known paths."""

from __future__ import annotations

import numpy as np
import pytest

from vidkompy.dtw import knn_alignment, monotonic_alignment


def true_path(n_fg: int, fg_fps: float, bg_fps: float, start: float) -> np.ndarray:
    return np.floor((start + np.arange(n_fg) / fg_fps) * bg_fps + 0.5 + 1e-6).astype(int)


@pytest.mark.parametrize(("fg_fps", "bg_fps"), [(30, 25), (25, 30), (24, 60), (60, 24), (25, 25)])
def test_recovers_a_rate_change_through_noise(fg_fps, bg_fps):
    rng = np.random.default_rng(0)
    truth = true_path(80, fg_fps, bg_fps, 0.5)
    n_bg = truth[-1] + 20
    cost = rng.random((80, n_bg))
    cost[np.arange(80), truth] -= 1.0
    cost[np.arange(0, 80, 7), np.arange(0, 80, 7) % n_bg] = -2.0  # tempting cells off the monotonic path
    path, _ = monotonic_alignment(cost, ratio=bg_fps / fg_fps, n_bg=n_bg)
    assert np.mean(path == truth) >= 0.98
    assert np.all(np.diff(path) >= 0)


def test_band_gives_the_same_path_as_the_dense_matrix():
    rng = np.random.default_rng(1)
    truth = true_path(50, 30, 25, 0.2)
    dense = rng.random((50, 60))
    dense[np.arange(50), truth] -= 0.5
    lo = truth - 3
    band = np.stack([dense[i, np.clip(lo[i] + np.arange(7), 0, 59)] for i in range(50)])
    band[(lo[:, None] + np.arange(7)) < 0] = np.inf
    banded, _ = monotonic_alignment(band, lo, ratio=25 / 30, n_bg=60)
    full, _ = monotonic_alignment(dense, ratio=25 / 30, n_bg=60)
    assert np.array_equal(banded, full)


def test_path_stays_monotonic_when_the_best_cells_go_backwards():
    cost = np.ones((6, 10))
    for i, j in enumerate([2, 3, 1, 5, 4, 7]):
        cost[i, j] = 0.0
    path, _ = monotonic_alignment(cost, ratio=1.0, n_bg=10)
    assert np.all(np.diff(path) >= 0)


def test_knn_path_follows_the_candidates():
    truth = true_path(40, 30, 25, 0.3)
    n_bg = 60
    idx = np.stack([np.array([t, (t + 17) % n_bg, (t + 31) % n_bg]) for t in truth]).astype(np.int32)
    sim = np.tile(np.array([0.99, 0.9, 0.8], np.float32), (40, 1))
    path = knn_alignment(idx, sim, n_bg, ratio=25 / 30)
    assert np.array_equal(path, truth)
