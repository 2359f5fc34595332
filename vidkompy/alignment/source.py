"""What the alignment reads pictures from: any (N, h, w) array-like, read by windows.

A numpy array in tests; a Zarr array of the store in a run, where a window
reads only the chunks under it. No stage ever asks a source for all of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

MAX_GAP = 4  # frames skipped inside one read
RUN = 256  # frames read at most at once


class FrameSource(Protocol):
    """An (N, ...) array-like: ``len``, ``shape`` and reads by index or slice."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def __len__(self) -> int: ...

    def __getitem__(self, key: object) -> np.ndarray: ...


def read_frames(source: FrameSource, indices: np.ndarray) -> np.ndarray:
    """``source[indices]`` as one numpy array, read as contiguous runs (one slice each).

    Zarr's fancy indexing reads whole shards per selection, which made a few
    hundred scattered reads take seconds; runs of slices take milliseconds.
    """
    indices = np.asarray(indices, dtype=np.int64)
    if not len(indices):
        return np.zeros((0, *source.shape[1:]), np.uint8)
    uniq = np.unique(indices)
    # one read per run, a run spanning small gaps too (every 2nd frame: one read, not hundreds), at most RUN long
    parts, start = [], 0
    for k in range(1, len(uniq) + 1):
        if k == len(uniq) or uniq[k] - uniq[k - 1] > MAX_GAP or uniq[k] - uniq[start] >= RUN:
            lo = int(uniq[start])
            window = np.asarray(source[lo : int(uniq[k - 1]) + 1])
            parts.append(window[uniq[start:k] - lo])
            start = k
    return np.concatenate(parts)[np.searchsorted(uniq, indices)]


class ActivePicture:
    """A working copy cut to the active picture inside black bars: a `FrameSource` of its own.

    The box is in the video's full-size pixels, so at working size its edges fall
    between pixels; the picture is resampled (bilinear, FFmpeg's pixel-area
    convention) onto a grid of its own, once per read.
    """

    def __init__(self, frames: FrameSource, size: tuple[int, int], box: tuple[int, int, int, int]):
        from vidkompy.alignment.resample import grid_map

        h, w = frames.shape[1:]
        fx, fy = size[0] / w, size[1] / h
        x, y, bw, bh = box
        self.frames = frames
        self.out = (max(1, round(bh / fy)), max(1, round(bw / fx)))
        self.gmap = grid_map(float(x), float(y), 1.0, (bw / self.out[1], bh / self.out[0]), (fx, fy))
        self.shape = (len(frames), *self.out)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: object) -> np.ndarray:
        from vidkompy.alignment.resample import warp

        return warp(np.asarray(self.frames[key]), self.gmap, self.out)


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
