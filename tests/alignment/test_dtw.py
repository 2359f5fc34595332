"""Monotonic alignment against known paths: rate changes, bands, recuts and unmatched stretches."""

from __future__ import annotations

import numpy as np
import pytest

from vidkompy.alignment.dtw import coarse_path
from vidkompy.alignment.monotonic import Band, Steps, free_steps, monotonic_path, step_in_cells, step_in_ranges
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


# -- the band and the path, field by field, against hand-worked or naive truth ---------------------------------


@pytest.mark.parametrize(("ratio", "free"), [
    (1.0, (1, 1)), (1 - 1e-7, (1, 1)), (1 + 1e-7, (1, 1)), (2.0000001, (2, 2)),  # a rate within 1e-6 is exact
    (25 / 30, (0, 1)), (1.2, (1, 2)), (2.5, (2, 3)), (0.4, (0, 1))])
def test_free_steps_are_the_floor_and_ceiling_of_the_rate(ratio, free):
    """Catches: the tolerance for a rate read from timestamps applied the wrong way (1 - 1e-7 giving (0, 1))."""
    assert free_steps(ratio) == free


def test_steps_for_a_rate_allow_three_penalised_steps_beyond_the_free_ones():
    assert Steps.for_ratio(1.2) == Steps(free=(1, 2), max_step=5)
    assert Steps.for_ratio(1.2, max_step=9, gap=0.5) == Steps(free=(1, 2), max_step=9, gap=0.5)


def test_a_contiguous_band_is_clipped_to_bg_and_never_empty():
    band = Band.contiguous(np.array([-2, 3, 9, 12, -10]), 4, 10)
    assert [list(band.row(i)) for i in range(5)] == [[0, 1], [3, 4, 5, 6], [9], [9], [0]]
    assert band.cells.dtype == np.int32 and band.offsets.dtype == np.int64
    widths = Band.contiguous(np.array([0, 2]), np.array([1, 3]), 10)
    assert [list(widths.row(i)) for i in range(2)] == [[0], [2, 3, 4]]


def test_ranges_with_nothing_in_them_are_empty_rows():
    band = Band.from_ranges(np.array([0, 5, 7]), np.array([3, 4, 9]))
    assert [list(band.row(i)) for i in range(3)] == [[0, 1, 2], [], [7, 8]]
    assert list(band.offsets) == [0, 3, 3, 5]
    assert list(band.row_index) == [0, 0, 0, 2, 2]


def naive_rows(rng: np.random.Generator, n: int) -> list[np.ndarray]:
    return [np.unique(rng.integers(0, 20, int(rng.integers(0, 6)))) for _ in range(n)]


def test_find_agrees_with_a_search_row_by_row():
    """Catches: keys of two rows colliding (a span too small), and a position past the end taken as found."""
    rng = np.random.default_rng(6)
    for _ in range(200):
        rows = naive_rows(rng, int(rng.integers(1, 6)))
        band = Band.from_rows(rows)
        index = rng.integers(0, 25, len(rows))
        pos, found = band.find(index)
        assert list(found) == [int(t) in set(r.tolist()) for t, r in zip(index, rows, strict=True)]
        for i in np.flatnonzero(found):
            assert band.cells[pos[i]] == index[i] and band.row_index[pos[i]] == i


def test_find_in_a_band_without_cells_finds_nothing():
    pos, found = Band.from_rows([np.zeros(0, int), np.zeros(0, int)]).find(np.array([0, 3]))
    assert found.dtype == bool and list(found) == [False, False]


def test_a_window_gathers_each_cell_from_a_rows_by_frames_product():
    """The window's frames are the bg frames its cells need; gather reads cell (row, frame) from the product."""
    rng = np.random.default_rng(7)
    rows = [np.array([3, 4, 5]), np.array([4, 9]), np.array([0]), np.array([5, 6, 7, 8])]
    band = Band.from_rows(rows)
    w = band.window(1, 2)  # rows 1 and 2
    assert (w.start, w.stop, w.lo, w.hi) == (1, 3, 3, 6)
    assert list(w.frames) == [0, 4, 9]
    product = rng.random((2, 3))
    np.testing.assert_array_equal(w.gather(product), [product[0, 1], product[0, 2], product[1, 0]])
    last = band.window(3, 5)  # past the end: the rows there are
    assert (last.start, last.stop, last.lo, last.hi) == (3, 4, 6, 10) and list(last.frames) == [5, 6, 7, 8]
    np.testing.assert_array_equal(last.gather(np.arange(4.0)[None, :]), [0.0, 1.0, 2.0, 3.0])


def test_row_max_is_the_largest_value_of_each_row():
    band = Band.from_rows([np.array([0, 1, 2]), np.array([7]), np.array([1, 5])])
    np.testing.assert_array_equal(band.row_max(np.array([0.2, 0.9, 0.1, -3.0, 0.5, 0.7])), [0.9, -3.0, 0.7])
    assert len(Band.from_rows([]).row_max(np.zeros(0))) == 0


def test_the_path_reports_each_rows_cell_cost_and_position():
    """``cost`` is the cell's cost where matched, the gap's where not; ``cell`` is -1 where unmatched. Catches:
    either field dropped, cast or filled with another marker."""
    cost = np.full((6, 8), 0.5)
    cost[[0, 1, 4, 5], [0, 1, 2, 3]] = [-1.0, -0.8, -0.9, -0.7]
    band, flat = dense(cost)
    path = monotonic_path(band, flat, Steps.for_ratio(1.0, jump=3.0, gap=-0.25))
    assert list(path.matched) == [True, True, False, False, True, True]
    assert list(path.index) == [0, 1, 1, 1, 2, 3]
    assert path.cost.dtype == np.float32 and path.cell.dtype == np.int64 and path.index.dtype == np.int64
    np.testing.assert_array_equal(path.cost, np.array([-1.0, -0.8, -0.25, -0.25, -0.9, -0.7], np.float32))
    assert list(path.cell) == [0, 9, -1, -1, 34, 43]  # row i, column j: cell 8 i + j of the dense band
    assert path.total == pytest.approx(-1.0 - 0.8 - 0.25 - 0.25 - 0.9 - 0.7)


def test_an_empty_band_has_an_empty_path():
    path = monotonic_path(Band.from_rows([]), np.zeros(0))
    assert path.total == 0.0
    for field, dtype in [(path.index, np.int64), (path.matched, bool), (path.cost, np.float32), (path.cell, np.int64)]:
        assert field.shape == (0,) and field.dtype == dtype


def test_a_last_row_with_no_cell_is_unmatched_when_gaps_are_allowed():
    path = monotonic_path(Band.from_rows([np.array([2]), np.zeros(0, int)]), np.array([0.0]), Steps(gap=0.4))
    assert list(path.index) == [2, 2] and list(path.matched) == [True, False]
    assert path.total == pytest.approx(0.4)


def test_rows_wider_than_int16_keep_their_predecessors():
    """Back-pointers are int16 only while rows are narrower than 2**15 cells. Catches: int16 for wider rows
    (the predecessor's position wraps round and the path jumps)."""
    width = 40_000
    cost = np.ones((3, width), np.float32)
    cost[[0, 1, 2], [35_000, 35_001, 35_002]] = 0.0
    band = Band.contiguous(np.zeros(3, np.int64), width, width)
    path = monotonic_path(band, cost.ravel(), Steps.for_ratio(1.0))
    assert list(path.index) == [35_000, 35_001, 35_002]
