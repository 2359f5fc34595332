"""What the alignment reads pictures from: any (N, h, w) array-like, read by windows.

A numpy array in tests; a Zarr array of the store in a run, where a window
reads only the chunks under it. No stage ever asks a source for all of it.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


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
    runs = np.split(uniq, np.flatnonzero(np.diff(uniq) > 1) + 1)
    stacked = np.concatenate([np.asarray(source[int(r[0]) : int(r[-1]) + 1]) for r in runs])
    return stacked[np.searchsorted(uniq, indices)]


def windows(n: int, size: int):
    """``(start, stop)`` of consecutive windows of ``size`` over ``range(n)``."""
    for a in range(0, n, size):
        yield a, min(n, a + size)
