"""Black bars (letterbox, pillarbox): the active picture inside a frame.

A 4:3 picture in a 16:9 frame, or a 2.39:1 film in a 16:9 one, carries black
rows or columns that never show anything. They must not be aligned (a crop of
bg does not contain them, so fg was refused as "not part of bg") nor pasted
over bg. Bars are rows and columns whose brightest pixel, over frames spread
through the whole video, stays black; only runs touching the frame's edges
count, and only when they are wider than a codec's padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLACK = 40  # 8-bit luma: video black is 16; compression noise around it stays well below this
MIN_BAR = 0.02  # of the frame's size: thinner dark edges are encoder padding or a dark picture edge
SAMPLES = 200  # frames sampled through a video for the statistics


@dataclass(frozen=True)
class Active:
    """What bar detection found: the active picture (x, y, w, h) in frame pixels, or a frame with no picture."""

    box: tuple[int, int, int, int] | None  # None: the whole frame is picture
    black: bool = False  # no row ever shows anything: all black, or all bars


class BarStats:
    """The brightest value of every row and column over the frames seen so far (full resolution)."""

    def __init__(self, width: int, height: int):
        self.row_max = np.zeros(height, np.uint8)
        self.col_max = np.zeros(width, np.uint8)
        self.frames = 0

    def add(self, luma: np.ndarray) -> None:
        """One frame's 8-bit luma plane."""
        np.maximum(self.row_max, luma.max(axis=1), out=self.row_max)
        np.maximum(self.col_max, luma.max(axis=0), out=self.col_max)
        self.frames += 1

    def state(self) -> dict:
        return {"row_max": self.row_max.tolist(), "col_max": self.col_max.tolist(), "frames": self.frames}

    @classmethod
    def restore(cls, state: dict) -> BarStats:
        stats = cls(len(state["col_max"]), len(state["row_max"]))
        stats.row_max[:] = state["row_max"]
        stats.col_max[:] = state["col_max"]
        stats.frames = int(state["frames"])
        return stats

    def active(self) -> Active:
        if self.frames == 0:
            return Active(None)
        return active_picture(self.row_max, self.col_max)


def _edges(brightest: np.ndarray) -> tuple[int, int] | None:
    """First and one-past-last index that ever shows picture, keeping only bars wider than MIN_BAR."""
    lit = np.flatnonzero(brightest > BLACK)
    if not len(lit):
        return None
    n = len(brightest)
    lo, hi = int(lit[0]), int(lit[-1]) + 1
    if lo < MIN_BAR * n:
        lo = 0
    if n - hi < MIN_BAR * n:
        hi = n
    return lo, hi


def active_picture(row_max: np.ndarray, col_max: np.ndarray) -> Active:
    """The active box from the per-row and per-column brightest values; even-aligned for 4:2:0 chroma."""
    rows, cols = _edges(np.asarray(row_max)), _edges(np.asarray(col_max))
    if rows is None or cols is None:
        return Active(None, black=True)
    (y0, y1), (x0, x1) = rows, cols
    if (y0, y1) == (0, len(row_max)) and (x0, x1) == (0, len(col_max)):
        return Active(None)
    # inward to even numbers: a chroma sample must not straddle the bar's edge
    x0, y0 = x0 + x0 % 2, y0 + y0 % 2
    x1, y1 = x1 - x1 % 2, y1 - y1 % 2
    return Active((x0, y0, x1 - x0, y1 - y0))
