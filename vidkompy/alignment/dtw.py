"""The frame path from embeddings: a coarse path over bins, then frames in a band around it.

Both levels are `vidkompy.alignment.monotonic.monotonic_path` with jumps (bg material fg
leaves out) and unmatched rows (fg material bg lacks). Costs come from a
`Calibration` measured on the pair itself, so one set of rules serves the
weight-free embedding and MobileNet's. Embeddings are read in windows of
``CHUNK`` fg frames and the bg frames their band needs: memory stays
O(n_fg x band), whatever the length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vidkompy.alignment.bins import Bins, Calibration, bin_band, frame_band
from vidkompy.alignment.monotonic import Band, Path, Steps, monotonic_path

CHUNK = 512  # fg frames per window of the band's similarity
# Bins are seconds on both sides: at the same speed a path steps one bin per bin; 0 and 2 stay free so a
# speed-up, a slow-down or a bin's phase never costs anything at this level.
COARSE_STEPS = dict(free=(0, 2), penalty=0.5, max_step=3, jump=2.0)
FRAME_PENALTY = 0.3
FRAME_JUMP = 3.0
SNAP_SPEED = 0.01  # a measured speed within 1% of the clocks' is the clocks'


def frame_ratio(bg_pts: np.ndarray, fg_pts: np.ndarray) -> float:
    """bg frames per fg frame, from the timestamps (robust to a few odd ones)."""
    dt_bg = float(np.median(np.diff(bg_pts))) if len(bg_pts) > 1 else 0.04
    dt_fg = float(np.median(np.diff(fg_pts))) if len(fg_pts) > 1 else dt_bg
    return dt_fg / dt_bg if dt_bg > 0 else 1.0


def _random_pairs(fg: np.ndarray, bg: np.ndarray, n: int = 512, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(fg), n)
    j = rng.integers(0, len(bg), n)
    return np.einsum("ij,ij->i", fg[i].astype(np.float32), bg[j].astype(np.float32))


def coarse_path(knn_idx: np.ndarray, knn_sim: np.ndarray, fg_bins: np.ndarray, bg_bins: np.ndarray) -> Path:
    """The path over bins, through each fg bin's k nearest bg bins (or unmatched)."""
    calib = Calibration.of(knn_sim[:, 0], _random_pairs(fg_bins, bg_bins))
    order = np.argsort(knn_idx, axis=1, kind="stable")
    idx = np.take_along_axis(knn_idx, order, axis=1).astype(np.int64)
    sim = np.take_along_axis(knn_sim, order, axis=1)
    band = Band(np.arange(0, idx.size + 1, idx.shape[1], dtype=np.int64), idx.ravel())
    steps = Steps(**COARSE_STEPS, gap=float(calib.cost(np.array(calib.gap_sim))))
    return monotonic_path(band, calib.cost(sim.ravel()), steps)


def speed(path: Path, min_run: int = 20, min_total: int = 100) -> float:
    """bg bins per fg bin along the coarse path's matched runs (1.0 when fg plays at bg's speed).

    Film transferred to PAL runs 4% fast: the clocks then say 25/24 while the
    pictures step one to one. Fitted over runs without jumps; 1.0 unless the runs
    add up to ``min_total`` bins: a bin is half a second, so over fewer the
    measured slope is no better than the 1% a speed must differ by to count
    (10 s of footage measured 0.952 for a true 1.0).
    """
    idx, ok = path.index, path.matched
    num = den = 0.0
    start = 0
    for i in range(1, len(idx) + 1):
        if i == len(idx) or not ok[i] or not ok[i - 1] or idx[i] - idx[i - 1] > COARSE_STEPS["max_step"]:
            if i - start >= min_run and ok[start]:
                num += float(idx[i - 1] - idx[start])
                den += float(i - 1 - start)
            start = i
    s = num / den if den >= min_total else 1.0
    return 1.0 if abs(s - 1.0) < SNAP_SPEED else s


@dataclass(frozen=True)
class FramePath:
    """The frame path and what it was found with."""

    path: Path
    sim: np.ndarray  # (n_fg,) embedding similarity along the path
    ratio: float  # bg frames per fg frame the path was searched at


def band_similarity(fg_emb, bg_emb, band: Band, chunk: int = CHUNK) -> np.ndarray:
    """Cosine similarity of every cell of ``band``: fg row i against bg frame ``cell``.

    ``fg_emb`` and ``bg_emb`` are (n, d) array-likes (a Zarr array reads only the
    windows asked for).
    """
    out = np.empty(len(band.cells), np.float32)
    for a in range(0, len(band), chunk):
        w = band.window(a, chunk)
        # read contiguous runs of the bg frames this window needs
        breaks = np.flatnonzero(np.diff(w.frames) > 1) + 1
        bg = np.concatenate([np.asarray(bg_emb[r[0] : r[-1] + 1]) for r in np.split(w.frames, breaks)])
        out[w.lo : w.hi] = w.gather(np.asarray(fg_emb[w.start : w.stop], np.float32) @ bg.astype(np.float32).T)
    return out


def frame_path(fg_emb, bg_emb, fg_pts: np.ndarray, bg_pts: np.ndarray, coarse: Path, fg_bins: Bins,
               bg_bins: Bins) -> FramePath:
    """Every fg frame's bg frame, searched in the band of bins around the coarse path."""
    band = frame_band(bin_band(coarse, fg_bins, bg_bins), fg_pts, fg_bins, bg_pts, bg_bins)
    sim = band_similarity(fg_emb, bg_emb, band)
    best = band.row_max(sim)
    rng = np.random.default_rng(1)
    i = rng.integers(0, len(fg_pts), 64)
    j = rng.integers(0, len(bg_pts), 64)
    unrelated = np.array([float(np.dot(np.asarray(fg_emb[a], np.float32), np.asarray(bg_emb[b], np.float32)))
                          for a, b in zip(i, j, strict=True)])
    calib = Calibration.of(best, unrelated)
    ratio = frame_ratio(bg_pts, fg_pts) * speed(coarse)
    steps = Steps.for_ratio(ratio, penalty=FRAME_PENALTY, jump=FRAME_JUMP,
                            gap=float(calib.cost(np.array(calib.gap_sim))))
    path = monotonic_path(band, calib.cost(sim).astype(np.float32), steps)
    along = np.where(path.matched, sim[np.maximum(path.cell, 0)], np.nan).astype(np.float32)
    return FramePath(path, along, ratio)
