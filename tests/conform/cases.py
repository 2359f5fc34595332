"""Frame maps with exact truth for the conform's tests: what a timeline must reproduce, and how it should cut bg."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from vidkompy.models import Alignment, Geometry, VideoInfo


@dataclass(frozen=True)
class Case:
    name: str
    alignment: Alignment
    fg: VideoInfo
    bg: VideoInfo
    speeds: tuple[Fraction, ...]  # the time scalar of each V1 clip, in order: one clip per straight stretch
    gaps: int = 0  # unmatched ranges on V1
    jumps: int = 0  # jump markers

    @property
    def frames(self) -> np.ndarray:
        return self.alignment.frames


def _info(path: str, size: tuple[int, int], fps: float, n: int, audio: bool = False) -> VideoInfo:
    return VideoInfo(path, size[0], size[1], fps, n, n / fps, has_audio=audio)


def case(name: str, frames: np.ndarray, fg_fps: float, bg_fps: float, speeds: tuple[Fraction, ...], *,
         matched: np.ndarray | None = None, n_bg: int | None = None, active: tuple[int, int, int, int] | None = None,
         fg_size: tuple[int, int] = (160, 120), score: np.ndarray | None = None, gaps: int = 0,
         jumps: int = 0) -> Case:
    frames = np.asarray(frames, np.int64)
    n_bg = n_bg if n_bg is not None else int(frames.max()) + 20
    alignment = Alignment(Geometry(72.0, 40.0, 0.5), 0.93, frames,
                          score=np.ones(len(frames)) if score is None else score, matched=matched, active=active)
    fg = _info(f"/media/{name}/fg.mov", fg_size, fg_fps, len(frames), audio=True)
    bg = _info(f"/media/{name}/bg.mov", (640, 480), bg_fps, n_bg)
    return Case(name, alignment, fg, bg, speeds, gaps, jumps)


def sample_truth(n: int, fg_fps: float, bg_fps: float, t0: float = 0.4) -> np.ndarray:
    """`vidkompy.samples`' truth: the nearest bg frame to each fg frame's time, ties rounded up."""
    return np.array([math.floor((t0 + i / fg_fps) * bg_fps + 0.5 + 1e-6) for i in range(n)])


def _inserted() -> Case:
    frames = np.arange(300) + 40
    frames[150:] -= 50  # bg runs on after the inserted shot where it left off
    matched = np.ones(300, bool)
    matched[100:150] = False
    frames[100:150] = frames[99]
    return case("inserted", frames, 25, 25, (Fraction(1), Fraction(1)), matched=matched, gaps=1)


def _longer() -> Case:
    """fg starts 1 s before bg and ends 1 s after it: its ends have no counterpart."""
    frames = np.clip(np.arange(300) - 25, 0, 249)
    matched = np.zeros(300, bool)
    matched[25:275] = True
    return case("longer", frames, 25, 25, (Fraction(1),), matched=matched, n_bg=250, gaps=2)


def _low_score() -> Case:
    score = np.ones(200)
    score[60:80] = 0.4
    return case("low_score", np.arange(200) + 3, 25, 25, (Fraction(1),), score=score)


CASES: dict[str, Case] = {c.name: c for c in (
    case("recut", np.concatenate([np.arange(100) + 10, np.arange(100) + 400]), 25, 25,
         (Fraction(1), Fraction(1)), jumps=1),
    case("pal", np.arange(250) + 12, 25, 24, (Fraction(25, 24),)),
    case("pal_recut", np.concatenate([np.arange(120) + 12, np.arange(80) + 300]), 25, 24,
         (Fraction(25, 24), Fraction(25, 24)), jumps=1),
    case("25_over_30", sample_truth(300, 30, 25), 30, 25, (Fraction(1),)),
    case("30_over_25", sample_truth(250, 25, 30), 25, 30, (Fraction(1),)),
    case("ntsc", sample_truth(300, 30000 / 1001, 24000 / 1001), 30000 / 1001, 24000 / 1001, (Fraction(1),)),
    _inserted(),
    case("held", np.concatenate([np.arange(100), [99], np.arange(100, 199)]), 25, 25, (Fraction(1), Fraction(1))),
    case("letterbox", np.arange(200) + 5, 25, 25, (Fraction(1),), active=(0, 15, 160, 90), fg_size=(160, 120)),
    _longer(),
    _low_score(),
)}
