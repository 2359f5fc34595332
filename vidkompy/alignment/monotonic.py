"""Monotonic alignment over sparse rows: one bg index per fg row, never going back.

Every stage of the temporal match is one call of `monotonic_path`: the coarse
path over the k nearest bg bins of each fg bin, the frame path inside a band
around it, and the final pixel match within +-3 frames. Memory is
O(cells), the candidates actually scored, never n_fg x n_bg.

The step model:

- steps between floor(ratio) and ceil(ratio) (ratio = bg rows per fg row) are
  free, other small steps (up to ``max_step``) pay ``penalty``. A slope penalty
  that grows with the step competes with the match cost: in slow footage
  neighbouring bg frames differ by 1e-3 in NCC, and a linear penalty of 0.1 put
  a 30 -> 25 fps path a frame early in our measurements.
- a longer step forward is a *jump* (bg material that fg leaves out, a recut)
  and costs ``jump`` once, whatever its length, instead of ramping across the
  gap at the largest allowed step.
- a row may be *unmatched* (fg material with no counterpart in bg, such as an
  inserted shot or a title card) at cost ``gap``; the path then holds the bg
  index it had, so the map stays monotonic through it.

This is dynamic time warping (Sakoe & Chiba 1978) with a band given per row,
as in FastDTW's coarse-to-fine projection (Salvador & Chan 2007), plus
Smith-Waterman-like skips for the two kinds of recut.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from vidkompy.errors import AlignmentError

STEP_PENALTY = 2.0
CELL = np.int32  # a bg frame index: bands hold millions of them for feature-length videos


class NoPathError(AlignmentError):
    """No monotonic path through the allowed cells: fg and bg share no stretch of time the path could follow."""


def free_steps(ratio: float) -> tuple[int, int]:
    lo = math.floor(ratio + 1e-6)
    hi = math.ceil(ratio - 1e-6)
    return lo, max(lo, hi)


@dataclass(frozen=True)
class Band:
    """The bg indices each fg row may take: ``cells[offsets[i]:offsets[i+1]]``, sorted, unique."""

    offsets: np.ndarray  # (n + 1,) int64
    cells: np.ndarray  # (offsets[-1],) int64

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def row(self, i: int) -> np.ndarray:
        return self.cells[self.offsets[i] : self.offsets[i + 1]]

    @property
    def row_index(self) -> np.ndarray:
        """The row of every cell."""
        return np.repeat(np.arange(len(self)), np.diff(self.offsets))

    @classmethod
    def contiguous(cls, lo: np.ndarray, width: int | np.ndarray, n_bg: int) -> Band:
        """Rows ``lo[i] .. lo[i] + width - 1``, clipped to ``[0, n_bg)`` (never empty)."""
        lo = np.asarray(lo, dtype=np.int64)
        width = np.broadcast_to(np.asarray(width, dtype=np.int64), lo.shape)
        start = np.clip(lo, 0, n_bg - 1)
        stop = np.clip(lo + width, start + 1, n_bg)
        return cls.from_ranges(start, stop)

    @classmethod
    def from_ranges(cls, start: np.ndarray, stop: np.ndarray) -> Band:
        """Row i holds ``start[i] .. stop[i] - 1``."""
        start = np.asarray(start, dtype=np.int64)
        sizes = np.maximum(np.asarray(stop, dtype=np.int64) - start, 0)
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        cells = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1] - start, sizes)
        return cls(offsets, cells.astype(CELL))

    def _keys(self, span: int) -> np.ndarray:
        return self.row_index * span + self.cells

    def find(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each row's cell holding ``index[i]``: (position in ``cells``, whether the row has it)."""
        index = np.asarray(index, np.int64)
        span = int(max(self.cells.max(initial=0), index.max(initial=0))) + 2
        keys = self._keys(span)
        target = np.arange(len(self)) * span + index
        pos = np.searchsorted(keys, target)
        found = (pos < len(keys)) & (keys[np.minimum(pos, max(len(keys) - 1, 0))] == target) if len(keys) else \
            np.zeros(len(self), bool)
        return pos, found

    def union(self, other: Band) -> Band:
        """Row by row, the cells of either band."""
        span = int(max(self.cells.max(initial=0), other.cells.max(initial=0))) + 2
        keys = np.unique(np.concatenate([self._keys(span), other._keys(span)]))
        rows, cells = keys // span, keys % span
        offsets = np.searchsorted(rows, np.arange(len(self) + 1))
        return Band(offsets.astype(np.int64), cells.astype(CELL))

    @classmethod
    def from_rows(cls, rows: list[np.ndarray]) -> Band:
        rows = [np.unique(np.asarray(r, dtype=np.int64)) for r in rows]
        offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
        cells = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        return cls(offsets, cells.astype(CELL))

    def window(self, start: int, size: int) -> BandWindow:
        """Rows ``[start, start + size)``: the bg frames their cells need, and where each cell's value sits in a
        (rows x those frames) product. The embedding path and the pixel match both compute a window's values as
        one product, then keep only the band's cells."""
        stop = min(len(self), start + size)
        lo, hi = int(self.offsets[start]), int(self.offsets[stop])
        cells = self.cells[lo:hi]
        frames = np.unique(cells)
        rows = np.repeat(np.arange(stop - start), np.diff(self.offsets[start : stop + 1]))
        return BandWindow(start, stop, lo, hi, frames, rows, np.searchsorted(frames, cells))

    def row_max(self, values: np.ndarray) -> np.ndarray:
        """The largest of ``values`` (one per cell) in each row (rows are never empty)."""
        return np.maximum.reduceat(values, self.offsets[:-1]) if len(self) else np.zeros(0, values.dtype)


@dataclass(frozen=True)
class BandWindow:
    """Rows ``[start, stop)`` of a band, whose cells are ``cells[lo:hi]`` and reach bg ``frames`` (sorted)."""

    start: int
    stop: int
    lo: int
    hi: int
    frames: np.ndarray
    rows: np.ndarray  # each cell's row, from 0
    cols: np.ndarray  # each cell's column in ``frames``

    def gather(self, product: np.ndarray) -> np.ndarray:
        """The cells' values out of a (stop - start, len(frames)) product."""
        return product[self.rows, self.cols]


@dataclass(frozen=True)
class Steps:
    """What moving from one row to the next costs (see the module docstring)."""

    free: tuple[int, int] = (1, 1)  # steps that cost nothing
    penalty: float = STEP_PENALTY  # other steps up to max_step
    max_step: int = 4  # longest non-jump step
    jump: float | None = None  # any longer step forward; None: not allowed
    gap: float | None = None  # an unmatched row; None: every row is matched

    @classmethod
    def for_ratio(cls, ratio: float, **kw: object) -> Steps:
        """Free steps floor(ratio) .. ceil(ratio), and by default up to 3 more penalised."""
        free = free_steps(ratio)
        kw.setdefault("max_step", free[1] + 3)
        return cls(free=free, **kw)

    def cost(self, step: np.ndarray) -> np.ndarray:
        lo, hi = self.free
        out = np.where((step >= lo) & (step <= hi), 0.0, self.penalty)
        out = np.where(step > self.max_step, np.inf if self.jump is None else self.jump, out)
        return np.where(step < 0, np.inf, out)


@dataclass(frozen=True)
class Path:
    """The answer: a bg index per row, whether the row matched, and the cell cost it paid."""

    index: np.ndarray  # (n,) int64
    matched: np.ndarray  # (n,) bool
    cost: np.ndarray  # (n,) float32: the row's cell cost where matched, the gap cost where not
    total: float
    cell: np.ndarray  # (n,) int64: position of the row's cell in the band's ``cells``, -1 where unmatched


_START = -3  # back-pointer code: the path starts in this cell
_FROM_HELD = -2  # came from the previous row's unmatched state
_JUMP = -1


def step_in_cells(prev_b: np.ndarray, prev_m: np.ndarray, cur_b: np.ndarray, step_cost: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each cell's cheapest step (0 .. len(step_cost) - 1) from the previous row's cells, by searching them.

    Returns the cost so far, the step taken (``_START`` where no step reaches the
    cell) and the predecessor's position in its row. Ties go to the shorter step.
    """
    best = np.full(len(cur_b), np.inf)
    best_code = np.full(len(cur_b), _START, dtype=np.int8)
    best_src = np.zeros(len(cur_b), dtype=np.int32)
    if not len(prev_b):
        return best, best_code, best_src
    for s, penalty in enumerate(step_cost):
        pos = np.searchsorted(prev_b, cur_b - s)
        pos_ok = np.minimum(pos, len(prev_b) - 1)
        ok = (pos < len(prev_b)) & (prev_b[pos_ok] == cur_b - s)
        cand = np.where(ok, prev_m[pos_ok], np.inf) + penalty
        better = cand < best
        best[better], best_code[better], best_src[better] = cand[better], s, pos_ok[better]
    return best, best_code, best_src


def step_in_ranges(prev_m: np.ndarray, prev_lo: int, cur_lo: int, width: int, step_cost: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`step_in_cells` for rows that are whole ranges (``prev_lo ..`` and ``cur_lo .. cur_lo + width - 1``).

    The predecessor of cell c by step s is c - s, at a known place in the
    previous row: every step is one slice of a table, and the choice one argmin
    over them (the first minimum: the shorter step, as `step_in_cells` picks).
    Half the time of the searching form in the final match, where rows are ranges.
    """
    where = (cur_lo - prev_lo) + np.arange(width)[None, :] - np.arange(len(step_cost))[:, None]
    inside = (where >= 0) & (where < len(prev_m))
    where = np.clip(where, 0, len(prev_m) - 1)
    cand = np.where(inside, prev_m[where], np.inf) + step_cost[:, None]
    s = np.argmin(cand, axis=0)
    cols = np.arange(width)
    best = cand[s, cols]
    reached = np.isfinite(best)
    return (best, np.where(reached, s, _START).astype(np.int8),
            np.where(reached, where[s, cols], 0).astype(np.int32))


def monotonic_path(band: Band, cost: np.ndarray, steps: Steps = Steps()) -> Path:
    """The cheapest monotonic path through ``band`` whose cells cost ``cost``.

    Parameters
    ----------
    band : Band
        The bg indices each row may take.
    cost : (band.offsets[-1],) float array
        Cost of each cell (``inf``: not allowed).
    steps : Steps
        Free and penalised steps, jumps and unmatched rows.

    Returns
    -------
    Path

    Notes
    -----
    An unmatched row holds the position of the best state of the previous row
    (one "held" state per row rather than one per cell: exact when gaps are
    rare or the held position is unambiguous, and O(cells) either way).
    The back-pointers take 5 bytes a cell.
    """
    cost = np.asarray(cost)
    n = len(band)
    if n == 0:
        return Path(np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, np.float32), 0.0, np.zeros(0, np.int64))
    lo_free, hi_free = steps.free
    longest = steps.max_step
    gap = np.inf if steps.gap is None else float(steps.gap)
    jump = np.inf if steps.jump is None else float(steps.jump)
    offsets, cells = band.offsets, band.cells
    code = np.empty(len(cells), dtype=np.int8)  # step taken into the cell, or a code above
    widest = int(np.diff(offsets).max())
    # predecessor's index inside its row (steps, jumps): 3 bytes a cell in all with the code, for narrow rows
    src = np.zeros(len(cells), dtype=np.int16 if widest < 2**15 else np.int32)
    held_src = np.empty(n, dtype=np.int32)  # unmatched state: -1 from the previous held state, else a cell
    held_pos = np.empty(n, dtype=np.int64)  # the index an unmatched row holds (-1: not yet known)

    sizes = np.diff(offsets)
    # rows holding a whole range of bg indices (most): their steps are found by slicing, not searching
    solid = (sizes > 0) & (cells[np.maximum(offsets[1:] - 1, 0)].astype(np.int64)
                           - cells[np.minimum(offsets[:-1], max(len(cells) - 1, 0))] == sizes - 1)
    step_cost = np.array([0.0 if lo_free <= s <= hi_free else steps.penalty for s in range(longest + 1)])
    prev_b = cells[offsets[0] : offsets[1]].astype(np.int64)
    prev_m = cost[offsets[0] : offsets[1]].astype(np.float64)
    code[offsets[0] : offsets[1]] = _START
    held, held_pos[0], held_src[0] = gap, -1, -1
    for i in range(1, n):
        a, b = offsets[i], offsets[i + 1]
        cur_b = cells[a:b].astype(np.int64)
        if solid[i] and solid[i - 1]:  # a solid row is never empty
            best, best_code, best_src = step_in_ranges(prev_m, int(prev_b[0]), int(cur_b[0]), len(cur_b), step_cost)
        else:
            best, best_code, best_src = step_in_cells(prev_b, prev_m, cur_b, step_cost)
        if len(prev_b) and np.isfinite(jump):
            run_min = np.minimum.accumulate(prev_m)
            run_arg = np.maximum.accumulate(np.where(prev_m == run_min, np.arange(len(prev_m)), 0))
            last = np.searchsorted(prev_b, cur_b - longest, side="left") - 1  # prev_b < cur_b - longest
            ok = last >= 0
            last_ok = np.maximum(last, 0)
            cand = np.where(ok, run_min[last_ok] + jump, np.inf)
            better = cand < best
            best[better], best_code[better] = cand[better], _JUMP
            best_src[better] = run_arg[last_ok][better]
        if np.isfinite(held):
            hp = held_pos[i - 1]
            cand = held + (steps.cost(cur_b - hp) if hp >= 0 else np.zeros(len(cur_b)))
            better = cand < best
            best[better], best_code[better] = cand[better], _FROM_HELD
        code[a:b], src[a:b] = best_code, best_src
        # the unmatched state of row i: from the held state or from the best matched cell of row i-1
        k = int(np.argmin(prev_m)) if len(prev_m) else -1
        if k >= 0 and prev_m[k] <= held:
            new_held, held_src[i], held_pos[i] = prev_m[k] + gap, k, prev_b[k]
        else:
            new_held, held_src[i], held_pos[i] = held + gap, -1, held_pos[i - 1]
        prev_b, prev_m, held = cur_b, best + cost[a:b].astype(np.float64), new_held
    finite = np.isfinite(prev_m)
    if not finite.any() and not np.isfinite(held):
        raise NoPathError("no frame of fg can be placed in time in bg (no monotonic path through the candidates)")

    index = np.empty(n, np.int64)
    matched = np.empty(n, bool)
    cell_at = np.full(n, -1, np.int64)
    k = int(np.argmin(prev_m)) if len(prev_m) else -1
    in_held = k < 0 or held < prev_m[k]
    total = float(held if in_held else prev_m[k])
    for i in range(n - 1, -1, -1):
        if in_held:
            matched[i], index[i] = False, held_pos[i]
            if held_src[i] >= 0:
                k, in_held = int(held_src[i]), False
            continue
        at = int(offsets[i]) + k
        matched[i], index[i], cell_at[i] = True, cells[at], at
        c = int(code[at])
        if c == _FROM_HELD:
            in_held = True
        elif c != _START:
            k = int(src[at])
    # rows held before the first match take the first matched index: the path starts there
    unknown = index < 0
    if unknown.any():
        index[unknown] = index[~unknown][0] if (~unknown).any() else int(cells[0])
    row_cost = np.where(matched, cost[np.maximum(cell_at, 0)].astype(np.float64), gap)
    return Path(index, matched, row_cost.astype(np.float32), total, cell_at)
