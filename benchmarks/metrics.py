"""Scores against the truth: the frame map, the geometry, and an output video's PSNR.

A mapped bg frame counts as right when it shows the same picture as the true
one (same label: a static shot or a duplicated frame), since no method can tell
such frames apart; otherwise its error is the distance to the nearest frame
showing the true picture.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import numpy as np

from benchmarks.floor import planes, true_composite
from benchmarks.footage import Truth

MAX_WRONG = 20  # misses listed per case: enough to see a pattern (a cut, a static shot), not the whole map


@dataclass(frozen=True)
class FrameScore:
    """How well a frame map matches the truth."""

    n_expected: int
    n_found: int
    exact: float  # share of fg frames mapped to the true picture
    within_one: float  # share at most one frame off
    worst: int | None  # largest error in frames (None when the map is missing frames)
    monotonic: bool
    wrong: list[list[int]]  # the first few misses as [fg frame, mapped bg frame, true bg frame]

    def as_dict(self) -> dict:
        return asdict(self)


def frame_errors(found: np.ndarray, truth: Truth) -> np.ndarray:
    """Per fg frame: 0 on the true picture, else frames to the nearest bg frame that shows it."""
    labels = truth.labels
    n_bg = len(labels)
    first = np.full(labels.max() + 1, n_bg, np.int64)
    last = np.full(labels.max() + 1, -1, np.int64)
    np.minimum.at(first, labels, np.arange(n_bg))
    np.maximum.at(last, labels, np.arange(n_bg))
    n = min(len(found), len(truth.frames))
    f = np.asarray(found[:n], np.int64)
    want = labels[truth.frames[:n]]
    lo, hi = first[want], last[want]
    return np.where(f < lo, lo - f, np.where(f > hi, f - hi, 0))


def score_frames(found: np.ndarray, truth: Truth) -> FrameScore:
    n = len(truth.frames)
    err = frame_errors(np.asarray(found), truth)
    steps = np.diff(np.asarray(found, np.int64))
    return FrameScore(
        n_expected=n,
        n_found=len(found),
        exact=float((err == 0).sum()) / n,
        within_one=float((err <= 1).sum()) / n,
        worst=int(err.max()) if n and len(found) == n else None,
        monotonic=bool((steps >= 0).all()),
        wrong=[[int(i), int(found[i]), int(truth.frames[i])] for i in np.flatnonzero(err)[:MAX_WRONG]],
    )


def offset_error(x: float, y: float, truth: Truth) -> float:
    """Pixels, bg units: the larger of the x and y errors."""
    return max(abs(x - truth.x), abs(y - truth.y))


def scale_error(scale: float, truth: Truth) -> float:
    """Relative: |found - true| / true."""
    return abs(scale - truth.scale) / truth.scale


@dataclass(frozen=True)
class VideoScore:
    """An output video against the true composite."""

    n_frames: int
    n_expected: int
    psnr: float | None  # dB over Y, U and V of all compared frames (from their mean squared error)
    worst_frame_psnr: float | None
    same_size: bool

    def as_dict(self) -> dict:
        return asdict(self)


def _psnr(mse: float) -> float:
    return 99.0 if mse <= 1e-10 else 10.0 * math.log10(255.0**2 / mse)


def score_video(output: Path, truth: Truth) -> VideoScore:
    """PSNR of ``output`` against the true composite, frame i against frame i.

    A different frame size is scaled to bg's (and flagged); frames beyond the
    shorter of the two are not compared but the counts are reported.
    """
    mses: list[float] = []
    same_size = True
    with av.open(str(truth.bg)) as bg_in, av.open(str(truth.fg)) as fg_in, av.open(str(output)) as out_in:
        vs = out_in.streams.video[0]
        vs.thread_type = "AUTO"
        n_out = 0
        want = true_composite(truth, bg_in, fg_in)
        for frame in out_in.decode(vs):
            n_out += 1
            ref = next(want, None)
            if ref is None:
                continue
            if (frame.width, frame.height) != (ref.width, ref.height) or frame.format.name != "yuv420p":
                same_size = same_size and (frame.width, frame.height) == (ref.width, ref.height)
                frame = frame.reformat(width=ref.width, height=ref.height, format="yuv420p")
            total, count = 0.0, 0
            for a, b in zip(planes(frame), planes(ref), strict=True):
                d = a.astype(np.int16) - b
                total += float(np.square(d, dtype=np.int32).sum())
                count += d.size
            mses.append(total / count)
    if not mses:
        return VideoScore(n_out, len(truth.frames), None, None, same_size)
    return VideoScore(n_out, len(truth.frames), round(_psnr(float(np.mean(mses))), 2),
                      round(_psnr(max(mses)), 2), same_size)
