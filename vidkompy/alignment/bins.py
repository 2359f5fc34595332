"""Coarse-to-fine matching in time: bins of seconds, their pooled embeddings, and the band around a path.

A global search of every fg frame against every bg frame grows with
n_fg x n_bg. Instead both videos are cut into bins of a fixed number of seconds
(0.5 s, longer only past about an hour, so that there are at most 8192); a
bin's embedding is the normalised mean of its frames' embeddings. The nearest
bg bins of every fg bin (FAISS) give a coarse path; the frame path is then
searched only in a band of bins around it. Everything after the bins is linear
in length, and the bins' own search is bounded (FastDTW's coarsening,
Salvador & Chan 2007, applied to time rather than to frame indices, so that two
frame rates share one grid).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from vidkompy.alignment.monotonic import Band, Path

BIN_SECONDS = 0.5
MAX_BINS = 8192
MATCH_QUANTILE = 0.9
BAND_BINS = 1  # bins either side of the coarse path (and of its neighbours') that the frame band covers


@dataclass(frozen=True)
class Bins:
    """Bin ``q`` covers ``[t0 + q * seconds, t0 + (q + 1) * seconds)``."""

    t0: float
    seconds: float
    n: int

    def of(self, t: np.ndarray | float) -> np.ndarray:
        q = np.floor((np.asarray(t, dtype=np.float64) - self.t0) / self.seconds + 1e-9).astype(np.int64)
        return np.clip(q, 0, self.n - 1)

    @classmethod
    def covering(cls, pts: np.ndarray, seconds: float) -> Bins:
        t0, t1 = float(pts[0]), float(pts[-1])
        return cls(t0, seconds, max(1, int(math.floor((t1 - t0) / seconds + 1e-9)) + 1))


def bin_seconds(bg_pts: np.ndarray, fg_pts: np.ndarray) -> float:
    """0.5 s, or longer when the longer video would need more than MAX_BINS bins."""
    span = max(float(bg_pts[-1] - bg_pts[0]), float(fg_pts[-1] - fg_pts[0]), 0.0)
    frame = float(np.median(np.diff(bg_pts))) if len(bg_pts) > 1 else 0.04
    return max(BIN_SECONDS, span / (MAX_BINS - 1), frame)


def pool(chunks: Iterable[tuple[np.ndarray, np.ndarray]], bins: Bins) -> np.ndarray:
    """(n_bins, d) unit vectors: the mean embedding of each bin's frames, from (pts, emb) chunks.

    A bin without frames (a variable frame rate's hole) takes its predecessor's vector.
    """
    total: np.ndarray | None = None
    count = np.zeros(bins.n, np.int64)
    for pts, emb in chunks:
        q = bins.of(pts)
        if total is None:
            total = np.zeros((bins.n, emb.shape[1]), np.float64)
        # each bin's sum as a sparse product (a bin by frame 0/1 matrix): np.add.at, which adds
        # one row at a time, took 0.2 s per 4096 frames, this 3 ms (float32 sums of a bin's
        # dozen frames, then accumulated in float64: 1e-6 of a unit vector)
        member = sparse.csr_matrix((np.ones(len(q), np.float32), (q, np.arange(len(q)))), shape=(bins.n, len(q)))
        total += member @ np.asarray(emb, np.float32)
        count += np.bincount(q, minlength=bins.n)
    if total is None:
        raise ValueError("no frames to pool")
    for q in np.flatnonzero(count == 0):
        total[q] = total[q - 1] if q > 0 else 0.0
    norm = np.linalg.norm(total, axis=1, keepdims=True)
    return (total / np.maximum(norm, 1e-12)).astype(np.float32)


@dataclass(frozen=True)
class Calibration:
    """What "the same moment" and "unrelated" look like in one similarity measure.

    ``match`` is the typical similarity of a true match (the median best
    candidate), ``unrelated`` that of pairs drawn at random. Costs, gaps and
    jumps are set between the two, so the same rules hold for the weight-free
    embedding (unrelated near 0) and MobileNet's (unrelated near 0.6).
    """

    match: float
    unrelated: float

    @property
    def gap_sim(self) -> float:
        """Below this similarity a row is better called unmatched: halfway between the two."""
        return 0.5 * (self.match + self.unrelated)

    def cost(self, sim: np.ndarray) -> np.ndarray:
        """log(1 - sim) rescaled: 0 at ``unrelated``, -1 at ``match``; sharper near 1, like the NCC cost."""
        top = math.log1p(-min(self.match, 0.9999))
        low = math.log1p(-min(self.unrelated, self.match - 1e-3, 0.9999))
        return (np.log1p(-np.clip(sim, -1.0, 0.9999)) - low) / (low - top)

    @classmethod
    def of(cls, best: np.ndarray, random: np.ndarray) -> Calibration:
        """From each row's best similarity and from random pairs.

        A match is the 90th percentile of the rows' best, not their median: when
        most of fg has no counterpart (fg running far past bg), the median row is
        one of those.
        """
        match = float(np.quantile(best, MATCH_QUANTILE)) if len(best) else 1.0
        unrelated = float(np.median(random)) if len(random) else 0.0
        return cls(match, min(unrelated, match - 0.05))


def bin_band(path: Path, fg_bins: Bins, bg_bins: Bins, margin: int = BAND_BINS) -> list[list[tuple[int, int]]]:
    """For every fg bin, the bg bin ranges (first, last) its frames are searched in.

    Bin q takes ``margin`` bins either side of the coarse positions of q - 1, q
    and q + 1: the coarse path may put a cut, or the end of an inserted shot, a
    bin early or late, and the frame path must be free to find it.
    """
    pos = path.index
    out: list[list[tuple[int, int]]] = []
    for q in range(fg_bins.n):
        centres = sorted({int(pos[r]) for r in (q - 1, q, q + 1) if 0 <= r < fg_bins.n})
        ranges: list[tuple[int, int]] = []
        for c in centres:
            a, b = max(0, c - margin), min(bg_bins.n - 1, c + margin + 1)
            if ranges and a <= ranges[-1][1] + 1:
                ranges[-1] = (ranges[-1][0], max(ranges[-1][1], b))
            else:
                ranges.append((a, b))
        out.append(ranges)
    return out


def frame_band(bin_ranges: list[list[tuple[int, int]]], fg_pts: np.ndarray, fg_bins: Bins, bg_pts: np.ndarray,
               bg_bins: Bins) -> Band:
    """The frame band: every fg frame searches the bg frames of its bin's bg bin ranges."""
    first_frame = np.searchsorted(bg_pts, bg_bins.t0 + np.arange(bg_bins.n + 1) * bg_bins.seconds - 1e-9)
    first_frame[-1] = len(bg_pts)
    fg_q = fg_bins.of(np.maximum.accumulate(fg_pts))
    bin_cells = []
    for ranges in bin_ranges:
        parts = [np.arange(first_frame[a], first_frame[b + 1]) for a, b in ranges]
        cells = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        if not len(cells):  # bins past bg's last frame: its last frame
            cells = np.array([len(bg_pts) - 1])
        bin_cells.append(cells.astype(np.int64))
    sizes = np.array([len(bin_cells[q]) for q in fg_q], np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    counts = np.bincount(fg_q, minlength=fg_bins.n)
    cells = np.concatenate([np.tile(bin_cells[q], counts[q]) for q in range(fg_bins.n) if counts[q]])
    return Band(offsets, cells)
