"""Small pairs whose fg window moves (issue 19), cut from real footage with exact truth in a second or two.

bg is bikes.mp4 from its second shot on (source frames 30-89, its own cut at 76), scaled to 400x170; fg is a
192x96 window of it that moves as ``kind`` says. fg's pixels come from `benchmarks.moving.region_pixels`, a
resampler sharing no code with vidkompy (scipy's cubic spline, area convention), so the truth is the recipe,
not anything vidkompy computes.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import av
import numpy as np

from benchmarks.moving import MovingTruth, shot_placements, write_moving_pair
from tests.footage import clip_path

CLIP = "bikes.mp4"
FIRST = 30  # bikes' first shot is a wall, nearly flat: start at its second
N_FRAMES = 60
FPS = 25
BG_SIZE = (400, 170)
FG_SIZE = (192, 96)
# x, y in bg pixels; every window stays inside bg's 400x170
SHOTS = {
    "fixed": [["still", 60, 104, 37]],
    "shots": [["still", 20, 0, 0], ["still", 20, 208, 74], ["still", 20, 100, 30]],
    "pan": [["pan", 36, 10, 4, 2, 1], ["still", 24, 150, 60]],
    "zoom": [["zoom", 60, 200, 85, 1.0, 1.15]],
}
KINDS = tuple(SHOTS)


@lru_cache(maxsize=1)
def source_frames() -> tuple[np.ndarray, ...]:
    """bikes' frames FIRST.. FIRST + N_FRAMES - 1 as RGB at bg's size (scaled by FFmpeg), read-only."""
    out = []
    with av.open(str(clip_path(CLIP))) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for k, frame in enumerate(container.decode(stream)):
            if k >= FIRST + N_FRAMES:
                break
            if k >= FIRST:
                rgb = frame.reformat(width=BG_SIZE[0], height=BG_SIZE[1], format="rgb24",
                                     interpolation="BICUBIC").to_ndarray()
                rgb.flags.writeable = False
                out.append(rgb)
    return tuple(out)


def moving_pair(folder: Path, kind: str) -> MovingTruth:
    """Write ``{kind}.bg.mp4`` (libx264 crf 14) and ``{kind}.fg.mp4`` (crf 18) into ``folder``: 60 frames at
    25 fps, fg frame i showing bg frame i through the window of `SHOTS` [kind]:

    - "fixed": one window; "shots": three still windows, a jump in x and y at each cut;
    - "pan": 36 frames panning (2, 1) px a frame, then 24 still; "zoom": scale 1.0 -> 1.15, centred.
    """
    if kind not in SHOTS:
        raise ValueError(f"unknown kind {kind!r} (one of {', '.join(KINDS)})")
    placement = shot_placements(SHOTS[kind], FG_SIZE)
    return write_moving_pair(source_frames(), FPS, folder, kind, frames=np.arange(len(placement)),
                             placement=placement, fg_size=FG_SIZE, fg_fps=FPS, bg_crf=14, fg_crf=18)
