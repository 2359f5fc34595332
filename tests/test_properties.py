"""Properties over many random inputs (hypothesis): the DTW and the registration."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage

from vidkompy.dtw import STEP_PENALTY, free_steps, monotonic_alignment
from vidkompy.samples import _texture
from vidkompy.spatial import phase_correlate

TEXTURE = _texture(128, 192, np.random.default_rng(11))[..., 1].astype(np.float32)


def brute_force(cost: np.ndarray, ratio: float, max_step: int) -> float:
    """The cheapest monotonic path by enumeration, under the same step rules."""
    n, m = cost.shape
    lo, hi = free_steps(ratio)
    best = np.inf
    for path in itertools.product(range(m), repeat=n):
        steps = np.diff(path)
        if np.any(steps < 0) or np.any(steps > max_step):
            continue
        total = cost[np.arange(n), path].sum() + STEP_PENALTY * np.sum((steps < lo) | (steps > hi))
        best = min(best, total)
    return best


@settings(max_examples=60, deadline=None, derandomize=True)
@given(n=st.integers(2, 5), m=st.integers(1, 6), ratio=st.sampled_from([0.5, 0.8, 1.0, 1.25, 2.0]),
       seed=st.integers(0, 10_000))
def test_dtw_is_monotonic_complete_and_optimal(n, m, ratio, seed):
    cost = np.random.default_rng(seed).random((n, m)) * 3
    path, step_cost = monotonic_alignment(cost, ratio=ratio, n_bg=m)
    assert len(path) == n and len(step_cost) == n
    assert np.all(np.diff(path) >= 0) and path.min() >= 0 and path.max() < m
    lo, hi = free_steps(ratio)
    steps = np.diff(path)
    total = cost[np.arange(n), path].sum() + STEP_PENALTY * np.sum((steps < lo) | (steps > hi))
    assert np.isclose(total, brute_force(cost, ratio, hi + 3))


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(dy=st.floats(-6, 6), dx=st.floats(-6, 6))
def test_phase_correlation_recovers_any_shift_within_half_a_pixel(dy, dx):
    moved = np.fft.ifft2(ndimage.fourier_shift(np.fft.fft2(TEXTURE), (dy, dx))).real
    fy, fx, ratio = phase_correlate(TEXTURE, moved)
    assert abs(fy - dy) <= 0.5 and abs(fx - dx) <= 0.5
    assert ratio > 3.0


@settings(max_examples=20, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000))
def test_phase_correlation_has_low_confidence_on_unrelated_pictures(seed):
    other = _texture(128, 192, np.random.default_rng(seed + 100))[..., 1].astype(np.float32)
    assert phase_correlate(TEXTURE, other)[2] < 2.0  # true matches measured at >= 4.9 (200 random shifts)
