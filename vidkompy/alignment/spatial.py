"""The spatial stage: from a located region and a frame path to sub-pixel geometry (then exact frames).

Phase correlation on a few matched pairs gives the sub-pixel start; then the
joint fit (x, y, scale) and the frame match (NCC of fg against the bg region
within +-3 frames of the path, then DTW on log(1 - NCC)) alternate until the
geometry stops moving. They alternate on a dozen short windows spread in
time, each matched as a whole (pairs chosen frame by frame made the
alternation oscillate in our measurements; a window's own path keeps it
converging), so a round costs the same for a minute as for three hours. One
streamed pass over both videos then matches every frame at the final geometry
(`vidkompy.alignment.frame_match`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from vidkompy.alignment.fit import FitPair, fit_geometry, phase_correlate
from vidkompy.alignment.frame_match import FrameMatch, ncc_cost
from vidkompy.alignment.monotonic import STEP_PENALTY, Band, Steps, monotonic_path
from vidkompy.alignment.placement import Placements
from vidkompy.alignment.region import (
    RegionGrid,
    bg_on_grid,
    comparison_grid,
    fg_on_grid,
    normalised,
)
from vidkompy.alignment.source import Video
from vidkompy.models import Alignment, Fit, Geometry, runs

BAND = 3  # frames either side of the path that a window's pixel match considers
PAIR_BAND = 2  # a fit pair takes the best bg frame within this many frames of the path
N_PAIRS = 12
WINDOW = 8  # fg frames either side of a fit pair's frame, matched together
N_FULL_PAIRS = 6  # full-size pictures carry enough pixels; each one read costs a seek and a GOP of decoding
MAX_ROUNDS = 5
CONVERGED_PX = 0.01
DRIFT_PX = 1.0  # a pair fitted alone this far from the joint geometry drifts (see `drifting`)
DRIFTING_WINDOWS = 3  # ... when at least this many do
DRIFT_SMOOTH = 0.5  # ... and their neighbours in time deviate alike (second difference / deviation below this)
SNAP_TO_UNSCALED = 0.003  # a fitted scale this close to 1 is a plain crop
SOFTNESS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)  # bg blurs tried (sigma, grid pixels)
SOFTNESS_GAIN = 0.002  # a blur must raise the median NCC by this much to be taken

# Reads full-size gray frames: (bg indices, fg indices) -> ({i: frame}, {j: frame})
FullFrameReader = Callable[[Sequence[int], Sequence[int]], tuple[dict[int, np.ndarray], dict[int, np.ndarray]]]


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
    return Fit(geometry, soft, drifting(_work_pairs(windows, pairs, bg, fg, blur), geometry, fg.size))


def drifting(pairs: list[FitPair], geometry: Geometry, fg_size: tuple[int, int]) -> int:
    """How many fit pairs, each fitted alone from ``geometry``, land more than `DRIFT_PX` from it (corners), where
    they drift together; 0 where they only scatter.

    A zoom or a slow pan keeps every frame matching at the fixed placement well enough
    to pass the frame match, a pixel or more off; fitted alone, the pairs spread along
    the track, each near its neighbours in time. A fixed placement fits each pair alone
    within a few tenths of a pixel, and a heavily compressed fg (crf 40) scatters them
    up to 2.7 px, but at random: there, the second difference between neighbouring
    windows is as large as the deviations themselves (measured: zoom 0.2 of them,
    crf 40 above 1).
    """
    w, h = fg_size
    dev = []
    for p in pairs:
        g = fit_geometry([p], geometry, levels=2, finest=1)  # half size: a tenth of a pixel tells 1 px apart, 4x faster
        dev.append([g.x - geometry.x, g.y - geometry.y, g.x + w / g.scale - geometry.x - w / geometry.scale,
                    g.y + h / g.scale - geometry.y - h / geometry.scale])
    d = np.asarray(dev)
    off = np.abs(d).max(axis=1) > DRIFT_PX
    if off.sum() < DRIFTING_WINDOWS or len(d) < 3:
        return 0
    bend = np.abs(d[1:-1] - 0.5 * (d[:-2] + d[2:])).max(axis=1)
    if float(np.median(bend)) > DRIFT_SMOOTH * float(np.median(np.abs(d).max(axis=1))):
        return 0  # they scatter: compression or noise, not a moving placement
    return int(off.sum())


def shared_geometry(per_frame: np.ndarray, fallback: Geometry) -> Geometry:
    """The placement the most frames share (to a thousandth of a pixel), among those that have one."""
    rows = per_frame[~np.isnan(per_frame[:, 0])]
    if not len(rows):
        return fallback
    values, counts = np.unique(np.round(rows, 3), axis=0, return_counts=True)
    best = values[int(np.argmax(counts))]
    exact = rows[np.all(np.round(rows, 3) == best, axis=1)][0]
    return Geometry(float(exact[0]), float(exact[1]), float(exact[2]))


def off_canvas(per_frame: np.ndarray, fg_size: tuple[int, int], bg_size: tuple[int, int]) -> list[tuple[int, int]]:
    """fg frame ranges whose region reaches past bg's canvas (by more than a hundredth of a pixel)."""
    x, y, s = per_frame[:, 0], per_frame[:, 1], per_frame[:, 2]
    with np.errstate(invalid="ignore"):
        out = (x < -0.01) | (y < -0.01) | (x + fg_size[0] / s > bg_size[0] + 0.01) | \
            (y + fg_size[1] / s > bg_size[1] + 0.01)
    return runs(out & ~np.isnan(x))


def alignment_from(geometry: Geometry, m: FrameMatch, located_score: float, moving: Placements | None = None,
                   sizes: tuple[tuple[int, int], tuple[int, int]] | None = None) -> Alignment:
    """The answer, with its confidence: the median NCC over matched frames, capped by the located score.

    With a moving placement (``moving``) the located score says nothing about the frames placed elsewhere, so
    the median NCC alone is the confidence, and ``geometry`` becomes the placement most frames share.
    ``sizes``: (fg's, bg's) full size, to tell which frames' regions leave bg's canvas.
    """
    if moving is not None and not moving.moves:
        moving = None
    if moving is not None and moving.match is not None:
        m = moving.match
    matched_score = m.score[m.matched]
    median = float(np.median(matched_score)) if len(matched_score) else 0.0
    confidence = float(np.clip(median if moving is not None else min(median, located_score), 0.0, 1.0))
    per_frame = None if moving is None else moving.per_frame
    if per_frame is not None:
        geometry = shared_geometry(per_frame, geometry)
    outside: list[tuple[int, int]] = []
    if sizes is not None:
        if per_frame is None:
            rows = np.tile([geometry.x, geometry.y, geometry.scale], (len(m.frames), 1))
            rows = np.where(m.matched[:, None], rows, np.nan)
        else:
            rows = per_frame
        outside = off_canvas(rows, *sizes)
    return Alignment(geometry, confidence, m.frames, score=m.score, matched=m.matched, placement=per_frame,
                     placement_mode="fixed" if moving is None else moving.mode, off_canvas=tuple(outside))
