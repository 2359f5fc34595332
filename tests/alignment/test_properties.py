"""Properties over many random inputs (hypothesis): the DTW and the registration."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import ndimage

from vidkompy.alignment.fit import phase_correlate
from vidkompy.alignment.monotonic import Band, NoPathError, Steps, monotonic_path
from vidkompy.errors import AlignmentError
from vidkompy.samples import _texture

TEXTURE = _texture(128, 192, np.random.default_rng(11))[..., 1].astype(np.float32)
# `NoPathError`'s whole message: a person reads it on the CLI's one line
NO_PATH = r"^no frame of fg can be placed in time in bg \(no monotonic path through the candidates\)$"


def path_cost(rows: list[np.ndarray], costs: list[np.ndarray], steps: Steps, index, matched) -> float:
    """What a path costs under the rules: cells, steps between consecutive held positions, gaps."""
    total, prev = 0.0, None
    for i, (b, m) in enumerate(zip(index, matched, strict=True)):
        if m:
            total += float(costs[i][list(rows[i]).index(b)])
            if prev is not None:
                total += float(steps.cost(np.array([b - prev]))[0])
            prev = b
        else:
            total += steps.gap
            assert prev is None or b == prev, "an unmatched row must hold the previous position"
    return total


def brute_force(rows: list[np.ndarray], costs: list[np.ndarray], steps: Steps) -> float:
    """The cheapest path by enumeration, under the same rules."""
    best = np.inf
    options = [[(int(b), True) for b in r] + ([(None, False)] if steps.gap is not None else []) for r in rows]
    for combo in itertools.product(*options):
        index, prev = [], None
        for b, m in combo:
            prev = b if m else prev  # an unmatched row holds the position before it
            index.append(prev)
        best = min(best, path_cost(rows, costs, steps, index, [m for _, m in combo]))
    return best


def random_problem(seed: int, gaps: bool):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 6))
    rows = [np.unique(rng.integers(0, 9, size=int(rng.integers(1, 5)))) for _ in range(n)]
    costs = [rng.random(len(r)) * 3 for r in rows]
    steps = Steps(free=tuple(sorted(int(v) for v in rng.integers(0, 3, size=2))), max_step=int(rng.integers(2, 4)),
                  penalty=float(rng.random() * 2), jump=None if rng.random() < 0.3 else float(rng.random() * 4),
                  gap=float(rng.random() * 2) if gaps else None)
    return rows, costs, steps


@settings(max_examples=150, deadline=None, derandomize=True)
@given(seed=st.integers(0, 100_000))
def test_dtw_without_gaps_is_monotonic_complete_and_optimal(seed):
    """Feasible problems only (about 60 % of those drawn); the others are `test_dtw_without_gaps_refuses_...`.

    Catches: a free step charged the penalty (``<`` for ``<=`` in the free range), and a jump allowed one step
    too short.
    """
    rows, costs, steps = random_problem(seed, gaps=False)
    best = brute_force(rows, costs, steps)
    assume(np.isfinite(best))
    path = monotonic_path(Band.from_rows(rows), np.concatenate(costs), steps)
    assert len(path.index) == len(rows) and path.matched.all()
    assert np.all(np.diff(path.index) >= 0)
    assert np.isclose(path_cost(rows, costs, steps, path.index, path.matched), path.total)
    assert np.isclose(path.total, best)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(seed=st.integers(0, 100_000))
def test_dtw_without_gaps_refuses_a_problem_no_monotonic_path_solves(seed):
    """Infeasible problems only (about 40 % of those drawn): brute force finds no path, and neither may the DP.

    What it does then: it raises `NoPathError`, an `AlignmentError` (the CLI's exit code 4), with a message a
    person can read, rather than returning a path that breaks the step rules. Catches: the check for a
    finite end dropped (a path of infinite cost returned as if it were one).
    """
    rows, costs, steps = random_problem(seed, gaps=False)
    assume(not np.isfinite(brute_force(rows, costs, steps)))
    with pytest.raises(NoPathError, match=NO_PATH):
        monotonic_path(Band.from_rows(rows), np.concatenate(costs), steps)


INFEASIBLE = {
    # rows of allowed bg indices, their costs, the steps; then with unmatched rows at 0.7 each the one cheapest
    # path (0.7): index, matched
    "a step longer than max_step, no jumps": ([[0], [5]], [[0.1], [0.0]], Steps(max_step=2), [5, 5], [False, True]),
    "a step backwards": ([[5], [3]], [[0.1], [0.0]], Steps(), [3, 3], [False, True]),
    "a row with no cell": ([[0], [], [1]], [[0.0], [], [0.0]], Steps(), [0, 0, 1], [True, False, True]),
    # row 0's best cell unambiguous: the held state is one per row, taken from the previous row's best cell
    "a row whose every cell is forbidden": ([[0, 1], [1, 2], [2]], [[0.1, 0.0], [np.inf, np.inf], [0.0]], Steps(),
                                            [1, 1, 2], [True, False, True]),
}


@pytest.mark.parametrize("case", INFEASIBLE)
def test_an_infeasible_band_raises_no_path_error_and_unmatched_rows_make_it_feasible(case):
    """No monotonic path: `NoPathError` (an `AlignmentError`). Allowing unmatched rows, the same band has the
    cheapest path that skips the offending rows: one gap (0.7), the other rows on cells of cost 0. Catches: the same as
    `test_dtw_without_gaps_refuses_...`, and an unmatched row that does not hold the position before it."""
    rows, costs, steps, index, matched = INFEASIBLE[case]
    band = Band.from_rows([np.array(r, np.int64) for r in rows])
    cost = np.concatenate([np.array(c, np.float64) for c in costs])
    with pytest.raises(NoPathError, match=NO_PATH) as raised:
        monotonic_path(band, cost, steps)
    assert isinstance(raised.value, AlignmentError) and raised.value.exit_code == 4
    gaps = Steps(steps.free, steps.penalty, steps.max_step, steps.jump, gap=0.7)
    path = monotonic_path(band, cost, gaps)
    assert list(path.index) == index and list(path.matched) == matched
    assert path.total == pytest.approx(0.7)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(seed=st.integers(0, 100_000))
def test_dtw_with_gaps_gives_a_valid_path_no_worse_than_matching_every_row(seed):
    """Unmatched rows hold one position per row (documented): valid and consistent, near-optimal."""
    rows, costs, with_gaps = random_problem(seed, gaps=True)
    path = monotonic_path(Band.from_rows(rows), np.concatenate(costs), with_gaps)
    assert np.all(np.diff(path.index) >= 0)
    assert np.isclose(path_cost(rows, costs, with_gaps, path.index, path.matched), path.total)
    all_rows = Steps(with_gaps.free, with_gaps.penalty, with_gaps.max_step, with_gaps.jump, None)
    assert path.total <= brute_force(rows, costs, all_rows) + 1e-9
    assert path.total >= brute_force(rows, costs, with_gaps) - 1e-9


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
