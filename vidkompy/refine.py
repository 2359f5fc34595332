"""From a located region and a rough frame path to sub-pixel geometry and exact frames.

Phase correlation on a few matched pairs gives the sub-pixel start; then the
joint fit (x, y, scale) and the frame match (NCC of fg against the bg region
within +-3 frames of the path, then DTW on log(1 - NCC)) alternate until the
geometry stops moving. Pairs come from the global path each round: pairs
chosen frame by frame made the alternation oscillate in our measurements.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from vidkompy.dtw import monotonic_alignment
from vidkompy.models import Alignment, Geometry
from vidkompy.resample import antialias
from vidkompy.spatial import (
    FitPair,
    RegionGrid,
    band_ncc,
    bg_on_grid,
    comparison_grid,
    fg_on_grid,
    fit_geometry,
    phase_correlate,
)
from vidkompy.video_io import Thumbnails

BAND = 3  # frames either side of the path that the pixel match considers
PAIR_BAND = 2  # a fit pair takes the best bg frame within this many frames of the path
N_PAIRS = 12
N_FULL_PAIRS = 6  # full-size pictures carry enough pixels; each one read costs a seek and a GOP of decoding
MAX_ROUNDS = 5
CONVERGED_PX = 0.01
SNAP_TO_UNSCALED = 0.003  # a fitted scale this close to 1 is a plain crop

# Reads full-size gray frames: (path index set for bg, for fg) -> ({i: frame}, {j: frame})
FullFrameReader = Callable[[Sequence[int], Sequence[int]], tuple[dict[int, np.ndarray], dict[int, np.ndarray]]]


@dataclass(frozen=True)
class _Match:
    path: np.ndarray
    cost: np.ndarray
    ncc: np.ndarray  # along the path
    band_lo: np.ndarray
    band: np.ndarray  # (n_fg, 2 * BAND + 1) NCC


def frame_ratio(bg_pts: np.ndarray, fg_pts: np.ndarray) -> float:
    """bg frames per fg frame, from the timestamps (robust to a few odd ones)."""
    dt_bg = float(np.median(np.diff(bg_pts))) if len(bg_pts) > 1 else 0.04
    dt_fg = float(np.median(np.diff(fg_pts))) if len(fg_pts) > 1 else dt_bg
    return dt_fg / dt_bg if dt_bg > 0 else 1.0


def _match(fg_grid: np.ndarray, bg: Thumbnails, geometry: Geometry, grid: RegionGrid, path: np.ndarray,
           ratio: float) -> _Match:
    bg_grid, mask = bg_on_grid(bg.frames, bg.full_size, geometry, grid, blurred=True)
    lo = np.asarray(path, dtype=np.int64) - BAND
    band = band_ncc(fg_grid, bg_grid, mask, lo, 2 * BAND + 1)
    cost = np.where(band > -1.0, np.log1p(-np.clip(band, -0.999, 0.99995)), np.inf)
    new_path, step_cost = monotonic_alignment(cost, lo, ratio=ratio, n_bg=len(bg.frames))
    ncc = band[np.arange(len(new_path)), new_path - lo]
    return _Match(new_path, step_cost, ncc, lo, band)


def _pairs(match: _Match, n: int) -> list[tuple[int, int]]:
    """~n fg frames spread in time, each with its best bg frame within PAIR_BAND of the path."""
    n_fg = len(match.path)
    idx = np.unique(np.linspace(0, n_fg - 1, min(n, n_fg)).round().astype(int))
    out = []
    for i in idx:
        ks = np.arange(BAND - PAIR_BAND, BAND + PAIR_BAND + 1)
        k = ks[int(np.argmax(match.band[i, ks]))]
        out.append((int(i), int(match.band_lo[i] + k)))
    return out


def _phase_start(fg_grid: np.ndarray, bg: Thumbnails, geometry: Geometry, grid: RegionGrid,
                 path: np.ndarray, xp: ModuleType) -> Geometry:
    """Sub-pixel translation from phase correlation on pairs along the path (median of them)."""
    idx = np.unique(np.linspace(0, len(path) - 1, min(8, len(path))).round().astype(int))
    js = np.clip(path[idx], 0, len(bg.frames) - 1)
    bg_grid, _ = bg_on_grid(bg.frames[js], bg.full_size, geometry, grid, blurred=True)
    shifts = [phase_correlate(fg_grid[i], bg_grid[k], xp=xp) for k, i in enumerate(idx)]
    dy = float(np.median([s[0] for s in shifts]))
    dx = float(np.median([s[1] for s in shifts]))
    if max(abs(dx), abs(dy)) > 0.25 * min(grid.shape):
        return geometry  # no consistent peak: keep the located start
    s = geometry.scale
    return Geometry(geometry.x + dx * grid.fg_factor[0] / s, geometry.y + dy * grid.fg_factor[1] / s, s)


def _work_pairs(bg: Thumbnails, fg: Thumbnails, pairs: list[tuple[int, int]]) -> list[FitPair]:
    return [FitPair(fg.frames[i], fg.factor, bg.frames[j], bg.factor) for i, j in pairs]


def _plausible(g: Geometry, located: Geometry, bg: Thumbnails) -> bool:
    """The fit converges from within ~16 px and 5% of the truth; far beyond that it chased noise."""
    reach = 16.0 + 4.0 * max(bg.factor)
    return (abs(g.scale / located.scale - 1.0) <= 0.12 and abs(g.x - located.x) <= reach
            and abs(g.y - located.y) <= reach)


def _fit(pairs: list[FitPair], start: Geometry, levels: int) -> Geometry:
    g = fit_geometry(pairs, start, levels=levels)
    if abs(g.scale - 1.0) < SNAP_TO_UNSCALED:
        g = fit_geometry(pairs, Geometry(g.x, g.y, 1.0), fit_scale=False, levels=1)
    return g


def refine_alignment(
    bg: Thumbnails,
    fg: Thumbnails,
    located: Geometry,
    path: np.ndarray,
    *,
    xp: ModuleType = np,
    read_full: FullFrameReader | None = None,
    max_rounds: int = MAX_ROUNDS,
    located_score: float = 1.0,
) -> Alignment:
    """Sub-pixel geometry and the final frame map, starting from ``located`` and ``path``.

    The confidence is the median NCC of fg against the bg region along the path,
    capped by ``located_score`` (how well the sampled fg frames agreed on one place
    in bg): an unrelated fg can still correlate with some smooth bg patch frame by
    frame, but not at one place for all of its frames.
    """
    ratio = frame_ratio(bg.pts, fg.pts)
    grid = comparison_grid(fg.full_size, fg.factor, bg.factor, located.scale)
    fg_grid = fg_on_grid(fg.frames, fg.full_size, grid)
    # the anti-alias blur depends on the sampling step only, not on the offset: once for all rounds
    shrink = grid.fg_factor[0] / (located.scale * bg.factor[0])
    bg = Thumbnails(bg.pts, antialias(bg.frames, shrink), bg.full_size)
    geometry = _phase_start(fg_grid, bg, located, grid, np.asarray(path), xp)
    match = _match(fg_grid, bg, geometry, grid, np.asarray(path), ratio)
    for round_ in range(max_rounds):
        # coarse-to-fine only from the located start; later rounds start within a fraction of a pixel
        new = _fit(_work_pairs(bg, fg, _pairs(match, N_PAIRS)), geometry, levels=3 if round_ == 0 else 1)
        if not _plausible(new, located, bg):
            break  # fg does not register on bg here: keep what we have, the confidence will say so
        moved = max(abs(new.x - geometry.x), abs(new.y - geometry.y),
                    abs(new.scale - geometry.scale) * fg.full_size[0] / new.scale)
        geometry = new
        match = _match(fg_grid, bg, geometry, grid, match.path, ratio)
        if moved < CONVERGED_PX:
            break
    coarse_work = max(*bg.factor, *fg.factor) > 1.0
    if read_full is not None and coarse_work:
        # The working copies are smaller than the videos: polish on a dozen full-size pairs.
        pairs = _pairs(match, N_FULL_PAIRS)
        bg_full, fg_full = read_full([j for _, j in pairs], [i for i, _ in pairs])
        full = [FitPair(fg_full[i], (1.0, 1.0), bg_full[j], (1.0, 1.0))
                for i, j in pairs if i in fg_full and j in bg_full]
        polished = _fit(full, geometry, levels=2) if full else geometry
        if full and _plausible(polished, located, bg):
            geometry = polished
            match = _match(fg_grid, bg, geometry, grid, match.path, ratio)
    confidence = float(np.clip(min(float(np.median(match.ncc)), located_score), 0.0, 1.0))
    return Alignment(geometry, confidence, match.path.astype(np.int64), match.cost)
