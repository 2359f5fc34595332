"""Monotonic alignment: one bg frame per fg frame, bg index never decreasing.

Steps between floor(ratio) and ceil(ratio) (ratio = bg fps / fg fps) are free,
every other step pays one fixed penalty. A slope penalty that grows with the
step competes with the match cost: in slow footage neighbouring bg frames
differ by 1e-3 in NCC, and a linear penalty of 0.1 put a 30 -> 25 fps path a
frame early in our measurements.
"""

from __future__ import annotations

import math

import numpy as np

STEP_PENALTY = 2.0


def free_steps(ratio: float) -> tuple[int, int]:
    lo = math.floor(ratio + 1e-6)
    hi = math.ceil(ratio - 1e-6)
    return lo, max(lo, hi)


def monotonic_alignment(
    cost: np.ndarray,
    lo: np.ndarray | None = None,
    *,
    ratio: float = 1.0,
    n_bg: int | None = None,
    penalty: float = STEP_PENALTY,
    max_step: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cheapest monotonic path through a banded cost matrix.

    Parameters
    ----------
    cost : (n_fg, K) float array
        ``cost[i, k]`` is the cost of showing bg frame ``lo[i] + k`` under fg frame i;
        ``inf`` where not allowed.
    lo : (n_fg,) int array, optional
        First bg frame of each row's band (all zeros: a dense matrix).
    ratio : float
        bg fps / fg fps, the expected bg step per fg frame.
    n_bg : int, optional
        Number of bg frames; band cells past it are not allowed.

    Returns
    -------
    path : (n_fg,) int64, bg frame per fg frame
    step_cost : (n_fg,) float32, the match cost along the path
    """
    cost = np.asarray(cost, dtype=np.float64)
    n, k_width = cost.shape
    lo = np.zeros(n, dtype=np.int64) if lo is None else np.asarray(lo, dtype=np.int64)
    free_lo, free_hi = free_steps(ratio)
    max_step = max_step if max_step is not None else free_hi + 3
    cols = np.arange(k_width)
    cost = cost.copy()
    if n_bg is not None:
        cost[(lo[:, None] + cols[None, :]) >= n_bg] = np.inf
    cost[(lo[:, None] + cols[None, :]) < 0] = np.inf

    total = cost[0].copy()
    back = np.zeros((n, k_width), dtype=np.int16)  # chosen step per cell
    for i in range(1, n):
        best = np.full(k_width, np.inf)
        best_step = np.zeros(k_width, dtype=np.int16)
        shift = lo[i] - lo[i - 1]
        for step in range(max_step + 1):
            prev_k = cols + shift - step
            ok = (prev_k >= 0) & (prev_k < k_width)
            cand = np.full(k_width, np.inf)
            cand[ok] = total[prev_k[ok]]
            if not free_lo <= step <= free_hi:
                cand += penalty
            better = cand < best
            best[better] = cand[better]
            best_step[better] = step
        total = best + cost[i]
        back[i] = best_step
    if not np.isfinite(total).any():
        raise ValueError("no monotonic path through the allowed cells")
    k = int(np.argmin(total))
    path = np.empty(n, dtype=np.int64)
    path[-1] = lo[-1] + k
    for i in range(n - 1, 0, -1):
        path[i - 1] = path[i] - back[i, path[i] - lo[i]]
    step_cost = cost[np.arange(n), path - lo].astype(np.float32)
    return path, step_cost


def knn_alignment(knn_idx: np.ndarray, knn_sim: np.ndarray, n_bg: int, *, ratio: float = 1.0) -> np.ndarray:
    """A first monotonic path from the k nearest bg frames of each fg frame.

    Candidates cost log(1 - similarity); every other cell costs one more than the
    row's worst candidate, so the path leaves the candidates only to stay monotonic.
    """
    n = len(knn_idx)
    sim = np.clip(knn_sim.astype(np.float64), -1.0, 1.0)
    cand_cost = np.log1p(-sim + 1e-4)
    cost = np.repeat(cand_cost.max(axis=1, keepdims=True) + 1.0, n_bg, axis=1)
    rows = np.repeat(np.arange(n), knn_idx.shape[1])
    cost[rows, knn_idx.ravel()] = cand_cost.ravel()
    path, _ = monotonic_alignment(cost, ratio=ratio, n_bg=n_bg)
    return path
