"""Monotonic alignment against known paths: rate changes, bands, recuts and unmatched stretches."""

from __future__ import annotations

import numpy as np
import pytest

from vidkompy.alignment.dtw import coarse_path
from vidkompy.alignment.monotonic import Band, Steps, monotonic_path, step_in_cells, step_in_ranges
from vidkompy.models import runs


def true_path(n_fg: int, fg_fps: float, bg_fps: float, start: float) -> np.ndarray:
    return np.floor((start + np.arange(n_fg) / fg_fps) * bg_fps + 0.5 + 1e-6).astype(int)


def dense(cost: np.ndarray) -> tuple[Band, np.ndarray]:
    n, m = cost.shape
    return Band.contiguous(np.zeros(n, np.int64), m, m), cost.ravel()


@pytest.mark.parametrize(("fg_fps", "bg_fps"), [(30, 25), (25, 30), (24, 60), (60, 24), (25, 25)])
def test_recovers_a_rate_change_through_noise(fg_fps, bg_fps):
    rng = np.random.default_rng(0)
    truth = true_path(80, fg_fps, bg_fps, 0.5)
    n_bg = truth[-1] + 20
    cost = rng.random((80, n_bg))
    cost[np.arange(80), truth] -= 1.0
    cost[np.arange(0, 80, 7), np.arange(0, 80, 7) % n_bg] = -2.0  # tempting cells off the monotonic path
    path = monotonic_path(*dense(cost), Steps.for_ratio(bg_fps / fg_fps))
    assert np.mean(path.index == truth) >= 0.98
    assert np.all(np.diff(path.index) >= 0)
    assert path.matched.all()


def test_band_gives_the_same_path_as_the_dense_matrix():
    rng = np.random.default_rng(1)
    truth = true_path(50, 30, 25, 0.2)
    cost = rng.random((50, 60))
    cost[np.arange(50), truth] -= 0.5
    band = Band.contiguous(truth - 3, 7, 60)
    banded = monotonic_path(band, cost[band.row_index, band.cells], Steps.for_ratio(25 / 30))
    full = monotonic_path(*dense(cost), Steps.for_ratio(25 / 30))
    assert np.array_equal(banded.index, full.index)


def test_path_stays_monotonic_when_the_best_cells_go_backwards():
    cost = np.ones((6, 10))
    for i, j in enumerate([2, 3, 1, 5, 4, 7]):
        cost[i, j] = 0.0
    path = monotonic_path(*dense(cost), Steps.for_ratio(1.0))
    assert np.all(np.diff(path.index) >= 0)


def test_bg_material_left_out_is_one_jump_and_every_frame_stays_exact():
    """A recut: fg skips 75 bg frames (3 s at 25 fps). Without jumps the path ramps across the gap."""
    truth = np.concatenate([np.arange(0, 60), np.arange(135, 200)])
    n_bg = 210
    rng = np.random.default_rng(2)
    cost = rng.random((len(truth), n_bg)) * 0.2
    cost[np.arange(len(truth)), truth] = -1.0
    jumping = monotonic_path(*dense(cost), Steps.for_ratio(1.0, jump=3.0))
    assert np.array_equal(jumping.index, truth)
    assert np.sum(np.diff(jumping.index) > 4) == 1
    ramping = monotonic_path(*dense(cost), Steps.for_ratio(1.0))
    assert np.mean(ramping.index == truth) < 0.9  # what the jump fixes


def test_fg_material_bg_lacks_is_unmatched_and_holds_the_map():
    """An inserted shot: fg rows 40-59 match nothing; the map holds its bg frame through them."""
    n_bg = 120
    truth = np.concatenate([np.arange(0, 40), np.full(20, 39), np.arange(40, 80)])
    inserted = np.zeros(len(truth), bool)
    inserted[40:60] = True
    rng = np.random.default_rng(3)
    cost = rng.random((len(truth), n_bg)) * 0.3
    cost[np.flatnonzero(~inserted), truth[~inserted]] = -1.0
    path = monotonic_path(*dense(cost), Steps.for_ratio(1.0, jump=3.0, gap=-0.5))
    assert runs(~path.matched) == [(40, 59)]
    assert np.array_equal(path.index[~inserted], truth[~inserted])
    assert np.all(path.index[inserted] == 39)
    assert np.all(np.diff(path.index) >= 0)


def test_unmatched_rows_before_the_first_match_take_its_position():
    cost = np.full((8, 10), 0.5)
    cost[np.arange(3, 8), np.arange(4, 9)] = -1.0
    path = monotonic_path(*dense(cost), Steps.for_ratio(1.0, gap=-0.2))
    assert runs(~path.matched) == [(0, 2)]
    assert list(path.index) == [4, 4, 4, 4, 5, 6, 7, 8]


def test_coarse_path_follows_the_nearest_bins():
    truth = np.arange(5, 45)
    n_bg = 60
    idx = np.stack([np.array([t, (t + 17) % n_bg, (t + 31) % n_bg]) for t in truth]).astype(np.int32)
    sim = np.tile(np.array([0.99, 0.6, 0.5], np.float32), (40, 1))
    rng = np.random.default_rng(4)
    vectors = rng.standard_normal((60, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    path = coarse_path(idx, sim, vectors[truth], vectors)
    assert np.array_equal(path.index, truth)
    assert path.matched.all()


def test_band_find_and_union():
    a = Band.contiguous(np.array([0, 5, 10]), 3, 20)
    b = Band.contiguous(np.array([1, 15, 10]), 2, 20)
    u = a.union(b)
    assert [list(u.row(i)) for i in range(3)] == [[0, 1, 2], [5, 6, 7, 15, 16], [10, 11, 12]]
    pos, found = u.find(np.array([2, 15, 13]))
    assert list(found) == [True, True, False]
    assert u.cells[pos[0]] == 2 and u.cells[pos[1]] == 15


def test_steps_between_ranges_are_those_found_by_searching_the_cells():
    """The sliced form for rows that are whole ranges picks the same step, cost and predecessor, ties included."""
    rng = np.random.default_rng(5)
    step_cost = np.array([2.0, 0.0, 0.0, 2.0, 2.0, 2.0])
    for _ in range(300):
        prev_lo, width_prev = int(rng.integers(0, 20)), int(rng.integers(1, 12))
        cur_lo, width = prev_lo + int(rng.integers(-3, 9)), int(rng.integers(1, 12))
        prev_m = rng.integers(0, 4, width_prev).astype(np.float64)  # few values: many ties
        prev_m[rng.random(width_prev) < 0.2] = np.inf
        prev_b = np.arange(prev_lo, prev_lo + width_prev)
        cur_b = np.arange(cur_lo, cur_lo + width)
        searched = step_in_cells(prev_b, prev_m, cur_b, step_cost)
        sliced = step_in_ranges(prev_m, prev_lo, cur_lo, width, step_cost)
        for a, b in zip(searched, sliced, strict=True):
            np.testing.assert_array_equal(a, b)
