"""Which bg frame a timeline shows at each fg frame, from the OTIO objects alone.

An independent reading of the rule `build_timeline` writes to (and an editing
application plays by): a clip that begins at track time ``t0`` shows, at track
time ``t``, the source frame whose display interval holds
``source_range.start_time + (t - t0) * time_scalar``, counted from the media's
first frame (its ``available_range`` start, the file's timecode). It reads only
track items, source ranges, time-warp effects and media ranges: none of the
metadata `build_timeline` leaves behind, so a timeline read back from FCP7 XML or
an EDL is measured the same way.

OTIO keeps times as doubles: 25/24 is 1.0416666666666667 and a frame's boundary
can come out a hair low. The reading therefore takes each double as the simple
rational it stands for (denominator at most a million, as an NLE's rational
rates are) and evaluates exactly; a float reading could floor ``13 - 1e-15`` to 12.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import opentimelineio as otio

from vidkompy.models import Alignment

MAX_DENOMINATOR = 10**6


def exact(x: float) -> Fraction:
    """The simple rational a stored double stands for."""
    return Fraction(x).limit_denominator(MAX_DENOMINATOR)


def seconds(t: otio.opentime.RationalTime) -> Fraction:
    return exact(t.value) / exact(t.rate)


def video_track(timeline: otio.schema.Timeline, track: str | int = "bg") -> otio.schema.Track:
    """The video track named ``track`` (or the ``track``-th one); the first video track when no name matches."""
    videos = [t for t in timeline.tracks if t.kind == otio.schema.TrackKind.Video]
    if not videos:
        raise ValueError("the timeline has no video track")
    if isinstance(track, int):
        return videos[track]
    return next((t for t in videos if t.name == track), videos[0])


def timeline_rate(timeline: otio.schema.Timeline) -> Fraction:
    """The record rate: the timeline's start time's, else its first item's duration's."""
    if timeline.global_start_time is not None:
        return exact(timeline.global_start_time.rate)
    for track in timeline.tracks:
        for item in track:
            if item.source_range is not None:
                return exact(item.source_range.duration.rate)
    raise ValueError("the timeline says nothing of its rate")


def _time_scalar(item: otio.core.Item) -> Fraction:
    t = Fraction(1)
    for fx in item.effects:
        if isinstance(fx, otio.schema.LinearTimeWarp):
            t *= exact(fx.time_scalar)
        elif isinstance(fx, otio.schema.FreezeFrame):
            t = Fraction(0)
    return t


def _floors(num0: int, num1: int, den: int, count: int) -> np.ndarray:
    """``floor((num0 + k * num1) / den)`` for k < count, exactly (int64 where it fits, Python ints else)."""
    top = abs(num0) + abs(num1) * max(count, 1)
    if top < 2**62 and den < 2**62:
        k = np.arange(count, dtype=np.int64)
        return (num0 + k * num1) // den
    return np.array([(num0 + k * num1) // den for k in range(count)], dtype=np.int64)


def shown_frames(timeline: otio.schema.Timeline, *, track: str | int = "bg",
                 rate: float | Fraction | None = None) -> np.ndarray:
    """The source frame shown on ``track`` at each record frame; -1 where a gap (or nothing) shows.

    ``rate`` is the record rate (fg's); by default the timeline's. Frame numbers
    count from the clip's media's first frame (a start timecode is taken off).
    """
    v = video_track(timeline, track)
    r = exact(float(rate)) if rate is not None and not isinstance(rate, Fraction) else (rate or timeline_rate(timeline))
    pieces: list[tuple[int, np.ndarray]] = []
    # a trimmed track (an EDL read back starts its V track at its first event's record time) shifts its items
    t0 = -seconds(v.source_range.start_time) if v.source_range is not None else Fraction(0)
    for item in v:
        if isinstance(item, otio.schema.Transition) or item.source_range is None:
            continue
        dur = seconds(item.source_range.duration)
        first, stop = max(0, math.ceil(t0 * r)), math.ceil((t0 + dur) * r)
        if isinstance(item, otio.schema.Clip) and stop > first:
            ref = item.media_reference
            avail = getattr(ref, "available_range", None)
            src_rate = exact(avail.start_time.rate) if avail is not None else exact(item.source_range.start_time.rate)
            origin = math.floor(seconds(avail.start_time) * src_rate) if avail is not None else 0
            scalar = _time_scalar(item)
            # source frame position of record frame i: (start + (i / r - t0) * scalar) * src_rate = alpha + i * beta
            alpha = (seconds(item.source_range.start_time) - t0 * scalar) * src_rate
            beta = scalar * src_rate / r
            alpha += first * beta
            den = alpha.denominator * beta.denominator
            shown = _floors(alpha.numerator * beta.denominator, beta.numerator * alpha.denominator, den, stop - first)
            pieces.append((first, shown - origin))
        t0 += dur
    # not cropped to the track's trimmed duration: the EDL adapter counts it without the leading offset
    out = np.full(max(math.ceil(t0 * r), 0), -1, np.int64)
    for first, shown in pieces:
        keep = shown[: max(0, len(out) - first)]
        out[first : first + len(keep)] = keep
    return out


def clips(timeline: otio.schema.Timeline, track: str | int = "bg") -> list[otio.schema.Clip]:
    return [c for c in video_track(timeline, track) if isinstance(c, otio.schema.Clip)]


@dataclass(frozen=True)
class Reproduction:
    """How much of a frame map a timeline reproduces, and how finely it had to cut bg for it."""

    matched: int  # matched fg frames
    reproduced: int  # of those, shown on V1 as the map's bg frame
    clips: int  # clips on V1
    seconds: float  # the map's length
    wrong: tuple[int, ...] = ()  # the first fg frames that are not reproduced

    @property
    def share(self) -> float:
        return self.reproduced / self.matched if self.matched else 1.0

    @property
    def clips_per_minute(self) -> float:
        return self.clips / (self.seconds / 60) if self.seconds > 0 else 0.0


def reproduction(timeline: otio.schema.Timeline, alignment: Alignment | np.ndarray,
                 matched: np.ndarray | None = None, *, rate: float | Fraction | None = None,
                 track: str | int = "bg") -> Reproduction:
    """Compare what ``timeline`` shows with the map (an `Alignment`, or frames plus matched flags)."""
    if isinstance(alignment, Alignment):
        frames, matched = alignment.frames, alignment.matched
    else:
        frames = alignment
    frames = np.asarray(frames, np.int64)
    matched = np.ones(len(frames), bool) if matched is None else np.asarray(matched, bool)
    r = exact(float(rate)) if rate is not None and not isinstance(rate, Fraction) else (rate or timeline_rate(timeline))
    shown = shown_frames(timeline, track=track, rate=r)
    if len(shown) < len(frames):
        shown = np.concatenate([shown, np.full(len(frames) - len(shown), -1, np.int64)])
    ok = (shown[: len(frames)] == frames) & matched
    wrong = np.flatnonzero(matched & ~ok)
    return Reproduction(int(matched.sum()), int(ok.sum()), len(clips(timeline, track)), float(len(frames) / r),
                        tuple(int(i) for i in wrong[:20]))
