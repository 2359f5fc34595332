"""Each format written, read back with the same adapter: cuts, source ranges and speeds within its precision."""

from __future__ import annotations

import errno
import os
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest

from tests.conform.cases import CASES, Case
from vidkompy.conform import build_timeline, check_timeline_path, read_timeline, reproduction, write_timeline
from vidkompy.conform import formats as formats_module
from vidkompy.conform.evaluate import clips, exact, seconds
from vidkompy.errors import OutputError, SettingsError
from vidkompy.media import paths as paths_module

# Share of matched frames each format reproduces where it is not all of them. FCP7 XML's in-points are whole
# bg frames and an EDL's source timecodes whole frames at the record rate, so a cadence whose phase falls
# between two frames (25 fps shown at 30, 23.976 at 29.97) is off by one on the cadence's repeated frames.
LOSSY = {
    ("25_over_30", ".xml"): 0.5,
    ("25_over_30", ".edl"): 2 / 3,
    ("30_over_25", ".xml"): 0.6,
    ("30_over_25", ".edl"): 0.6,
    ("ntsc", ".edl"): 0.6,
}


def _record(track: otio.schema.Track, rate: Fraction) -> list[tuple[int, int]]:
    """Each clip's (first, stop) record frame."""
    offset = -seconds(track.source_range.start_time) if track.source_range is not None else Fraction(0)
    out = []
    for c in track:
        if isinstance(c, otio.schema.Clip):
            rng = track.range_of_child(c)
            out.append((int((seconds(rng.start_time) + offset) * rate), int((seconds(rng.end_time_exclusive()) +
                                                                              offset) * rate)))
    return out


def _speed(clip: otio.schema.Clip) -> float:
    return next((fx.time_scalar for fx in clip.effects if isinstance(fx, otio.schema.LinearTimeWarp)), 1.0)


def _source_start(clip: otio.schema.Clip, bg_rate: Fraction) -> Fraction:
    """The clip's start in bg frames from bg's first frame."""
    ref = clip.media_reference
    origin = seconds(ref.available_range.start_time) if ref.available_range is not None else Fraction(0)
    return (seconds(clip.source_range.start_time) - origin) * bg_rate


def _write_read(c: Case, tmp_path: Path, suffix: str) -> tuple[otio.schema.Timeline, otio.schema.Timeline]:
    timeline = build_timeline(c.alignment, c.fg, c.bg, fg_timecode="01:00:00:00" if c.fg.fps == 25 else None)
    path = write_timeline(timeline, tmp_path / f"{c.name}{suffix}")
    assert path == tmp_path / f"{c.name}{suffix}" and path.is_file()
    ref = clips(timeline)[0].media_reference
    # an EDL holds neither its rate nor bg's: the probe gives them back
    back = read_timeline(path, rate=c.fg.fps, available={ref.target_url: ref.available_range})
    return timeline, back


@pytest.mark.parametrize("suffix", [".otio", ".xml", ".edl"])
@pytest.mark.parametrize("name", list(CASES))
def test_round_trip(name: str, suffix: str, tmp_path: Path) -> None:
    c = CASES[name]
    timeline, back = _write_read(c, tmp_path, suffix)
    fg_rate, bg_rate = exact(c.fg.fps), exact(c.bg.fps)
    if suffix == ".otio":
        assert back.is_equivalent_to(timeline)
    a, b = clips(timeline), clips(back)
    assert len(a) == len(b) == len(c.speeds)
    # cuts: exact, in record frames
    assert _record(timeline.tracks[0], fg_rate) == _record([t for t in back.tracks if t.kind == "Video"][0], fg_rate)
    for x, y in zip(a, b, strict=True):
        assert _speed(y) == pytest.approx(_speed(x), rel=1e-12)  # as written: repr of the double
        start, got = _source_start(x, bg_rate), _source_start(y, bg_rate)
        if suffix == ".xml":  # whole bg frames
            assert abs(got - start) <= Fraction(1, 2)
            if start.denominator == 1:
                assert got == start
        elif suffix == ".edl":  # whole record frames, inside the range of starts that shows the same frames
            assert abs(got - start) <= bg_rate / fg_rate
    share = reproduction(back, c.alignment, rate=c.fg.fps).share
    assert share == pytest.approx(LOSSY.get((name, suffix), 1.0), abs=1e-3)
    audio = [t for t in back.tracks if t.kind == otio.schema.TrackKind.Audio]
    assert len(audio) == 1 and len(audio[0]) == 1  # fg's sound
    if suffix != ".edl":
        assert [m.name for m in back.tracks.markers] == [m.name for m in timeline.tracks.markers]


def test_fcp_xml_carries_speed_placement_and_crop(tmp_path: Path) -> None:
    c = CASES["letterbox"]
    timeline = build_timeline(c.alignment, c.fg, c.bg)
    root = ET.parse(write_timeline(timeline, tmp_path / "t.xml")).getroot()
    sc = root.find(".//sequence/media/video/format/samplecharacteristics")
    assert (sc.findtext("width"), sc.findtext("height")) == ("640", "480")  # bg's canvas
    v1, v2 = root.findall(".//sequence/media/video/track")
    assert v1.find("clipitem/filter") is None  # real time: no Time Remap
    effects = {f.findtext("effect/effectid"): f.find("effect") for f in v2.findall("clipitem/filter")}
    assert set(effects) == {"basic", "crop"}
    params = {p.findtext("parameterid"): p for p in effects["basic"].findall("parameter")}
    assert params["scale"].findtext("value") == "200"  # fg's 160 px cover 320 bg px
    # fg's whole frame (bars too) lands at (72, 10) 320x240 in bg's 640x480: centre (232, 130)
    assert float(params["center"].findtext("value/horiz")) == pytest.approx((232 - 320) / 640, abs=1e-7)
    assert float(params["center"].findtext("value/vert")) == pytest.approx((130 - 240) / 480, abs=1e-7)
    crop = {p.findtext("parameterid"): float(p.findtext("value")) for p in effects["crop"].findall("parameter")}
    assert crop == {"left": 0, "right": 0, "top": 12.5, "bottom": 12.5}
    # and back through the adapter
    back = read_timeline(tmp_path / "t.xml")
    motion = back.tracks[1][0].metadata["vidkompy"]["fcp_motion"]
    assert motion["scale_percent"] == 200


def test_fcp_xml_time_remap_spans_the_source_frames(tmp_path: Path) -> None:
    c = CASES["pal"]
    root = ET.parse(write_timeline(build_timeline(c.alignment, c.fg, c.bg), tmp_path / "t.xml")).getroot()
    item = root.find(".//sequence/media/video/track/clipitem")
    assert (item.findtext("start"), item.findtext("end")) == ("0", "250")  # fg frames
    assert (item.findtext("in"), item.findtext("out")) == ("12", "262")  # bg frames played through
    speed = [p for p in item.iter("parameter") if p.findtext("parameterid") == "speed"][0]
    assert float(speed.findtext("value")) == pytest.approx(100 * 25 / 24)


def test_edl_holds_bg_and_audio_with_fg_in_comments(tmp_path: Path) -> None:
    c = CASES["inserted"]
    timeline = build_timeline(c.alignment, c.fg, c.bg)
    text = write_timeline(timeline, tmp_path / "t.edl").read_text()
    events = [line.split() for line in text.splitlines() if line[:3].isdigit()]
    assert [(e[0], e[2]) for e in events] == [("001", "V"), ("002", "V"), ("003", "A")]
    assert "* VIDKOMPY FG PLACEMENT: X=72.000 Y=40.000 SCALE=0.500000 ACTIVE=NONE" in text
    assert "* VIDKOMPY UNMATCHED FG 100-149" in text
    back = read_timeline(tmp_path / "t.edl", rate=25)
    comments = list(clips(back)[0].metadata["cmx_3600"]["comments"])
    assert any(line.startswith("VIDKOMPY FG PLACEMENT") for line in comments)
    v = [t for t in back.tracks if t.kind == "Video"][0]
    assert [type(i).__name__ for i in v] == ["Clip", "Gap", "Clip"]


def test_edl_speed_is_an_m2_with_cmx_source_span(tmp_path: Path) -> None:
    c = CASES["pal"]
    text = write_timeline(build_timeline(c.alignment, c.fg, c.bg), tmp_path / "t.edl").read_text()
    event = [line.split() for line in text.splitlines() if line.startswith("001")][0]
    # 250 record frames at 25/24 speed play 260.4 record frames' worth of source; bg frame 12 is 12.5 record frames
    assert event[-4:] == ["00:00:00:13", "00:00:10:23", "00:00:00:00", "00:00:10:00"]
    m2 = [line for line in text.splitlines() if line.startswith("M2")][0]
    assert float(m2.split()[-2]) == pytest.approx(25 * 25 / 24)


# -- bad input -----------------------------------------------------------------------------------------


def test_unknown_extension_is_a_settings_error(tmp_path: Path) -> None:
    for name in ("t.aaf", "t", "t.otio.bak"):
        with pytest.raises(SettingsError) as err:
            check_timeline_path(tmp_path / name)
        assert err.value.exit_code == 2 and ".otio" in str(err.value)
    assert not list(tmp_path.iterdir())


def test_missing_adapter_is_a_settings_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> None:
        raise otio.exceptions.NotSupportedError(f"adapter not supported: {name}")

    monkeypatch.setattr(formats_module.otio.adapters, "from_name", missing)
    with pytest.raises(SettingsError, match="otio-fcp-adapter"):
        check_timeline_path(tmp_path / "t.xml")


def test_folder_that_cannot_be_written_is_an_output_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = CASES["recut"]
    timeline = build_timeline(c.alignment, c.fg, c.bg)
    with pytest.raises(OutputError) as err:
        write_timeline(timeline, tmp_path / "missing" / "t.otio")
    assert err.value.exit_code == 3
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError):
        write_timeline(timeline, tmp_path / "file" / "t.otio")
    (tmp_path / "dir.otio").mkdir()
    with pytest.raises(OutputError, match="directory"):
        write_timeline(timeline, tmp_path / "dir.otio")
    locked = tmp_path / "locked"
    locked.mkdir()

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(paths_module.tempfile, "mkstemp", refuse)  # root writes through permission bits
    with pytest.raises(OutputError, match="not writable"):
        write_timeline(timeline, locked / "t.xml")
    assert not list(locked.iterdir())


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes through permission bits")
def test_read_only_folder_is_an_output_error(tmp_path: Path) -> None:
    c = CASES["recut"]
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(OutputError):
            write_timeline(build_timeline(c.alignment, c.fg, c.bg), locked / "t.otio")
        assert not list(locked.iterdir())
    finally:
        locked.chmod(0o700)


def test_failed_write_leaves_nothing_partial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = CASES["recut"]
    timeline = build_timeline(c.alignment, c.fg, c.bg)
    target = tmp_path / "t.edl"
    target.write_text("the old one\n")

    def full(*args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(formats_module.os, "replace", full)
    with pytest.raises(OutputError, match="disk is full"):
        write_timeline(timeline, target)
    assert target.read_text() == "the old one\n"
    assert [p.name for p in tmp_path.iterdir()] == ["t.edl"]
    monkeypatch.undo()
    write_timeline(timeline, target)
    assert target.read_text().startswith("TITLE:")
    assert [p.name for p in tmp_path.iterdir()] == ["t.edl"]


@pytest.mark.parametrize(("spec", "ok"), [(None, True), (".otio", True), (".edl", True), ("a.otio", False),
                                          ("/x/a.otio", False), (".txt", False)])
def test_a_batch_takes_only_a_bare_extension(spec, ok):
    """One path for every pair would leave only the last pair's timeline."""
    from vidkompy.conform.formats import check_batch_timeline

    if ok:
        check_batch_timeline(spec)
    else:
        with pytest.raises(SettingsError):
            check_batch_timeline(spec)
