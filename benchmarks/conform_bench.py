"""The conform timeline of each case: clips per minute, the share of the map it reproduces, its build time.

Measured in the runner's process on the map the worker returned (`align --json`'s ``frames``), after the
timed runs, so it adds nothing to them. The reproduced share is read back from the written ``.otio`` by
`vidkompy.conform.shown_frames`, which knows only the timeline's clips, ranges and time warps; the target is
100 %, and the build should cost under 1 % of the alignment (issue 18).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from vidkompy.conform import build_timeline, read_timeline, reproduction, write_timeline
from vidkompy.media.probe import probe
from vidkompy.models import Alignment, Geometry

BUILDS = 3  # the fastest of this many builds is reported


def alignment_of(got: dict) -> Alignment:
    """The worker's JSON as the `Alignment` it printed."""
    frames = np.asarray(got["frames"], np.int64)
    matched = np.ones(len(frames), bool)
    for a, b in got.get("unmatched") or []:
        matched[a : b + 1] = False
    score = None if got.get("score") is None else np.asarray(got["score"], np.float32)
    active = None if got.get("active") is None else tuple(int(v) for v in got["active"])
    return Alignment(Geometry(got["x"], got["y"], got["scale"]), got["confidence"], frames, score, matched, active)


def timeline_metrics(got: dict, bg: Path, fg: Path, alignment_s: float | None) -> dict:
    """Clips, clips per minute of fg, the reproduced share of matched frames and the build's seconds."""
    alignment = alignment_of(got)
    bg_info, fg_info = probe(bg), probe(fg)
    build_s = float("inf")
    for _ in range(BUILDS):  # a millisecond's work: one build is at the mercy of whatever else the machine does
        start = time.perf_counter()
        built = build_timeline(alignment, fg_info, bg_info)
        build_s = min(build_s, time.perf_counter() - start)
    with tempfile.TemporaryDirectory(prefix="vidkompy-conform-") as folder:
        written = write_timeline(built, Path(folder) / "conform.otio")
        rep = reproduction(read_timeline(written), alignment)
    return {"clips": rep.clips, "clips_per_minute": round(rep.clips_per_minute, 3),
            "reproduced": round(rep.share, 5), "build_s": round(build_s, 5),
            "build_share_of_alignment": None if not alignment_s else round(build_s / alignment_s, 5)}
