"""The frame map as an OpenTimelineIO timeline: bg cut and retimed under fg, fg placed on top.

The timeline runs at fg's frame rate from fg's first frame. Track V1 ("bg")
holds bg cut into clips wherever the map jumps, holds or changes speed; each
clip is one straight stretch of the map. Track V2 ("fg") holds fg whole, with
its placement in ``metadata["vidkompy"]``; A1 the audio a render would carry.
Unmatched fg ranges (inserted shots) are gaps on V1. Markers flag unmatched
ranges, stretches of low match score and every jump in the map.

What an editing application shows on V1 at fg frame ``i`` must be bg frame
``frames[i]``. OTIO's rule (and an NLE's) for a clip with a `LinearTimeWarp`:
the source time at ``t`` seconds into the clip is ``source_range.start_time +
t * time_scalar``, and the frame shown is the one whose display interval
``[k / bg_fps, (k + 1) / bg_fps)`` holds it. A clip's ``source_range.duration``
is its length on the track (OTIO: a time warp does not change an item's
duration), so it is counted in fg frames; its start is in bg frames at bg's
rate. In bg frames the rule reads ``floor(start + k * step)`` for the clip's
``k``-th fg frame, ``step = time_scalar * bg_fps / fg_fps``: each clip is a
digital straight line through the map. `fit_stretches` finds those lines with
integer arithmetic (no float drift over an hour), and where the exact map is
not one line (a held frame, a tie broken the other way) it splits rather than
misplace a frame; `conform_stretches` chooses the speeds it tries, so that an
unbroken shot at a constant speed is one clip and a held frame stays a cut.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio

from vidkompy.errors import SettingsError
from vidkompy.models import Alignment, Geometry, VideoInfo

NAMESPACE = "vidkompy"
AUDIO_MODES = ("fg", "bg", "none")
# Time scalars (bg seconds per fg second) worth trying on every map: real time, and the PAL speed-up
# (24 fps film run at 25) and its reverse. 23.976 <-> 24 and 29.97 <-> 30 need none: there the map
# steps one bg frame per fg frame, which a step of 1 (below) already is.
TIME_SCALARS = (Fraction(1), Fraction(25, 24), Fraction(24, 25))
STEPS = (Fraction(1), Fraction(2), Fraction(1, 2))  # bg frames per fg frame: one each, every other one, each twice
PERIODS = 3  # a measured speed p/q makes a stretch only over at least this many of its q-frame patterns
FIRST_WINDOW = 32  # fg frames a stretch is first tested over; doubled while it holds
ESTIMATE_SECONDS = 2.0  # the window the local speed is measured over


def rate_of(fps: float | Fraction) -> Fraction:
    """A frame rate as the rational it stands for (30000/1001 rather than 29.97002997...)."""
    return fps if isinstance(fps, Fraction) else Fraction(fps).limit_denominator(1001)


@dataclass(frozen=True)
class Stretch:
    """fg frames ``[first, stop)`` shown from one straight line through bg.

    fg frame ``i`` shows bg frame ``floor(start + (i - first) * step)``: ``start`` is
    the line's bg position (in bg frames, possibly between two) at ``first``,
    ``step`` the bg frames it advances per fg frame. Exact rationals, so that an hour
    of a 30000/1001 map accumulates no rounding.
    """

    first: int
    stop: int
    start: Fraction
    step: Fraction
    # every start in [low, high) gives the same frames: room for a format that holds whole frames only
    low: Fraction | None = None
    high: Fraction | None = None

    @property
    def length(self) -> int:
        return self.stop - self.first

    def frame(self, i: int) -> int:
        """The bg frame this line shows at fg frame ``i``."""
        return math.floor(self.start + (i - self.first) * self.step)

    def frames(self) -> np.ndarray:
        """The bg frames of all its fg frames, computed exactly."""
        p, q = self.step.numerator, self.step.denominator
        a, b = self.start.numerator, self.start.denominator
        k = np.arange(self.length, dtype=object)
        return np.array((a * q + k * p * b) // (b * q), dtype=np.int64)

    def time_scalar(self, fg_rate: Fraction, bg_rate: Fraction) -> Fraction:
        """bg seconds per fg second: the clip's `LinearTimeWarp`."""
        return self.step * fg_rate / bg_rate


def matched_runs(matched: np.ndarray) -> list[tuple[int, int]]:
    """Maximal ``[start, stop)`` runs of True."""
    m = np.concatenate([[False], np.asarray(matched, bool), [False]]).astype(np.int8)
    d = np.diff(m)
    return [(int(a), int(b)) for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True)]


def _simplest(lo: Fraction, hi: Fraction) -> Fraction:
    """The rational with the smallest denominator in the closed interval ``[lo, hi]`` (``0 <= lo <= hi``)."""
    n = math.floor(lo)
    if n == lo:
        return Fraction(n)
    if n + 1 <= hi:
        return Fraction(n + 1)
    return n + 1 / _simplest(1 / (hi - n), 1 / (lo - n))


def _intercept(lo: int, hi: int, q: int) -> Fraction:
    """A line's start in ``[lo / q, hi / q)``: a whole frame where one fits, else the simplest fraction.

    A whole frame is what an EDL or an XML in-point can hold; only a cadence whose
    phase falls between two frames (25 fps shown at 30, say) needs a fraction.
    """
    c = -(-lo // q)
    if c * q < hi:
        return Fraction(c)
    x = _simplest(Fraction(lo, q), Fraction(hi, q))
    return x if x * q < hi else Fraction(lo, q)


def _reach(f: np.ndarray, s: int, p: int, q: int) -> tuple[int, int, int]:
    """How many frames from ``s`` on the line of step ``p/q`` reproduces exactly, and its start's bounds.

    fg frame ``s + k`` shows ``f[s + k]`` iff ``q f - k p <= q c < q f - k p + q``, so the
    line's start ``c`` (times q) lies in ``[max, min + q)`` over the stretch: integers only.
    Returns ``(length, lo, hi)`` with ``c`` in ``[lo / q, hi / q)``.
    """
    n = len(f)
    width = FIRST_WINDOW
    while True:
        end = min(n, s + width)
        k = np.arange(end - s, dtype=np.int64)
        a = q * f[s:end] - k * p
        lo = np.maximum.accumulate(a)
        hi = np.minimum.accumulate(a) + q
        bad = np.flatnonzero(lo >= hi)
        if bad.size:
            j = int(bad[0])  # >= 1: a single frame always fits
            return j, int(lo[j - 1]), int(hi[j - 1])
        if end == n:
            return end - s, int(lo[-1]), int(hi[-1])
        width *= 2


def _fit_run(f: np.ndarray, offset: int, ratios: Sequence[tuple[int, int, int]]) -> list[Stretch]:
    """Greedy exact stretches over one matched run ``f`` (fg frames ``offset`` on).

    ``ratios`` are ``(p, q, least)``: step ``p / q``, usable for a stretch of at least
    ``least`` frames. The first step is always usable (a single frame fits any line).
    """
    out: list[Stretch] = []
    s = 0
    while s < len(f):
        best: tuple[int, int, int, int, int] | None = None
        for p, q, least in ratios:
            n, lo, hi = _reach(f, s, p, q)
            if best is not None and n < least:
                continue
            if best is None or n > best[0]:
                best = (n, lo, hi, p, q)
            if n == len(f) - s:
                break  # nothing reaches further
        assert best is not None
        n, lo, hi, p, q = best
        out.append(Stretch(offset + s, offset + s + n, _intercept(lo, hi, q), Fraction(p, q),
                           Fraction(lo, q), Fraction(hi, q)))
        s += n
    return out


def fit_stretches(frames: np.ndarray, matched: np.ndarray | None = None, *,
                  steps: Sequence[Fraction] = (Fraction(1),)) -> list[Stretch]:
    """The matched frames as straight stretches, each as long as one exact line of the given steps allows.

    Greedy from each stretch's first frame: of the candidate ``steps`` (bg frames
    per fg frame) the one that reproduces the most frames exactly wins (the earlier
    on a tie), and the next stretch starts where it fails. A single frame always
    fits, so every matched frame is reproduced. Unmatched frames belong to no
    stretch. `conform_stretches` chooses the steps.
    """
    frames = np.asarray(frames, np.int64)
    matched = np.ones(len(frames), bool) if matched is None else np.asarray(matched, bool)
    if len(matched) != len(frames):
        raise ValueError(f"{len(frames)} frames but {len(matched)} matched flags")
    ratios = [(int(x.numerator), int(x.denominator), 0) for x in steps]
    out: list[Stretch] = []
    for a, b in matched_runs(matched):
        out += _fit_run(frames[a:b], a, ratios)
    return out


def _line_through(f: np.ndarray) -> tuple[float, float] | None:
    """The open interval of steps whose lines (some start each) pass exactly through all of ``f``; None if none.

    ``f`` lies on ``floor(c + k m)`` iff ``g(m) = max(f - k m) - min(f - k m) < 1``; g is
    convex, so a ternary search finds its minimum and bisections the interval's ends.
    The end-to-end slope bounds the search: ``m`` lies within ``1 / (n - 1)`` of it.
    """
    n = len(f)
    if n < 3:
        return None
    k = np.arange(n, dtype=np.float64)
    fv = f.astype(np.float64)

    def g(m: float) -> float:
        v = fv - k * m
        return float(v.max() - v.min())

    span = float(f[-1] - f[0])
    lo, hi = (span - 1) / (n - 1), (span + 1) / (n - 1)
    a, b = lo, hi
    for _ in range(100):
        m1, m2 = a + (b - a) / 3, b - (b - a) / 3
        if g(m1) < g(m2):
            b = m2
        else:
            a = m1
    best = (a + b) / 2
    if g(best) >= 1 - 1e-9:
        return None

    def edge(inside: float, outside: float) -> float:
        for _ in range(80):
            mid = (inside + outside) / 2
            if g(mid) < 1:
                inside = mid
            else:
                outside = mid
        return inside

    return edge(best, lo), edge(best, hi)


def _chains(frames: np.ndarray, stretches: Sequence[Stretch]) -> list[tuple[int, int]]:
    """``[first, stop)`` of each unbroken piece: stretches that continue one another (no gap, no jump)."""
    out: list[tuple[int, int]] = []
    prev: Stretch | None = None
    for s in stretches:
        if prev is not None and s.first == prev.stop and abs(int(frames[s.first]) - prev.frame(s.first)) <= 1:
            out[-1] = (out[-1][0], s.stop)
        else:
            out.append((s.first, s.stop))
        prev = s
    return out


def _measured_steps(f: np.ndarray, fg_rate: Fraction, bg_rate: Fraction) -> list[Fraction]:
    """A piece's own speeds (bg frames per fg frame), each snapped to the simplest fraction its precision allows.

    Its end-to-end slope (held once it still gives its true speed, 1 rather than
    0.99), the median slope over ``ESTIMATE_SECONDS`` windows, and the simplest time
    scalar of the exact line through all of it where there is one (73/100, 1000/1001).
    """
    n = len(f)
    if n < 3:
        return []
    span = int(f[-1] - f[0])
    out = [_simplest(max(Fraction(span - 1, n - 1), Fraction(0)), Fraction(span + 1, n - 1))]
    w = int(min(n - 1, max(2, round(ESTIMATE_SECONDS * float(fg_rate)))))
    d = f[w:] - f[:-w]
    med = Fraction(int(round(float(np.median(d)) * 2)), 2 * w)
    out.append(_simplest(max(med - Fraction(1, 2 * w), Fraction(0)), med + Fraction(1, 2 * w)))
    ends = _line_through(f)
    if ends is not None:
        tl, tr = (Fraction(e) * fg_rate / bg_rate for e in ends)
        margin = (tr - tl) / 1000
        out.append(_simplest(tl + margin, tr - margin) * bg_rate / fg_rate)
    return [x for x in out if x > 0]


def conform_stretches(frames: np.ndarray, matched: np.ndarray | None, fg_rate: Fraction, bg_rate: Fraction,
                      *, periods: int = PERIODS) -> list[Stretch]:
    """The stretches V1 is cut into: as few as exact lines at plausible speeds allow.

    First with the trusted steps only (real time, ``bg_fps / fg_fps`` bg frames per
    fg frame, and one bg frame per fg frame, which covers PAL and 1000/1001
    conversions), which finds the pieces between jumps. A piece fitted in more than
    one stretch is fitted again with more speeds: its own measured ones, the PAL
    speed-up at real time, and 2 or 1/2 frames per frame. Such a speed ``p / q``
    makes a stretch only where it runs through at least ``periods`` of its patterns
    (``q`` frames each): over fewer, a line a hair slower fits a held frame as well
    as the true speed does, and a held frame is a cut, not a speed.
    """
    frames = np.asarray(frames, np.int64)
    nominal = bg_rate / fg_rate
    trusted = [nominal] if nominal == 1 else [nominal, Fraction(1)]
    first = fit_stretches(frames, matched, steps=trusted)
    # the trusted step most of the map follows goes first: on a tie a short stretch keeps the usual speed
    cover = {t: sum(s.length for s in first if s.step == t) for t in trusted}
    trusted.sort(key=lambda t: -cover[t])
    presets = [nominal * t for t in TIME_SCALARS[1:]] + list(STEPS)
    out: list[Stretch] = []
    by_first = {s.first: s for s in first}
    for a, b in _chains(frames, first):
        n = b - a
        if by_first[a].stop == b:
            out.append(by_first[a])
            continue
        steps = list(trusted)
        for x in (*_measured_steps(frames[a:b], fg_rate, bg_rate), *presets):
            if x not in steps and n >= periods * x.denominator:
                steps.append(x)
        if len(steps) == len(trusted):
            out += [s for s in first if a <= s.first < b]
            continue
        ratios = [(int(x.numerator), int(x.denominator), 0 if x in trusted else periods * int(x.denominator))
                  for x in steps]
        out += _fit_run(frames[a:b], a, ratios)
    return out


# -- the timeline -------------------------------------------------------------------------------------


def _url(path: str) -> str:
    return Path(path).expanduser().absolute().as_uri()


def _rt(value: int | Fraction, rate: Fraction) -> otio.opentime.RationalTime:
    return otio.opentime.RationalTime(float(value), float(rate))


def _start_frame(timecode: str | None, rate: Fraction) -> int:
    """The first frame's number from an ``HH:MM:SS:FF`` (``;`` for drop frame) timecode; 0 without one."""
    if not timecode:
        return 0
    try:
        return int(round(otio.opentime.from_timecode(timecode, float(rate)).value))
    except Exception as exc:  # OTIO raises its own ValueError subclasses, and TypeError on odd rates
        raise SettingsError(f"timecode {timecode!r} does not fit {float(rate):g} fps: {exc}") from None


def _reference(info: VideoInfo, rate: Fraction, tc: int) -> otio.schema.ExternalReference:
    return otio.schema.ExternalReference(
        target_url=_url(info.path),
        available_range=otio.opentime.TimeRange(_rt(tc, rate), _rt(info.n_frames, rate)),
        metadata={NAMESPACE: {"width": info.width, "height": info.height, "fps": info.fps,
                              "has_audio": info.has_audio, "rotation": info.rotation}},
    )


def _marker(kind: str, first: int, length: int, rate: Fraction, name: str, color: str,
            **info: object) -> otio.schema.Marker:
    return otio.schema.Marker(
        name=name,
        marked_range=otio.opentime.TimeRange(_rt(first, rate), _rt(length, rate)),
        color=color,
        metadata={NAMESPACE: {"kind": kind, "first": first, "last": first + max(length, 1) - 1, **info}},
    )


def _runs_below(score: np.ndarray, matched: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    return matched_runs((np.asarray(score, np.float64) < threshold) & matched)


def placement(alignment: Alignment, fg: VideoInfo, geometry: Geometry | None = None) -> dict[str, object]:
    """fg's placement on bg's canvas, in bg pixels: what V2's metadata and FCP's Basic Motion carry.

    ``picture`` is where fg's active picture (inside any black bars) lands, ``frame``
    where fg's whole frame would land at the same scale; ``crop`` is what of fg's
    frame lies outside its picture (left, top, right, bottom, fg pixels). ``geometry``:
    a placement of its own (a stretch's, where it moves) instead of ``alignment``'s.
    """
    g = geometry or alignment.geometry
    ax, ay, aw, ah = alignment.active if alignment.active is not None else (0, 0, fg.width, fg.height)
    s = float(g.scale)
    return {
        "x": float(g.x),
        "y": float(g.y),
        "scale": s,
        "active": None if alignment.active is None else [int(v) for v in alignment.active],
        "confidence": float(alignment.confidence),
        "picture": {"left": float(g.x), "top": float(g.y), "width": aw / s, "height": ah / s},
        "frame": {"left": float(g.x) - ax / s, "top": float(g.y) - ay / s, "width": fg.width / s,
                  "height": fg.height / s},
        "crop": [int(ax), int(ay), int(fg.width - ax - aw), int(fg.height - ay - ah)],
        "fg_size": [fg.width, fg.height],
    }


def build_timeline(
    alignment: Alignment,
    fg: VideoInfo,
    bg: VideoInfo,
    *,
    audio: str = "fg",
    name: str | None = None,
    confidence_threshold: float = 0.75,
    fg_timecode: str | None = None,
    bg_timecode: str | None = None,
    steps: Sequence[Fraction] | None = None,
) -> otio.schema.Timeline:
    """The conform as an OTIO timeline: V1 bg cut and retimed, V2 fg placed, A1 the render's audio.

    Parameters
    ----------
    alignment
        The answer: ``frames`` (bg frame per fg frame), ``matched``, ``score``, geometry, ``active``.
    fg, bg
        The probes: paths (written as absolute file URLs), rates, frame counts, sizes, audio.
    audio
        Whose audio A1 carries, as compose's ``--audio``: "fg" (fg's, or bg's when fg has
        none), "bg" (bg's from the first mapped frame, untimed) or "none".
    name
        The timeline's name; ``"<fg stem> over <bg stem>"`` by default.
    confidence_threshold
        Matched stretches whose score falls below it get a marker.
    fg_timecode, bg_timecode
        The files' start timecodes (``HH:MM:SS:FF``), where they have one: the timeline then
        starts at fg's and V1's source ranges count from bg's, as an NLE's media pool does.
    steps
        Candidate speeds (bg frames per fg frame) to fit with `fit_stretches` instead of
        `conform_stretches`'s choice.

    Returns
    -------
    A timeline in which every matched fg frame ``i`` shows bg frame ``frames[i]`` on V1
    (see the module's docstring for the rule); `vidkompy.conform.shown_frames` checks it.
    """
    if audio not in AUDIO_MODES:
        raise SettingsError(f"unknown audio mode {audio!r}; use one of {', '.join(AUDIO_MODES)}")
    frames = np.asarray(alignment.frames, np.int64)
    n = len(frames)
    if n == 0:
        raise ValueError("the alignment maps no fg frames")
    matched = np.ones(n, bool) if alignment.matched is None else np.asarray(alignment.matched, bool)
    if matched.any() and (frames[matched].min() < 0 or frames[matched].max() >= bg.n_frames):
        raise ValueError(f"matched frames outside bg's {bg.n_frames} frames")
    fg_rate, bg_rate = rate_of(fg.fps), rate_of(bg.fps)
    fg_tc, bg_tc = _start_frame(fg_timecode, fg_rate), _start_frame(bg_timecode, bg_rate)
    bg_name, fg_name = Path(bg.path).stem, Path(fg.path).stem
    if steps is None:
        stretches = conform_stretches(frames, matched, fg_rate, bg_rate)
    else:
        stretches = fit_stretches(frames, matched, steps=steps)

    timeline = otio.schema.Timeline(name=name or f"{fg_name} over {bg_name}")
    timeline.global_start_time = _rt(fg_tc, fg_rate)
    timeline.metadata[NAMESPACE] = {
        "fg": _url(fg.path),
        "bg": _url(bg.path),
        "fg_rate": str(fg_rate),
        "bg_rate": str(bg_rate),
        "fg_size": [fg.width, fg.height],
        "bg_size": [bg.width, bg.height],
        "fg_timecode": fg_timecode,
        "bg_timecode": bg_timecode,
        "audio": audio,
        "confidence": float(alignment.confidence),
        "confidence_threshold": float(confidence_threshold),
    }

    # V1: bg, one clip per straight stretch, a gap per unmatched range
    v1 = otio.schema.Track(name="bg", kind=otio.schema.TrackKind.Video)
    markers: list[otio.schema.Marker] = []
    by_first = {s.first: s for s in stretches}
    unmatched = [(a, b) for a, b in matched_runs(~matched)]
    gaps = {a: b for a, b in unmatched}
    i = 0
    previous: Stretch | None = None
    while i < n:
        if i in gaps:
            b = gaps[i]
            marker = _marker("unmatched", i, b - i, fg_rate, f"unmatched fg {i}-{b - 1}", otio.schema.MarkerColor.RED)
            gap = otio.schema.Gap(name=f"unmatched fg {i}-{b - 1}",
                                  source_range=otio.opentime.TimeRange(_rt(0, fg_rate), _rt(b - i, fg_rate)))
            gap.markers.append(marker.clone())
            v1.append(gap)
            markers.append(marker)
            i, previous = b, None
            continue
        s = by_first[i]
        t = s.time_scalar(fg_rate, bg_rate)
        bg_first, bg_last = int(frames[s.first]), int(frames[s.stop - 1])
        clip = otio.schema.Clip(
            name=f"{bg_name} {bg_first}-{bg_last}",
            media_reference=_reference(bg, bg_rate, bg_tc),
            source_range=otio.opentime.TimeRange(_rt(bg_tc + s.start, bg_rate), _rt(s.length, fg_rate)),
            metadata={NAMESPACE: {"fg_first": s.first, "fg_last": s.stop - 1, "bg_first": bg_first,
                                  "bg_last": bg_last, "start": str(s.start), "step": str(s.step),
                                  "time_scalar": str(t),
                                  "starts": None if s.low is None else [str(bg_tc + s.low), str(bg_tc + s.high)]}},
        )
        clip.effects.append(otio.schema.LinearTimeWarp(name="speed", time_scalar=float(t)))
        v1.append(clip)
        if previous is not None:
            expected = previous.frame(s.first)
            if abs(bg_first - expected) > 1:
                markers.append(_marker("jump", s.first, 0, fg_rate, f"jump to bg {bg_first}",
                                       otio.schema.MarkerColor.CYAN, bg_from=int(frames[s.first - 1]),
                                       bg_to=bg_first))
        i, previous = s.stop, s

    # V2: fg whole and untimed, its placement for the editor (and FCP's Basic Motion, in formats); where the
    # placement moves, one clip per stretch, each with its own (a moving one also says where it ends)
    v2 = otio.schema.Track(name="fg", kind=otio.schema.TrackKind.Video)
    for first, stop, meta in _fg_clips(alignment, fg, n):
        v2.append(otio.schema.Clip(
            name=fg_name if stop - first == n else f"{fg_name} {first}-{stop - 1}",
            media_reference=_reference(fg, fg_rate, fg_tc),
            source_range=otio.opentime.TimeRange(_rt(fg_tc + first, fg_rate), _rt(stop - first, fg_rate)),
            metadata={NAMESPACE: meta},
        ))
    timeline.tracks.append(v1)
    timeline.tracks.append(v2)

    a1 = _audio_track(audio, fg, bg, frames, n, fg_rate, bg_rate, fg_tc, bg_tc)
    if a1 is not None:
        timeline.tracks.append(a1)

    if alignment.score is not None:
        score = np.asarray(alignment.score, np.float64)
        for a, b in _runs_below(score, matched, confidence_threshold):
            markers.append(_marker("low_score", a, b - a, fg_rate, f"score below {confidence_threshold:g}",
                                   otio.schema.MarkerColor.YELLOW, min_score=round(float(score[a:b].min()), 4)))
    markers.sort(key=lambda m: m.marked_range.start_time.value)
    timeline.tracks.markers.extend(markers)
    return timeline


def _fg_clips(alignment: Alignment, fg: VideoInfo, n: int) -> list[tuple[int, int, dict[str, object]]]:
    """V2's clips as (first fg frame, stop, placement metadata): one for a fixed placement, else one per placement
    stretch, an unmatched range held at the placement before it (as the overlay holds it)."""
    if alignment.placement is None:
        return [(0, n, placement(alignment, fg))]
    stretches = alignment.placement_stretches()
    if not stretches:
        return [(0, n, placement(alignment, fg))]
    out = []
    for k, s in enumerate(stretches):
        first = 0 if k == 0 else s.first
        stop = n if k == len(stretches) - 1 else stretches[k + 1].first
        meta = placement(alignment, fg, s.start)
        meta["fg_first"], meta["fg_last"] = s.first, s.last
        if s.moves:  # linear from start to end over the stretch's frames: an editor's two keyframes
            meta["motion"] = {"end": placement(alignment, fg, s.end), "from_frame": s.first, "to_frame": s.last}
        out.append((first, stop, meta))
    return out


def _audio_track(audio: str, fg: VideoInfo, bg: VideoInfo, frames: np.ndarray, n: int, fg_rate: Fraction,
                 bg_rate: Fraction, fg_tc: int, bg_tc: int) -> otio.schema.Track | None:
    """A1 as compose would mux it: fg's own audio whole, or bg's continuous from the first mapped frame."""
    source = None
    if audio == "fg":
        source = "fg" if fg.has_audio else ("bg" if bg.has_audio else None)
    elif audio == "bg" and bg.has_audio:
        source = "bg"
    if source is None:
        return None
    track = otio.schema.Track(name="audio", kind=otio.schema.TrackKind.Audio)
    if source == "fg":
        clip = otio.schema.Clip(name=Path(fg.path).stem, media_reference=_reference(fg, fg_rate, fg_tc),
                                source_range=otio.opentime.TimeRange(_rt(fg_tc, fg_rate), _rt(n, fg_rate)))
    else:
        first = int(frames[0])
        # bg's sound is not stretched with the map: it plays on in real time, cut at fg's or bg's end
        left = math.floor(Fraction(bg.n_frames - first) / bg_rate * fg_rate)
        length = min(n, left)
        if length <= 0:
            return None
        clip = otio.schema.Clip(name=Path(bg.path).stem, media_reference=_reference(bg, bg_rate, bg_tc),
                                source_range=otio.opentime.TimeRange(_rt(bg_tc + first, bg_rate),
                                                                     _rt(length, fg_rate)))
    clip.metadata[NAMESPACE] = {"audio": source}
    track.append(clip)
    return track
