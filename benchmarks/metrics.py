"""Scores against the truth: the frame map, the geometry, and an output video's PSNR.

A mapped bg frame counts as right when it shows the same picture as the true
one (same label: a static shot or a duplicated frame), since no method can tell
such frames apart; otherwise its error is the distance to the nearest frame
showing the true picture. Only fg frames with a counterpart in bg are scored
so; the others (truth -1, an inserted shot) are scored by whether vidkompy
reports them unmatched (recall and precision).

A wrong frame may still be the picture fg's pixels are closest to (a heavily
compressed fg frame can carry mostly its predecessor's picture):
`wrong_but_closer` decodes both candidates and fg and says which is nearer,
and `nearest_pictures` how often the true picture is the nearest at all.
Everything here is NumPy over PyAV; nothing comes from vidkompy.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import av
import numpy as np

from benchmarks.floor import active_picture, planes, true_composite
from benchmarks.footage import Truth

MAX_WRONG = 20  # misses listed per case: enough to see a pattern (a cut, a static shot), not the whole map
# The active box must be found to the pixel: one pixel off pastes a line of bar or drops one of picture.
MAX_ACTIVE_ERR_PX = 0


@dataclass(frozen=True)
class FrameScore:
    """How well a frame map matches the truth, on the fg frames that have a counterpart in bg."""

    n_expected: int
    n_found: int
    exact: float  # share of matched fg frames mapped to the true picture
    within_one: float  # share at most one frame off
    worst: int | None  # largest error in frames (None when the map is missing frames)
    monotonic: bool
    wrong: list[list[int]]  # the first few misses as [fg frame, mapped bg frame, true bg frame]
    n_matched: int = 0  # fg frames with a counterpart in bg (all of them but an inserted shot's)

    def as_dict(self) -> dict:
        return asdict(self)


def frame_errors(found: np.ndarray, truth: Truth) -> np.ndarray:
    """Per fg frame: 0 on the true picture, else frames to the nearest bg frame that shows it; -1 where fg
    has no counterpart in bg (nothing to be right about)."""
    labels = truth.labels
    n_bg = len(labels)
    first = np.full(labels.max() + 1, n_bg, np.int64)
    last = np.full(labels.max() + 1, -1, np.int64)
    np.minimum.at(first, labels, np.arange(n_bg))
    np.maximum.at(last, labels, np.arange(n_bg))
    n = min(len(found), len(truth.frames))
    f = np.asarray(found[:n], np.int64)
    true = truth.frames[:n]
    want = labels[np.maximum(true, 0)]
    lo, hi = first[want], last[want]
    err = np.where(f < lo, lo - f, np.where(f > hi, f - hi, 0))
    return np.where(true >= 0, err, -1)


def score_frames(found: np.ndarray, truth: Truth) -> FrameScore:
    matched = truth.matched
    n = int(matched.sum())
    err = frame_errors(np.asarray(found), truth)
    ok = err[err >= 0]
    steps = np.diff(np.asarray(found, np.int64))
    return FrameScore(
        n_expected=len(truth.frames),
        n_found=len(found),
        exact=float((ok == 0).sum()) / n if n else 0.0,
        within_one=float((ok <= 1).sum()) / n if n else 0.0,
        worst=int(ok.max()) if len(ok) and len(found) == len(truth.frames) else None,
        monotonic=bool((steps >= 0).all()),
        wrong=[[int(i), int(found[i]), int(truth.frames[i])] for i in np.flatnonzero(err > 0)[:MAX_WRONG]],
        n_matched=n,
    )


def ranges(mask: np.ndarray) -> list[list[int]]:
    """[first, last] of every run of True."""
    d = np.diff(np.concatenate([[0], np.asarray(mask, np.int8), [0]]))
    return [[int(a), int(b) - 1] for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True)]


@dataclass(frozen=True)
class UnmatchedScore:
    """fg frames with no counterpart in bg: the ones vidkompy reports against the true ones."""

    n_true: int
    n_reported: int
    recall: float | None  # share of truly unmatched fg frames inside a reported range (None: there are none)
    precision: float | None  # share of reported fg frames that are truly unmatched (None: none reported)
    true_ranges: list[list[int]]
    reported_ranges: list[list[int]]

    def as_dict(self) -> dict:
        return asdict(self)


def score_unmatched(reported: list[list[int]] | None, truth: Truth) -> UnmatchedScore:
    n = len(truth.frames)
    said = np.zeros(n, bool)
    for first, last in reported or []:
        said[max(0, int(first)) : min(n, int(last) + 1)] = True
    true = ~truth.matched
    both = int((said & true).sum())
    return UnmatchedScore(int(true.sum()), int(said.sum()), both / int(true.sum()) if true.any() else None,
                          both / int(said.sum()) if said.any() else None, ranges(true),
                          [[int(a), int(b)] for a, b in reported or []])


def active_error(found: list[int] | None, truth: Truth) -> tuple[bool, int | None]:
    """Whether the reported active box is fg's true one, and its largest edge error in fg pixels (None when
    one of the two has no box: bars where there are none, or none found)."""
    if found is None or truth.active is None:
        return found is None and truth.active is None, None
    err = max(abs(int(a) - int(b)) for a, b in zip(found, truth.active, strict=True))
    return err <= MAX_ACTIVE_ERR_PX, err


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


def score_video(output: Path, truth: Truth, shown: np.ndarray | None = None) -> VideoScore:
    """PSNR of ``output`` against the true composite, frame i against frame i.

    ``shown`` is the map that made ``output``: where fg has no counterpart in bg
    the true composite holds the bg frame it holds, if that lies between the
    true frames around the stretch (`floor.reference_map`). A different frame
    size is scaled to bg's (and flagged); frames beyond the shorter of the two
    are not compared but the counts are reported.
    """
    mses: list[float] = []
    same_size = True
    with av.open(str(truth.bg)) as bg_in, av.open(str(truth.fg)) as fg_in, av.open(str(output)) as out_in:
        vs = out_in.streams.video[0]
        vs.thread_type = "AUTO"
        n_out = 0
        want = true_composite(truth, bg_in, fg_in, shown)
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


@dataclass(frozen=True)
class CloserScore:
    """The wrongly mapped frames: is the chosen bg frame nearer fg's actual pixels than the true one?"""

    n_wrong: int  # matched fg frames mapped to another picture (and compared)
    closer: float | None  # share of them whose chosen bg frame is nearer fg than the true one
    psnr_true: float | None  # dB, fg's picture against the true bg frame's region (over the wrong frames)
    psnr_chosen: float | None  # the same against the chosen bg frame's region

    def as_dict(self) -> dict:
        return asdict(self)


def _luma(frame: av.VideoFrame) -> np.ndarray:
    if frame.format.name != "yuv420p":
        frame = frame.reformat(format="yuv420p")
    return planes(frame)[0].astype(np.float32)


def wrong_but_closer(found: np.ndarray, truth: Truth) -> CloserScore:
    """For each matched fg frame mapped to a wrong picture: fg's active picture scaled to the true region
    (bicubic, by FFmpeg) against that region (true x, y) of the true bg frame and of the chosen one, at
    bg's full size, in luma; closer = smaller mean squared error. Decodes only as far as the last frame
    it needs."""
    found = np.asarray(found, np.int64)
    err = frame_errors(found, truth)
    wrong = [int(i) for i in np.flatnonzero(err > 0) if 0 <= found[i] < len(truth.labels)]
    if not wrong:
        return CloserScore(0, None, None, None)
    need_bg = {int(found[i]) for i in wrong} | {int(truth.frames[i]) for i in wrong}
    rw, rh = truth.region_size
    x, y = int(round(truth.x)), int(round(truth.y))
    bg: dict[int, np.ndarray] = {}
    with av.open(str(truth.bg)) as c:
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        for k, frame in enumerate(c.decode(vs)):
            if k in need_bg:
                bg[k] = _luma(frame)[y : y + rh, x : x + rw]
            if k >= max(need_bg):
                break
    fg: dict[int, np.ndarray] = {}
    todo = set(wrong)
    with av.open(str(truth.fg)) as c:
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        for i, frame in enumerate(c.decode(vs)):
            if i in todo:
                picture = active_picture(frame, truth.active)
                fg[i] = _luma(picture.reformat(width=rw, height=rh, format="yuv420p", interpolation="BICUBIC"))
            if i >= max(todo):
                break
    to_true, to_chosen = [], []
    for i in wrong:
        a, t, ch = fg.get(i), bg.get(int(truth.frames[i])), bg.get(int(found[i]))
        if a is None or t is None or ch is None:
            continue
        h, w = min(a.shape[0], t.shape[0]), min(a.shape[1], t.shape[1])
        to_true.append(float(np.mean(np.square(a[:h, :w] - t[:h, :w]))))
        to_chosen.append(float(np.mean(np.square(a[:h, :w] - ch[:h, :w]))))
    if not to_true:
        return CloserScore(0, None, None, None)
    closer = float(np.mean(np.asarray(to_chosen) < np.asarray(to_true)))
    return CloserScore(len(to_true), round(closer, 4), round(_psnr(float(np.mean(to_true))), 2),
                       round(_psnr(float(np.mean(to_chosen))), 2))


@dataclass(frozen=True)
class NearestScore:
    """Which bg picture fg's pixels are nearest to, among the true frame's neighbours: the true one, and the
    one vidkompy chose. Where compression leaves fg frames carrying an earlier picture, the true frame is
    not always the nearest, and a method that matches pixels cannot beat ``truth_nearest``."""

    n: int  # matched fg frames compared
    reach: int  # bg frames either side of the true one looked at
    truth_nearest: float | None  # share whose true picture is the nearest
    found_nearest: float | None  # share whose chosen picture is the nearest (a choice outside the reach is not)

    def as_dict(self) -> dict:
        return asdict(self)


def nearest_pictures(found: np.ndarray, truth: Truth, reach: int = 3) -> NearestScore:
    """For every matched fg frame: fg's active picture scaled to the true region against that region of bg
    frames true-``reach`` .. true+``reach`` (luma MSE, full size); a picture's twins (same label) count as
    it. Keeps bg's regions in memory (uint8): for the short cases."""
    found = np.asarray(found, np.int64)
    rw, rh = truth.region_size
    x, y = int(round(truth.x)), int(round(truth.y))
    with av.open(str(truth.bg)) as c:
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        bg = [np.ascontiguousarray(planes(f if f.format.name == "yuv420p" else f.reformat(format="yuv420p"))[0]
                                   [y : y + rh, x : x + rw]) for f in c.decode(vs)]
    labels = truth.labels
    hits_true = hits_found = n = 0
    with av.open(str(truth.fg)) as c:
        vs = c.streams.video[0]
        vs.thread_type = "AUTO"
        for i, frame in enumerate(c.decode(vs)):
            if i >= len(truth.frames) or i >= len(found):
                break
            k = int(truth.frames[i])
            if k < 0:
                continue
            picture = active_picture(frame, truth.active)
            a = _luma(picture.reformat(width=rw, height=rh, format="yuv420p", interpolation="BICUBIC"))
            cands = range(max(0, k - reach), min(len(bg), k + reach + 1))
            mse = [float(np.mean(np.square(a[: bg[j].shape[0], : bg[j].shape[1]] - bg[j]))) for j in cands]
            best = labels[cands[int(np.argmin(mse))]]
            n += 1
            hits_true += int(best == labels[k])
            hits_found += int(0 <= found[i] < len(labels) and labels[found[i]] == best)
    if not n:
        return NearestScore(0, reach, None, None)
    return NearestScore(n, reach, round(hits_true / n, 4), round(hits_found / n, 4))
