"""The OTIO timeline: every matched fg frame shows its bg frame, with one clip per straight stretch."""

from __future__ import annotations

import math
import time
from fractions import Fraction

import numpy as np
import opentimelineio as otio
import pytest

from tests.conform.cases import CASES, Case, case, sample_truth
from vidkompy.conform import build_timeline, conform_stretches, fit_stretches, reproduction, shown_frames
from vidkompy.conform.evaluate import clips, exact
from vidkompy.errors import SettingsError
from vidkompy.models import Alignment, Geometry


def _kinds(timeline: otio.schema.Timeline) -> list[str]:
    return [m.metadata["vidkompy"]["kind"] for m in timeline.tracks.markers]


@pytest.mark.parametrize("name", list(CASES))
def test_reproduces_every_matched_frame(name: str) -> None:
    c = CASES[name]
    timeline = build_timeline(c.alignment, c.fg, c.bg)
    r = reproduction(timeline, c.alignment)
    assert r.share == 1.0, r.wrong
    assert r.matched == int(np.sum(c.alignment.matched if c.alignment.matched is not None else len(c.frames)))
    v1 = clips(timeline)
    # one clip per unbroken constant-speed stretch, at the exact speed
    assert [exact(cl.effects[0].time_scalar) for cl in v1] == list(c.speeds)
    assert [Fraction(cl.metadata["vidkompy"]["time_scalar"]) for cl in v1] == list(c.speeds)
    assert sum(isinstance(i, otio.schema.Gap) for i in timeline.tracks[0]) == c.gaps
    assert _kinds(timeline).count("unmatched") == c.gaps
    assert _kinds(timeline).count("jump") == c.jumps
    # the timeline is fg's length, at fg's rate, V1 and V2 alike
    assert timeline.tracks[0].duration().to_frames() == len(c.frames)
    assert timeline.tracks[1].duration().to_frames() == len(c.frames)
    assert timeline.global_start_time.rate == pytest.approx(c.fg.fps)


def test_clip_ranges_are_bg_frames_at_bg_rate_and_fg_frames_long() -> None:
    c = CASES["pal_recut"]
    timeline = build_timeline(c.alignment, c.fg, c.bg)
    first, second = clips(timeline)
    assert first.source_range.start_time == otio.opentime.RationalTime(12, 24)
    assert first.source_range.duration == otio.opentime.RationalTime(120, 25)
    assert second.source_range.start_time == otio.opentime.RationalTime(300, 24)
    assert timeline.tracks[0].range_of_child(second).start_time == otio.opentime.RationalTime(120, 25)
    warp = first.effects[0]
    assert isinstance(warp, otio.schema.LinearTimeWarp) and warp.time_scalar == 25 / 24
    ref = first.media_reference
    assert ref.target_url == "file:///media/pal_recut/bg.mov"
    assert ref.available_range == otio.opentime.TimeRange(otio.opentime.RationalTime(0, 24),
                                                          otio.opentime.RationalTime(c.bg.n_frames, 24))
    jump = [m for m in timeline.tracks.markers if m.metadata["vidkompy"]["kind"] == "jump"][0]
    assert jump.marked_range.start_time.to_frames() == 120
    assert jump.metadata["vidkompy"]["bg_from"] == 131 and jump.metadata["vidkompy"]["bg_to"] == 300


def test_cadence_between_frames_starts_between_frames() -> None:
    """25 fps shown at 30: the 5-in-6 cadence's phase needs a start half a bg frame in."""
    c = CASES["25_over_30"]
    (clip,) = clips(build_timeline(c.alignment, c.fg, c.bg))
    assert clip.source_range.start_time.value == 10.5
    assert clip.metadata["vidkompy"]["step"] == "5/6"


def test_inserted_shot_is_a_gap_with_a_marker() -> None:
    c = CASES["inserted"]
    timeline = build_timeline(c.alignment, c.fg, c.bg)
    v1 = timeline.tracks[0]
    gap = v1[1]
    assert isinstance(gap, otio.schema.Gap)
    assert v1.range_of_child(gap) == otio.opentime.TimeRange(otio.opentime.RationalTime(100, 25),
                                                             otio.opentime.RationalTime(50, 25))
    assert [m.metadata["vidkompy"]["kind"] for m in gap.markers] == ["unmatched"]
    shown = shown_frames(timeline)
    assert (shown[100:150] == -1).all()
    assert shown[99] == c.frames[99] and shown[150] == c.frames[150]


def test_fg_longer_than_bg_has_gaps_with_markers_at_both_ends() -> None:
    c = CASES["longer"]
    timeline = build_timeline(c.alignment, c.fg, c.bg)
    v1 = list(timeline.tracks[0])
    assert [type(i).__name__ for i in v1] == ["Gap", "Clip", "Gap"]
    marks = [m for m in timeline.tracks.markers if m.metadata["vidkompy"]["kind"] == "unmatched"]
    assert [(m.marked_range.start_time.to_frames(), m.marked_range.duration.to_frames()) for m in marks] == [
        (0, 25), (275, 25)]


def test_held_frame_is_a_cut_not_a_slower_speed() -> None:
    for n in (40, 60, 200, 1000):
        half = n // 2
        frames = np.concatenate([np.arange(half), [half - 1], np.arange(half, n - 1)])
        timeline = build_timeline(*_abc(case("h", frames, 25, 25, ())))
        assert [exact(c.effects[0].time_scalar) for c in clips(timeline)] == [1, 1], n
        assert reproduction(timeline, frames).share == 1.0


def _abc(c: Case) -> tuple:
    return c.alignment, c.fg, c.bg


def plain(v: object) -> object:
    """OTIO's metadata containers as plain dicts and lists."""
    if hasattr(v, "items"):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, str):
        return v
    try:
        return [plain(x) for x in v]  # type: ignore[union-attr]
    except TypeError:
        return v


def test_letterboxed_fg_carries_its_active_picture() -> None:
    c = CASES["letterbox"]
    timeline = build_timeline(c.alignment, c.fg, c.bg)
    fg_clip = timeline.tracks[1][0]
    place = plain(fg_clip.metadata["vidkompy"])
    assert place["active"] == [0, 15, 160, 90]
    assert (place["x"], place["y"], place["scale"]) == (72.0, 40.0, 0.5)
    # the active picture (160x90 fg pixels) covers 320x180 bg pixels at (72, 40); the whole frame starts 30 px above
    assert place["picture"] == {"left": 72.0, "top": 40.0, "width": 320.0, "height": 180.0}
    assert place["frame"] == {"left": 72.0, "top": 10.0, "width": 320.0, "height": 240.0}
    assert place["crop"] == [0, 15, 0, 15]
    assert fg_clip.source_range.duration.to_frames() == len(c.frames)
    assert len(fg_clip.effects) == 0  # untimed


def test_low_score_stretch_has_a_marker() -> None:
    c = CASES["low_score"]
    timeline = build_timeline(c.alignment, c.fg, c.bg, confidence_threshold=0.75)
    (m,) = [m for m in timeline.tracks.markers if m.metadata["vidkompy"]["kind"] == "low_score"]
    assert (m.marked_range.start_time.to_frames(), m.marked_range.duration.to_frames()) == (60, 20)
    assert m.metadata["vidkompy"]["min_score"] == 0.4
    assert not [m for m in build_timeline(c.alignment, c.fg, c.bg, confidence_threshold=0.3).tracks.markers]


@pytest.mark.parametrize(("audio", "has_fg", "has_bg", "expect"), [
    ("fg", True, True, "fg"), ("fg", False, True, "bg"), ("fg", False, False, None),
    ("bg", True, True, "bg"), ("bg", True, False, None), ("none", True, True, None),
])
def test_audio_track_follows_compose(audio: str, has_fg: bool, has_bg: bool, expect: str | None) -> None:
    import dataclasses

    c = CASES["recut"]
    fg = dataclasses.replace(c.fg, has_audio=has_fg)
    bg = dataclasses.replace(c.bg, has_audio=has_bg)
    timeline = build_timeline(c.alignment, fg, bg, audio=audio)
    tracks = [t for t in timeline.tracks if t.kind == otio.schema.TrackKind.Audio]
    if expect is None:
        assert tracks == []
        return
    (clip,) = tracks[0]
    assert clip.metadata["vidkompy"]["audio"] == expect
    assert clip.media_reference.target_url.endswith(f"/{expect}.mov")
    if expect == "bg":  # bg's own sound from the first mapped frame, not retimed
        assert clip.source_range.start_time == otio.opentime.RationalTime(10, 25)
        assert len(clip.effects) == 0
    assert clip.source_range.duration.to_frames() == len(c.frames)


def test_timecodes_offset_sources_and_the_timeline() -> None:
    c = CASES["pal"]
    timeline = build_timeline(c.alignment, c.fg, c.bg, fg_timecode="10:00:00:00", bg_timecode="01:00:00:00")
    assert timeline.global_start_time == otio.opentime.RationalTime(10 * 3600 * 25, 25)
    (clip,) = clips(timeline)
    assert clip.source_range.start_time == otio.opentime.RationalTime(3600 * 24 + 12, 24)
    assert clip.media_reference.available_range.start_time == otio.opentime.RationalTime(3600 * 24, 24)
    assert reproduction(timeline, c.alignment).share == 1.0
    with pytest.raises(SettingsError):
        build_timeline(c.alignment, c.fg, c.bg, bg_timecode="01:00:00:99")


def test_constant_speeds_outside_the_usual_ones_are_one_clip() -> None:
    frames = np.array([(73 * i + 30) // 100 for i in range(1000)])  # 73 % slow motion
    (clip,) = clips(build_timeline(*_abc(case("slow", frames, 25, 25, ()))))
    assert clip.metadata["vidkompy"]["time_scalar"] == "73/100"
    frames = np.array([(1000 * i + 200) // 1001 for i in range(10000)])  # 24 -> 23.976 slow-down, same clocks
    (clip,) = clips(build_timeline(*_abc(case("slow", frames, 24, 24, ()))))
    assert clip.metadata["vidkompy"]["time_scalar"] == "1000/1001"


def test_an_hour_is_one_clip_without_drift_and_quick() -> None:
    n = 30 * 3600
    frames = sample_truth(n, 30, 25)
    c = case("hour", frames, 30, 25, ())
    t0 = time.perf_counter()
    timeline = build_timeline(*_abc(c))
    built = time.perf_counter() - t0
    r = reproduction(timeline, c.alignment)
    assert (r.share, r.clips) == (1.0, 1)
    assert r.clips_per_minute == pytest.approx(1 / 60)
    assert built < 2.0


def test_ties_and_noise_are_split_never_misplaced() -> None:
    rng = np.random.default_rng(1)
    frames = np.cumsum(rng.integers(0, 3, 3000))
    frames2 = np.arange(500) + 7
    frames2[rng.choice(500, 20, replace=False)] += 1  # ties broken the other way
    frames2 = np.maximum.accumulate(frames2)
    for f in (frames, frames2):
        c = case("noisy", f, 25, 25, ())
        assert reproduction(build_timeline(*_abc(c)), c.alignment).share == 1.0


def test_fit_stretches_is_exact_with_integer_arithmetic() -> None:
    frames = sample_truth(3000, 30000 / 1001, 25)
    (s,) = fit_stretches(frames, steps=[Fraction(25) / Fraction(30000, 1001)])
    assert (s.frames() == frames).all()
    assert s.low <= s.start < s.high
    assert [x.length for x in conform_stretches(frames, None, Fraction(30000, 1001), Fraction(25))] == [3000]
    # without the right step it still reproduces every frame, in more stretches
    stretches = fit_stretches(frames, steps=[Fraction(1)])
    assert len(stretches) > 1
    assert (np.concatenate([x.frames() for x in stretches]) == frames).all()


def test_bad_input() -> None:
    c = CASES["recut"]
    with pytest.raises(SettingsError):
        build_timeline(c.alignment, c.fg, c.bg, audio="left")
    with pytest.raises(ValueError):
        build_timeline(Alignment(Geometry(0, 0), 1.0, np.array([0, 1, 10**6])), c.fg, c.bg)
    with pytest.raises(ValueError):
        build_timeline(Alignment(Geometry(0, 0), 1.0, np.array([], int)), c.fg, c.bg)


def test_nothing_matched_is_one_gap() -> None:
    c = case("none", np.zeros(50, int), 25, 25, (), matched=np.zeros(50, bool), n_bg=10)
    timeline = build_timeline(*_abc(c))
    assert [type(i).__name__ for i in timeline.tracks[0]] == ["Gap"]
    assert reproduction(timeline, c.alignment).share == 1.0
    assert math.isclose(reproduction(timeline, c.alignment).clips_per_minute, 0.0)
