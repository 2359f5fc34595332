"""From a located region and a frame path to sub-pixel geometry and exact frames.

Phase correlation on a few matched pairs gives the sub-pixel start; then the
joint fit (x, y, scale) and the frame match (NCC of fg against the bg region
within +-3 frames of the path, then DTW on log(1 - NCC)) alternate until the
geometry stops moving. They alternate on a dozen short windows spread in
time, each matched as a whole (pairs chosen frame by frame made the
alternation oscillate in our measurements; a window's own path keeps it
converging), so a round costs the same for a minute as for three hours. One
streamed pass over both videos then matches every frame at the final geometry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from vidkompy.dtw import Band, Steps, monotonic_path
from vidkompy.models import Alignment, Geometry
from vidkompy.parallel import WORKERS, ordered_map
from vidkompy.progress import stage
from vidkompy.region import (
    RegionGrid,
    bg_on_grid,
    comparison_grid,
    fg_on_grid,
    normalised,
)
from vidkompy.source import FrameSource, read_frames
from vidkompy.spatial import FitPair, fit_geometry, phase_correlate
from vidkompy.timeline import MATCH_QUANTILE

BAND = 3  # frames either side of the path that a window's pixel match considers
FINAL_BAND = 5  # and the final pass (the embedding path can be a few frames off in slow footage)
PAIR_BAND = 2  # a fit pair takes the best bg frame within this many frames of the path
N_PAIRS = 12
WINDOW = 8  # fg frames either side of a fit pair's frame, matched together
N_FULL_PAIRS = 6  # full-size pictures carry enough pixels; each one read costs a seek and a GOP of decoding
MAX_ROUNDS = 5
CONVERGED_PX = 0.01
SNAP_TO_UNSCALED = 0.003  # a fitted scale this close to 1 is a plain crop
CHUNK = 64  # fg frames per window of the final pass (its float32 pictures are the stage's peak memory)
STEP_PENALTY = 2.0  # in log(1 - NCC) units; see vidkompy.dtw
SOFTNESS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)  # bg blurs tried (sigma, grid pixels)
SOFTNESS_GAIN = 0.002  # a blur must raise the median NCC by this much to be taken
TIMING_PRIOR = 0.6  # log(1 - NCC) units per frame beyond TIMING_FREE frames from a stretch's timing
TIMING_FREE = 0.25  # frames either side of a stretch's timing that cost nothing (timestamps' rounding)
TIMING_MIN_ROWS = 25  # a stretch shorter than this gives no timing

# Reads full-size gray frames: (bg indices, fg indices) -> ({i: frame}, {j: frame})
FullFrameReader = Callable[[Sequence[int], Sequence[int]], tuple[dict[int, np.ndarray], dict[int, np.ndarray]]]


@dataclass(frozen=True)
class Video:
    """A gray working copy and what it stands for."""

    frames: FrameSource  # (N, h, w) uint8
    pts: np.ndarray  # (N,) seconds
    size: tuple[int, int]  # full (width, height)

    @property
    def factor(self) -> tuple[float, float]:
        """Full pixels per working pixel, (x, y)."""
        h, w = self.frames.shape[1:]
        return self.size[0] / w, self.size[1] / h

    def __len__(self) -> int:
        return len(self.frames)


@dataclass(frozen=True)
class Fit:
    """What the fit found: the geometry, and how much softer fg is than bg."""

    geometry: Geometry
    softness: float = 0.0  # sigma (grid pixels) of the blur that makes bg look like fg; 0 for a fg as sharp


def ncc_cost(ncc: np.ndarray) -> np.ndarray:
    return np.log1p(-np.clip(ncc, -0.999, 0.99995))


@dataclass
class _Window:
    """fg frames ``rows`` on the grid and the (blurred) bg frames their band can reach."""

    rows: slice
    centre: int
    fg_grid: np.ndarray
    bg_first: int
    bg_frames: np.ndarray
    path: np.ndarray  # the window's own frame path, updated each round


def _windows(fg: Video, bg: Video, index: np.ndarray, matched: np.ndarray, grid: RegionGrid, n: int
             ) -> list[_Window]:
    """~n windows spread over the matched frames, each inside one matched run."""
    n_fg = len(index)
    half = min(WINDOW, max(0, (n_fg - 1) // 2))
    ok = np.asarray(matched, bool).copy()
    steps = np.diff(index)
    ok[1:] &= steps <= 4  # a window must not straddle a cut
    eligible = [c for c in range(half, n_fg - half) if ok[c - half : c + half + 1].all()]
    if not eligible:
        eligible = [int(i) for i in np.flatnonzero(matched)] or list(range(n_fg))
    centres = sorted({eligible[int(round(q))] for q in np.linspace(0, len(eligible) - 1, min(n, len(eligible)))})
    out = []
    for c in centres:
        a, b = max(0, c - half), min(n_fg, c + half + 1)
        lo = max(0, int(index[a:b].min()) - BAND - PAIR_BAND)
        hi = min(len(bg), int(index[a:b].max()) + BAND + PAIR_BAND + 1)
        fg_grid = fg_on_grid(np.asarray(fg.frames[a:b]), fg.size, grid)
        out.append(_Window(slice(a, b), c, fg_grid, lo, np.asarray(bg.frames[lo:hi]).astype(np.float32),
                           np.asarray(index[a:b]).copy()))
    return out


def _window_band(w: _Window, width: int) -> Band:
    last = w.bg_first + len(w.bg_frames)
    start = np.clip(w.path - width, w.bg_first, last - 1)
    stop = np.clip(w.path + width + 1, start + 1, last)
    return Band.from_ranges(start, stop)


def _match_window(w: _Window, bg: Video, geometry: Geometry, grid: RegionGrid, ratio: float, softness: float = 0.0
                  ) -> tuple[int, int, float]:
    """Re-match the window at ``geometry``; return its fit pair (centre fg frame, best bg frame) and their NCC."""
    bg_grid, mask = bg_on_grid(w.bg_frames, bg.size, geometry, grid, blur=softness)
    fgv, bgv = normalised(w.fg_grid, mask), normalised(bg_grid, mask)
    band = _window_band(w, BAND)
    ncc = (fgv @ bgv.T)[band.row_index, band.cells - w.bg_first]
    p = monotonic_path(band, ncc_cost(ncc), Steps.for_ratio(ratio, penalty=STEP_PENALTY))
    w.path = p.index
    k = w.centre - w.rows.start
    row = band.row(k)
    near = np.abs(row - p.index[k]) <= PAIR_BAND
    cand = ncc[band.offsets[k] : band.offsets[k + 1]]
    best = int(np.argmax(cand[near]))
    return w.centre, int(row[near][best]), float(cand[near][best])


def _phase_start(windows: list[_Window], bg: Video, geometry: Geometry, grid: RegionGrid,
                 xp: ModuleType) -> Geometry:
    """Sub-pixel translation from phase correlation on the windows' centre pairs (their median)."""
    shifts = []
    for w in windows:
        k = w.centre - w.rows.start
        j = int(w.path[k]) - w.bg_first
        bg_grid, _ = bg_on_grid(w.bg_frames[j : j + 1], bg.size, geometry, grid)
        shifts.append(phase_correlate(w.fg_grid[k], bg_grid[0], xp=xp))
    dy = float(np.median([s[0] for s in shifts]))
    dx = float(np.median([s[1] for s in shifts]))
    if max(abs(dx), abs(dy)) > 0.25 * min(grid.shape):
        return geometry  # no consistent peak: keep the located start
    s = geometry.scale
    return Geometry(geometry.x + dx * grid.fg_factor[0] / s, geometry.y + dy * grid.fg_factor[1] / s, s)


def softness(windows: list[_Window], bg: Video, geometry: Geometry, grid: RegionGrid) -> float:
    """The blur (sigma, grid pixels) that makes bg's pictures look most like fg's, on the windows' centre pairs.

    A heavily compressed fg is much softer than bg. Sharp bg against soft fg, NCC
    and the fit prefer positions half a pixel off, where bilinear interpolation
    blurs bg (measured at crf 40: the true offset was a local minimum of NCC, and
    the fit settled 0.5 px away). Blurring bg to fg's softness removes that pull.
    """
    best, chosen = -2.0, 0.0
    for sigma in SOFTNESS:
        nccs = []
        for w in windows:
            k = w.centre - w.rows.start
            j = int(w.path[k]) - w.bg_first
            bg_grid, mask = bg_on_grid(w.bg_frames[j : j + 1], bg.size, geometry, grid, blur=sigma)
            nccs.append(float((normalised(w.fg_grid[k : k + 1], mask) @ normalised(bg_grid, mask).T)[0, 0]))
        score = float(np.median(nccs))
        if score > best + SOFTNESS_GAIN:
            best, chosen = score, sigma
    return chosen


def _plausible(g: Geometry, located: Geometry, bg: Video) -> bool:
    """The fit converges from within ~16 px and 5% of the truth; far beyond that it chased noise."""
    reach = 16.0 + 4.0 * max(bg.factor)
    return (abs(g.scale / located.scale - 1.0) <= 0.12 and abs(g.x - located.x) <= reach
            and abs(g.y - located.y) <= reach)


def _fit(pairs: list[FitPair], start: Geometry, levels: int, finest: int = 0) -> Geometry:
    g = fit_geometry(pairs, start, levels=levels, finest=finest)
    if abs(g.scale - 1.0) < SNAP_TO_UNSCALED:
        g = fit_geometry(pairs, Geometry(g.x, g.y, 1.0), fit_scale=False, levels=finest + 1, finest=finest)
    return g


def _work_pairs(windows: list[_Window], pairs: list[tuple[int, int]], bg: Video, fg: Video, blur: float
                ) -> list[FitPair]:
    out = []
    for w, (i, j) in zip(windows, pairs, strict=True):
        fg_img = np.asarray(fg.frames[i])
        out.append(FitPair(fg_img, fg.factor, w.bg_frames[j - w.bg_first], bg.factor, blur))
    return out


def fit_alignment(bg: Video, fg: Video, located: Geometry, index: np.ndarray, matched: np.ndarray, ratio: float,
                  *, xp: ModuleType = np, read_full: FullFrameReader | None = None, max_rounds: int = MAX_ROUNDS
                  ) -> Fit:
    """Sub-pixel geometry from ``located`` and a frame path (``index``, ``matched``), on a dozen windows."""
    grid = comparison_grid(fg.size, fg.factor, bg.factor, located.scale)
    windows = _windows(fg, bg, index, matched, grid, N_PAIRS)
    geometry = _phase_start(windows, bg, located, grid, xp)
    soft = softness(windows, bg, geometry, grid)
    blur = soft * grid.fg_factor[0] / geometry.scale  # the same blur in bg full pixels, for the fit's pairs
    matches = [_match_window(w, bg, geometry, grid, ratio, soft) for w in windows]
    # a window whose frames have no counterpart in bg would pull the fit towards noise: keep the ones that match
    top = max(m[2] for m in matches)
    keep = [k for k, m in enumerate(matches) if m[2] >= 0.5 * top] or list(range(len(matches)))
    windows = [windows[k] for k in keep]
    pairs = [matches[k][:2] for k in keep]
    for round_ in range(max_rounds):
        # coarse-to-fine only from the located start; later rounds start within a fraction of a pixel
        new = _fit(_work_pairs(windows, pairs, bg, fg, blur), geometry, levels=3 if round_ == 0 else 1)
        if not _plausible(new, located, bg):
            break  # fg does not register on bg here: keep what we have, the confidence will say so
        moved = max(abs(new.x - geometry.x), abs(new.y - geometry.y),
                    abs(new.scale - geometry.scale) * fg.size[0] / new.scale)
        geometry = new
        pairs = [_match_window(w, bg, geometry, grid, ratio, soft)[:2] for w in windows]
        if moved < CONVERGED_PX:
            break
    coarse_work = max(*bg.factor, *fg.factor) > 1.0
    if read_full is not None and coarse_work:
        # The working copies are smaller than the videos: polish on a few full-size pairs.
        chosen = [pairs[int(round(k))] for k in np.linspace(0, len(pairs) - 1, min(N_FULL_PAIRS, len(pairs)))]
        bg_full, fg_full = read_full([j for _, j in chosen], [i for i, _ in chosen])
        full = [FitPair(fg_full[i], (1.0, 1.0), bg_full[j], (1.0, 1.0), blur)
                for i, j in chosen if i in fg_full and j in bg_full]
        # fg at half size is enough: on 1080p pairs it reached the full-size fit's answer to 0.002 px, 5x faster
        polished = _fit(full, geometry, levels=2, finest=1) if full else geometry
        if full and _plausible(polished, located, bg):
            geometry = polished
    return Fit(geometry, soft)


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


def refine_alignment(bg: Video, fg: Video, located: Geometry, index: np.ndarray, matched: np.ndarray, ratio: float,
                     *, xp: ModuleType = np, read_full: FullFrameReader | None = None,
                     located_score: float = 1.0) -> Alignment:
    """Sub-pixel geometry, then every frame matched at it.

    The confidence is the median NCC of matched fg frames against the bg region
    under them, capped by ``located_score`` (how well the sampled fg frames
    agreed on one place in bg): an unrelated fg can still correlate with some
    smooth bg patch frame by frame, but not at one place for all of its frames.
    """
    fit = fit_alignment(bg, fg, located, index, matched, ratio, xp=xp, read_full=read_full)
    band = final_band(index, FINAL_BAND, len(bg), ratio)
    ncc = np.concatenate([block for _, block in match_frames(bg, fg, fit, band)])
    return alignment_from(fit.geometry, final_match(band, ncc, ratio, fg.pts, bg.pts), located_score)


def alignment_from(geometry: Geometry, m: FrameMatch, located_score: float) -> Alignment:
    """The answer, with its confidence: the median NCC over matched frames, capped by the located score."""
    matched_score = m.score[m.matched]
    confidence = float(np.clip(min(float(np.median(matched_score)) if len(matched_score) else 0.0,
                                   located_score), 0.0, 1.0))
    return Alignment(geometry, confidence, m.frames, score=m.score, matched=m.matched)
