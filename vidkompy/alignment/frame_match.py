"""The final frame match: every fg frame against the bg region under it, within a few frames of the path.

Once the geometry is known to a tenth of a pixel, pixels decide what the
embeddings could only approach: NCC of fg against the bg region for the bg
frames within ``FINAL_BAND`` of the path (`match_frames`, streamed in windows
so memory stays flat in length), then a monotonic path on log(1 - NCC)
(`final_match`). Steps between floor(ratio) and ceil(ratio) cost nothing,
others `vidkompy.alignment.monotonic.STEP_PENALTY`: a linear slope penalty swamps
the 1e-3 differences of NCC that separate neighbouring frames in slow footage
(DESIGN.md, "Why locate comes before embed").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from vidkompy.alignment.bins import MATCH_QUANTILE
from vidkompy.alignment.monotonic import STEP_PENALTY, Band, Steps, monotonic_path
from vidkompy.alignment.region import bg_on_grid, comparison_grid, fg_on_grid, normalised
from vidkompy.alignment.source import Video, read_frames
from vidkompy.models import Fit
from vidkompy.parallel import WORKERS, ordered_map
from vidkompy.progress import stage

FINAL_BAND = 5  # frames either side of the path (the embedding path can be a few frames off in slow footage)
CHUNK = 64  # fg frames per window of the final pass (its float32 pictures are the stage's peak memory)
TIMING_PRIOR = 0.6  # log(1 - NCC) units per frame beyond TIMING_FREE frames from a stretch's timing
TIMING_FREE = 0.25  # frames either side of a stretch's timing that cost nothing (timestamps' rounding)
TIMING_MIN_ROWS = 25  # a stretch shorter than this gives no timing


def ncc_cost(ncc: np.ndarray) -> np.ndarray:
    return np.log1p(-np.clip(ncc, -0.999, 0.99995))


def final_band(index: np.ndarray, half: int, n_bg: int, ratio: float) -> Band:
    """``index[i] +- half`` per row; rows near a jump also reach the other side of it.

    The frame path may put a cut a frame or two early or late: the rows around
    it must be free to take either side, or they come out wrong by the jump.
    """
    index = np.asarray(index, np.int64)
    band = Band.contiguous(index - half, 2 * half + 1, n_bg)
    jumps = np.flatnonzero(np.diff(index) > Steps.for_ratio(ratio).max_step) + 1  # a jump between rows k - 1 and k
    if not len(jumps):
        return band
    other = np.full(len(index), -1, np.int64)  # the other side's position, where a row needs it
    for k in jumps:
        before = np.arange(max(0, k - half), k)  # the path after the jump, extrapolated back
        other[before] = np.round(index[k] - (k - before) * ratio).astype(np.int64)
        after = np.arange(k, min(len(index), k + half))  # the path before the jump, carried on
        other[after] = np.round(index[k - 1] + (after - k + 1) * ratio).astype(np.int64)
    extra = Band.contiguous(np.where(other >= 0, other - half, index - half), 2 * half + 1, n_bg)
    return band.union(extra)


def match_frames(bg: Video, fg: Video, fit: Fit, band: Band, *, start: int = 0, chunk: int = CHUNK,
                 label: str = "match frames", workers: int = WORKERS) -> Iterator[tuple[int, np.ndarray]]:
    """NCC of every band cell (fg frame against the bg region under it), streamed in windows of fg rows.

    Yields ``(stop, ncc)`` per window: the NCC of the cells of rows ``[previous stop, stop)``,
    from row ``start`` on (a resumed run starts after the rows it has). Windows are computed
    on ``workers`` threads and yielded in order.
    """
    geometry = fit.geometry
    grid = comparison_grid(fg.size, fg.factor, bg.factor, geometry.scale)

    def window(a: int) -> tuple[int, np.ndarray]:
        b = min(len(band), a + chunk)
        lo, hi = band.offsets[a], band.offsets[b]
        cells = band.cells[lo:hi]
        need = np.unique(cells)
        bg_grid, mask = bg_on_grid(read_frames(bg.frames, need), bg.size, geometry, grid, blur=fit.softness)
        fg_grid = fg_on_grid(np.asarray(fg.frames[a:b]), fg.size, grid)
        prod = normalised(fg_grid, mask) @ normalised(bg_grid, mask).T
        rows = np.repeat(np.arange(b - a), np.diff(band.offsets[a : b + 1]))
        return b, prod[rows, np.searchsorted(need, cells)].astype(np.float32)

    with stage(label, len(band)) as bar:
        bar.advance(start)
        done = start
        for b, ncc in ordered_map(window, range(start, len(band), chunk), workers):
            yield b, ncc
            bar.advance(b - done)
            done = b


@dataclass(frozen=True)
class FrameMatch:
    """The final frame path at pixel level."""

    frames: np.ndarray  # (n_fg,) int64
    matched: np.ndarray  # (n_fg,) bool
    score: np.ndarray  # (n_fg,) float32: NCC of fg against the bg frame under it, clipped to [0, 1]


def timing(path: np.ndarray, matched: np.ndarray, fg_pts: np.ndarray, bg_pts: np.ndarray, max_step: int
           ) -> np.ndarray:
    """Each fg frame's expected bg frame (fractional index) from the timestamps, per straight stretch of ``path``.

    Within a stretch without a jump or an unmatched row, fg's frames sample bg's
    on a straight line in time: bg time = offset + speed x fg time, fitted to
    the path by least squares (twice, the second time without the rows more than
    a frame off the first line). A frame's expected position is where its time
    on that line falls among bg's timestamps. NaN outside the stretches.
    """
    n = len(path)
    expected = np.full(n, np.nan)
    cut = np.flatnonzero((np.diff(path) > max_step) | ~matched[1:] | ~matched[:-1]) + 1
    bg_t = bg_pts[np.clip(path, 0, len(bg_pts) - 1)]
    frame = float(np.median(np.diff(bg_pts))) if len(bg_pts) > 1 else 1.0
    for a, b in zip(np.r_[0, cut], np.r_[cut, n], strict=True):
        rows = np.arange(a, b)[matched[a:b]]
        if len(rows) < TIMING_MIN_ROWS:
            continue
        keep = rows
        for _ in range(2):
            slope, offset = np.polyfit(fg_pts[keep], bg_t[keep], 1)
            near = np.abs(bg_t[rows] - (offset + slope * fg_pts[rows])) <= frame
            if near.sum() < TIMING_MIN_ROWS:
                break
            keep = rows[near]
        expected[rows] = np.interp(offset + slope * fg_pts[rows], bg_pts, np.arange(len(bg_pts)))
    return expected


def final_match(band: Band, ncc: np.ndarray, ratio: float, fg_pts: np.ndarray | None = None,
                bg_pts: np.ndarray | None = None) -> FrameMatch:
    """DTW on log(1 - NCC) with jumps and unmatched rows, their costs set by the pair's typical match.

    With the timestamps, a second pass adds a cost for straying more than a quarter
    of a frame from each stretch's timing (`timing`): in near-static pictures
    neighbouring bg frames score within 1e-4 NCC of each other (measured on real
    footage: 0.9904 against 0.9903), far less than fg's noise, and a path free to
    wander there stalled on one frame for four. Heavy compression does the same
    to moving pictures: at crf 40 the encoder barely updates a fg frame, which then
    scores nearer the previous bg frame (28.3 against 27.7 dB). One frame off the
    timing costs 0.45; real evidence between distinct neighbours weighs 0.7 and
    more. Measured on the benchmark's real and generated cases (0.2 a frame beyond
    half a frame before): bikes-crf-40 93.2 -> 99.5% exact, bbb-letterbox 98.6 ->
    100%, bikes-half 98.4 -> 99.6%; carphone 100 -> 98.9% (one frame whose two
    candidates score 0.9937 and 0.9936 and whose time falls 0.49 frame from each).
    """
    best = band.row_max(ncc)
    typical = float(np.quantile(best, MATCH_QUANTILE)) if len(best) else 1.0  # see Calibration.of
    # unmatched: below half the typical NCC (unrelated pictures score about 0); a jump: two frames of it
    gap = float(ncc_cost(np.array(0.5 * max(typical, 0.0))))
    jump = -2.0 * float(ncc_cost(np.array(max(typical, 0.5))))
    steps = Steps.for_ratio(ratio, penalty=STEP_PENALTY, jump=jump, gap=gap)
    cost = ncc_cost(ncc).astype(np.float32)
    p = monotonic_path(band, cost, steps)
    if fg_pts is not None and bg_pts is not None and len(p.index) > 1:
        expected = timing(p.index, p.matched, fg_pts, bg_pts, steps.max_step)
        off = np.abs(band.cells - np.repeat(expected, np.diff(band.offsets)))
        prior = np.where(np.isfinite(off), TIMING_PRIOR * np.maximum(off - TIMING_FREE, 0.0), 0.0)
        p = monotonic_path(band, (cost + prior).astype(np.float32), steps)
    pos, found = band.find(p.index)
    score = np.where(found, ncc[np.minimum(pos, len(ncc) - 1)], 0.0)
    return FrameMatch(p.index, p.matched, np.clip(score, 0.0, 1.0).astype(np.float32))
