"""Writing a conform timeline in the format its file's extension names, and reading one back.

- ``.otio``: OpenTimelineIO's own JSON (Resolve 18.5+, Kdenlive 25.04+ open it natively).
- ``.xml``: FCP7 XML (xmeml) through the official ``otio-fcp-adapter`` (Premiere, Resolve,
  Final Cut 7). The adapter writes neither speeds nor placement, so both are added to
  its XML here: a Time Remap filter on each retimed bg clip (in/out then span the
  source frames the clip consumes, as FCP7 writes them), and on fg's clip the Basic
  Motion filter (scale and centre) and, for fg's black bars, a Crop filter.
- ``.edl``: CMX 3600 through the official ``otio-cmx3600-adapter``: V1 (bg) and the
  audio, one event list; speeds as M2 lines; fg's placement and the unmatched ranges
  as comments on the first event. An EDL has one rate (fg's, the record rate) and
  whole frames: source timecodes of a bg at another rate are rounded to that rate,
  a line's sub-frame start (the phase of a 25-in-30 cadence) is lost, and bg's rate
  and start timecode are not in the file at all. The adapter writes only one track,
  so the audio events are made by its own event writer and appended.

Writing is atomic: a temporary file in the target folder, renamed over the target
only when complete, so a failed write leaves nothing under the target's name.
"""

from __future__ import annotations

import copy
import errno
import math
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio

from vidkompy.conform.evaluate import exact, seconds, timeline_rate, video_track
from vidkompy.conform.timeline import NAMESPACE
from vidkompy.errors import OutputError, SettingsError
from vidkompy.media.paths import atomic_output, can_create_in, default_output


@dataclass(frozen=True)
class TimelineFormat:
    """One file format: its OTIO adapter and the PyPI package that brings it."""

    suffix: str
    adapter: str
    package: str | None  # None: built into opentimelineio
    description: str


FORMATS: dict[str, TimelineFormat] = {
    ".otio": TimelineFormat(".otio", "otio_json", None, "OpenTimelineIO"),
    ".xml": TimelineFormat(".xml", "fcp_xml", "otio-fcp-adapter", "FCP7 XML"),
    ".edl": TimelineFormat(".edl", "cmx_3600", "otio-cmx3600-adapter", "CMX 3600 EDL"),
}


def timeline_format(path: str | os.PathLike) -> TimelineFormat:
    """The format ``path``'s extension names, with its adapter installed; `SettingsError` if not."""
    suffix = Path(path).suffix.lower()
    fmt = FORMATS.get(suffix)
    if fmt is None:
        known = ", ".join(f"{s} ({f.description})" for s, f in FORMATS.items())
        raise SettingsError(f"--timeline {path}: unknown extension {suffix or '(none)'!r}; use {known}")
    try:
        otio.adapters.from_name(fmt.adapter)
    except otio.exceptions.NotSupportedError:  # no installed plugin manifest names the adapter
        raise SettingsError(f"--timeline {path}: {fmt.description} needs the {fmt.package} package "
                            f"(pip install {fmt.package})") from None
    return fmt


def timeline_target(spec: str | os.PathLike, bg: str | os.PathLike, fg: str | os.PathLike,
                    output: str | os.PathLike | None = None) -> Path:
    """Where ``--timeline SPEC`` writes: SPEC itself, or for a bare extension (".otio", ".xml", ".edl") the
    output's path with that extension (without an output, compose's default name in the working folder).

    The bare form is what a batch passes to every pair unchanged: each pair's timeline lands beside its output.
    """
    text = os.fspath(spec)
    if text.startswith(".") and os.sep not in text and text.count(".") == 1:
        return Path(output or default_output(bg, fg)).with_suffix(text)
    return Path(text)


def check_batch_timeline(spec: str | os.PathLike | None) -> None:
    """A batch writes a timeline per pair, beside its output: only a bare extension says that."""
    if spec is None:
        return
    text = os.fspath(spec)
    if not (text.startswith(".") and os.sep not in text and text.count(".") == 1):
        raise SettingsError(f"--timeline {text}: a batch writes one timeline per pair, beside its output; give it "
                            "a bare extension (.otio, .xml or .edl)")
    timeline_format("x" + text)


def check_timeline_path(path: str | os.PathLike) -> Path:
    """Everything about a ``--timeline`` path that can fail, checked before any stage runs.

    Raises `SettingsError` (exit 2) for an unknown extension or a missing adapter and
    `OutputError` (exit 3) for a folder that does not exist or cannot be written.
    Returns the absolute path.
    """
    timeline_format(path)
    out = Path(path).expanduser().absolute()
    if out.is_dir():
        raise OutputError(out, "timeline path is a directory")
    if not out.parent.is_dir():
        raise OutputError(out, "timeline folder does not exist")
    if not can_create_in(out.parent):
        raise OutputError(out, "timeline folder is not writable")
    return out


def render_timeline(timeline: otio.schema.Timeline, fmt: TimelineFormat | str) -> str:
    """The file's text for ``timeline`` in format ``fmt`` (a `TimelineFormat` or an extension)."""
    if isinstance(fmt, str):
        fmt = timeline_format("x" + fmt if fmt.startswith(".") else fmt)
    if fmt.suffix == ".xml":
        return _fcp_xml(timeline)
    if fmt.suffix == ".edl":
        return _edl(timeline)
    return otio.adapters.write_to_string(timeline, adapter_name=fmt.adapter)


def write_timeline(timeline: otio.schema.Timeline, path: str | os.PathLike) -> Path:
    """Write ``timeline`` to ``path`` in the format its extension names, atomically; the absolute path."""
    out = check_timeline_path(path)
    text = render_timeline(timeline, timeline_format(out))
    with atomic_output(out) as tmp:  # a temporary name beside it, renamed when whole; a full disk is exit 3
        try:
            with tmp.open("w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise OutputError(out, "the timeline's disk is full; nothing was written under this name") from exc
            raise OutputError(out, f"timeline cannot be written ({exc.strerror})") from exc
    return out


# -- FCP7 XML ------------------------------------------------------------------------------------------


def _sub(parent: ET.Element, tag: str, text: object | None = None) -> ET.Element:
    e = ET.SubElement(parent, tag)
    if text is not None:
        e.text = str(text)
    return e


def _number(x: float) -> str:
    return f"{x:.8f}".rstrip("0").rstrip(".") if x != int(x) else str(int(x))


def _parameter(effect: ET.Element, pid: str, name: str, value: object, lo: object = None, hi: object = None) -> None:
    p = _sub(effect, "parameter")
    p.set("authoringApp", "PremierePro")
    _sub(p, "parameterid", pid)
    _sub(p, "name", name)
    if lo is not None:
        _sub(p, "valuemin", lo)
        _sub(p, "valuemax", hi)
    _sub(p, "value", value)


def _filter(name: str, effectid: str, category: str) -> tuple[ET.Element, ET.Element]:
    f = ET.Element("filter")
    effect = _sub(f, "effect")
    _sub(effect, "name", name)
    _sub(effect, "effectid", effectid)
    _sub(effect, "effectcategory", category)
    _sub(effect, "effecttype", "motion")
    _sub(effect, "mediatype", "video")
    return f, effect


def time_remap_filter(time_scalar: float) -> ET.Element:
    """FCP7's constant speed: ``speed`` in percent of real time (104.1667 for the PAL speed-up)."""
    f, effect = _filter("Time Remap", "timeremap", "motion")
    _parameter(effect, "variablespeed", "variablespeed", 0, 0, 1)
    _parameter(effect, "speed", "speed", repr(float(time_scalar) * 100), -100000, 100000)
    _parameter(effect, "reverse", "reverse", "FALSE")
    _parameter(effect, "frameblending", "frameblending", "FALSE")
    return f


def basic_motion_filter(place: Mapping[str, object], canvas: tuple[int, int]) -> ET.Element:
    """FCP7's Basic Motion for fg: scale in percent of fg's own pixels, centre in canvas fractions.

    The sequence is bg's frame (``canvas``). fg's whole frame is drawn at ``1 / scale`` of
    its size with its centre at the centre of ``place["frame"]``; FCP7 gives the centre as
    an offset from the canvas's centre in fractions of the canvas (+-0.5 at its edges).
    """
    frame = place["frame"]
    assert isinstance(frame, Mapping)
    w, h = canvas
    cx = float(frame["left"]) + float(frame["width"]) / 2
    cy = float(frame["top"]) + float(frame["height"]) / 2
    f, effect = _filter("Basic Motion", "basic", "motion")
    _parameter(effect, "scale", "Scale", _number(100 / float(place["scale"])), 0, 10000)  # type: ignore[arg-type]
    _parameter(effect, "rotation", "Rotation", 0, -100000, 100000)
    center = _sub(effect, "parameter")
    center.set("authoringApp", "PremierePro")
    _sub(center, "parameterid", "center")
    _sub(center, "name", "Center")
    value = _sub(center, "value")
    _sub(value, "horiz", _number((cx - w / 2) / w))
    _sub(value, "vert", _number((cy - h / 2) / h))
    offset = _sub(effect, "parameter")
    offset.set("authoringApp", "PremierePro")
    _sub(offset, "parameterid", "centerOffset")
    _sub(offset, "name", "Anchor Point")
    value = _sub(offset, "value")
    _sub(value, "horiz", 0)
    _sub(value, "vert", 0)
    return f


def crop_filter(crop: list[int], size: list[int]) -> ET.Element:
    """FCP7's Crop: what of fg's frame lies outside its active picture, in percent of each side's dimension."""
    (left, top, right, bottom), (w, h) = crop, size
    f, effect = _filter("Crop", "crop", "motion")
    for pid, v, d in (("left", left, w), ("right", right, w), ("top", top, h), ("bottom", bottom, h)):
        _parameter(effect, pid, pid.capitalize(), _number(100 * v / d), 0, 100)
    return f


def _add_characteristics(media: ET.Element, width: int, height: int) -> None:
    video = media.find("video")
    if video is None:
        video = _sub(media, "video")
    if video.find("samplecharacteristics") is None:
        sc = _sub(video, "samplecharacteristics")
        _sub(sc, "width", width)
        _sub(sc, "height", height)
        _sub(sc, "pixelaspectratio", "square")


def _fcp_xml(timeline: otio.schema.Timeline) -> str:
    """The adapter's xmeml, with what it leaves out put in: speeds, in/out spans, placement, frame sizes."""
    timeline = timeline.deepcopy()
    v1 = video_track(timeline, "bg")
    clip = next((c for c in v1 if isinstance(c, otio.schema.Clip)), None)
    if clip is not None:
        on_grid(v1, exact(clip.source_range.start_time.rate))
    text = otio.adapters.write_to_string(timeline, adapter_name="fcp_xml")
    root = ET.fromstring(text)
    info = timeline.metadata.get(NAMESPACE, {})
    bg_size = info.get("bg_size")
    sequence = root.find(".//sequence")
    video = sequence.find("./media/video") if sequence is not None else None
    if video is None:
        return text
    fmt = video.find("format")
    if fmt is not None and bg_size and fmt.find("samplecharacteristics") is None:
        sc = _sub(fmt, "samplecharacteristics")
        _sub(sc, "width", bg_size[0])
        _sub(sc, "height", bg_size[1])
        _sub(sc, "pixelaspectratio", "square")
        rate = sequence.find("rate")
        if rate is not None:
            sc.append(copy.deepcopy(rate))
    xml_tracks = video.findall("track")
    otio_tracks = [t for t in timeline.tracks if t.kind == otio.schema.TrackKind.Video]
    for xml_track, track in zip(xml_tracks, otio_tracks, strict=False):
        items = xml_track.findall("clipitem")
        clips = [c for c in track if isinstance(c, otio.schema.Clip)]
        for item, clip in zip(items, clips, strict=False):
            meta = clip.metadata.get(NAMESPACE, {})
            warp = next((fx for fx in clip.effects if isinstance(fx, otio.schema.LinearTimeWarp)), None)
            if warp is not None:
                scalar = exact(warp.time_scalar)
                sr = clip.source_range
                src_rate = exact(sr.start_time.rate)
                consumed = seconds(sr.duration) * scalar * src_rate  # source frames the clip plays through
                first = item.find("in")
                last = item.find("out")
                if first is not None and last is not None:
                    last.text = str(int(first.text) + round(consumed))
                if scalar != 1:
                    item.append(time_remap_filter(float(scalar)))
            if "frame" in meta and bg_size:
                item.append(basic_motion_filter(meta, (int(bg_size[0]), int(bg_size[1]))))
                if meta.get("active") is not None:
                    item.append(crop_filter(list(meta["crop"]), list(meta["fg_size"])))
    # the files' frame sizes, which Premiere wants to place them
    sizes = {}
    for track in otio_tracks:
        for clip in track:
            ref = getattr(clip, "media_reference", None)
            m = getattr(ref, "metadata", {}).get(NAMESPACE, {}) if ref is not None else {}
            if "width" in m:
                sizes[ref.target_url] = (m["width"], m["height"])
    for file in root.iter("file"):
        url = file.findtext("pathurl")
        media = file.find("media")
        if url in sizes and media is not None:
            _add_characteristics(media, *sizes[url])
    ET.indent(root, space="    ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE xmeml>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _fcp_parameters(effect: otio.schema.Effect) -> dict[str, object]:
    """An FCP7 filter's parameters by id, from the metadata the adapter reads them into."""
    md = effect.metadata.get("fcp_xml", {})
    params = md.get("parameter", [])
    if isinstance(params, Mapping):
        params = [params]
    out: dict[str, object] = {}
    for p in params:
        if isinstance(p, Mapping) and "parameterid" in p:
            out[str(p["parameterid"])] = p.get("value")
    return out


def _fcp_fixups(timeline: otio.schema.Timeline) -> None:
    """The filters written above, back into OTIO terms: Time Remap as a `LinearTimeWarp`, Basic Motion as placement."""
    for track in timeline.tracks:
        for clip in track:
            if not isinstance(clip, otio.schema.Clip):
                continue
            kept = []
            motion = crop = None
            for fx in clip.effects:
                md = fx.metadata.get("fcp_xml", {})
                effectid = md.get("effectid")
                if effectid == "timeremap":
                    speed = float(_fcp_parameters(fx).get("speed", 100))
                    kept.append(otio.schema.LinearTimeWarp(name="speed", time_scalar=speed / 100))
                    continue
                if effectid == "basic":
                    motion = _fcp_parameters(fx)
                elif effectid == "crop":
                    crop = _fcp_parameters(fx)
                kept.append(fx)
            clip.effects[:] = kept
            if motion is not None:
                clip.metadata.setdefault(NAMESPACE, {})["fcp_motion"] = {
                    "scale_percent": float(motion.get("scale", 100)),
                    "center": motion.get("center"),
                    "crop_percent": crop,
                }


# -- CMX 3600 ------------------------------------------------------------------------------------------

_EVENT = re.compile(r"^(\d{3,})(\s+)")
_TIMECODES = re.compile(r"^(.*?)(\S+) (\S+) (\S+) (\S+)$")


def _matches(pos: Fraction, start: Fraction, step: Fraction, n: int) -> int:
    """Of ``n`` frames, how many the line from ``pos`` shows as the line from ``start`` does (both of ``step``)."""
    k = np.arange(n, dtype=object)

    def line(c: Fraction) -> np.ndarray:
        p, q = step.numerator, step.denominator
        return (c.numerator * q + k * p * c.denominator) // (c.denominator * q)

    return int(np.sum(line(pos) == line(start)))


def on_grid(track: otio.schema.Track, grid_rate: Fraction) -> None:
    """Move each clip's source start onto a format's grid: whole frames at ``grid_rate``.

    FCP7 XML's in-points are whole bg frames (``grid_rate`` = bg's), an EDL's source
    timecodes whole frames at the record rate (fg's). Any start in the range
    `build_timeline` left in the clip's metadata shows the same bg frames, so a grid
    point inside it keeps the clip exact. Where none falls inside (a cadence whose
    phase lies between two frames: 25 fps shown at 30, each frame shown twice) the
    grid point on either side of the start that shows more of the clip's frames
    right is taken, rather than the adapter's own rounding (half to even: 10.5 to
    10, 11.5 to 12, a different phase from one clip to the next).
    """
    for clip in track:
        if not isinstance(clip, otio.schema.Clip):
            continue
        start = clip.source_range.start_time
        bg_rate = exact(start.rate)
        unit = bg_rate / grid_rate  # bg frames per grid step
        c = seconds(start) * bg_rate
        meta = clip.metadata.get(NAMESPACE, {})
        candidates = []
        if meta.get("starts"):
            lo, hi = (Fraction(x) for x in meta["starts"])
            first = math.ceil(lo / unit)
            if first * unit < hi:
                candidates.append(first)
        candidates += [math.floor(c / unit), math.ceil(c / unit)]
        warp = next((fx for fx in clip.effects if isinstance(fx, otio.schema.LinearTimeWarp)), None)
        n = round(seconds(clip.source_range.duration) * grid_rate) if warp is not None else 0
        if warp is not None and len(set(candidates)) > 1 and n > 0:
            record = exact(clip.source_range.duration.rate)
            step = exact(warp.time_scalar) * bg_rate / record
            n = round(seconds(clip.source_range.duration) * record)
            counts = [_matches(j * unit, c, step, n) for j in candidates]
            tick = candidates[counts.index(max(counts))]
        else:
            tick = candidates[0]
        clip.source_range = otio.opentime.TimeRange(otio.opentime.RationalTime(tick, float(grid_rate)),
                                                    clip.source_range.duration)


def _clip_markers(track: otio.schema.Track, markers: list[otio.schema.Marker]) -> list[str]:
    """Move jump and low-score markers onto the clip they start in (the EDL's LOC lines); the rest as text."""
    left = []
    for m in markers:
        kind = m.metadata.get(NAMESPACE, {}).get("kind")
        t = seconds(m.marked_range.start_time)
        placed = False
        if kind != "unmatched":
            for clip in track:
                if not isinstance(clip, otio.schema.Clip):
                    continue
                rng = track.range_of_child(clip)
                t0, t1 = seconds(rng.start_time), seconds(rng.end_time_exclusive())
                if t0 <= t < t1:
                    warp = next((fx for fx in clip.effects if isinstance(fx, otio.schema.LinearTimeWarp)), None)
                    scalar = exact(warp.time_scalar) if warp is not None else Fraction(1)
                    src = clip.source_range.start_time
                    at = seconds(src) + (t - t0) * scalar
                    clip.markers.append(otio.schema.Marker(
                        name=m.name, color=m.color,
                        marked_range=otio.opentime.TimeRange(
                            otio.opentime.RationalTime(float(at * exact(src.rate)), src.rate),
                            otio.opentime.RationalTime(0, src.rate))))
                    placed = True
                    break
        if not placed:
            left.append(m.name)
    return left


def _edl(timeline: otio.schema.Timeline) -> str:
    """V1 and A1 as one CMX 3600 event list at fg's rate, fg's placement in the first event's comments."""
    from otio_cmx3600_adapter import cmx_3600

    rate = float(timeline_rate(timeline))
    v1 = copy.deepcopy(video_track(timeline, "bg"))
    on_grid(v1, exact(rate))
    notes = _clip_markers(v1, list(timeline.tracks.markers))
    edl = otio.schema.Timeline(name=timeline.name)
    edl.tracks.append(v1)
    text = otio.adapters.write_to_string(edl, adapter_name="cmx_3600", rate=rate)
    lines = text.splitlines()
    # CMX 3600: a retimed event's source spans record duration x speed; the adapter divides instead
    clips = [c for c in v1 if isinstance(c, otio.schema.Clip) and c.enabled]
    events = [i for i, line in enumerate(lines) if _EVENT.match(line)]
    for i, clip in zip(events, clips, strict=False):
        warp = next((fx for fx in clip.effects if isinstance(fx, otio.schema.LinearTimeWarp)), None)
        if warp is None or exact(warp.time_scalar) == 1:
            continue
        m = _TIMECODES.match(lines[i])
        if m is None:
            continue
        head, src_in, _, rec_in, rec_out = m.groups()
        frames = seconds(clip.source_range.duration) * exact(warp.time_scalar) * exact(rate)
        src_out = otio.opentime.from_timecode(src_in, rate) + otio.opentime.RationalTime(round(frames), rate)
        lines[i] = f"{head}{src_in} {otio.opentime.to_timecode(src_out, rate)} {rec_in} {rec_out}"
    # the audio: the adapter writes only the first track, so its own event writer makes A1's events
    audio = [t for t in timeline.tracks if t.kind == otio.schema.TrackKind.Audio]
    if audio:
        a1 = otio.schema.Timeline(name=timeline.name)
        a1.tracks.append(copy.deepcopy(audio[0]))
        writer = cmx_3600.EDLWriter(tracks=a1.tracks, rate=rate, style="avid")
        a_lines = writer.get_content_for_track_at_index(0, title=None).splitlines()
        offset = len(events)
        for line in a_lines:
            m = _EVENT.match(line)
            if m:
                line = f"{int(m.group(1)) + offset:03d}{m.group(2)}{line[m.end():]}"
            if line.strip():
                lines.append(line)
    # fg's placement and the unmatched ranges, as comments of the first event (an EDL has no header comments)
    fg = [t for t in timeline.tracks if t.kind == otio.schema.TrackKind.Video and t.name == "fg"]
    extra: list[str] = []
    if fg and fg[0] and isinstance(fg[0][0], otio.schema.Clip):
        clip = fg[0][0]
        place = clip.metadata.get(NAMESPACE, {})
        url = getattr(clip.media_reference, "target_url", clip.name)
        extra.append(f"* VIDKOMPY FG: {url}")
        if "x" in place:
            active = "NONE" if place.get("active") is None else ",".join(map(str, place["active"]))
            extra.append(f"* VIDKOMPY FG PLACEMENT: X={place['x']:.3f} Y={place['y']:.3f} "
                         f"SCALE={place['scale']:.6f} ACTIVE={active}")
            pic = place["picture"]
            extra.append(f"* VIDKOMPY FG PICTURE IN BG: LEFT={pic['left']:.3f} TOP={pic['top']:.3f} "
                         f"WIDTH={pic['width']:.3f} HEIGHT={pic['height']:.3f}")
    extra += [f"* VIDKOMPY {n.upper()}" for n in notes]
    if events and extra:
        at = events[0] + 1
        while at < len(lines) and not _EVENT.match(lines[at]) and lines[at].strip():
            at += 1
        lines[at:at] = extra
    return "\n".join(lines).rstrip("\n") + "\n"


# -- reading back --------------------------------------------------------------------------------------


def read_timeline(path: str | os.PathLike, *, rate: float | None = None,
                  available: Mapping[str, otio.opentime.TimeRange] | None = None) -> otio.schema.Timeline:
    """A written timeline read back with the adapter that wrote it.

    FCP7's Time Remap filters come back as `LinearTimeWarp` effects (the adapter
    reads them as opaque effects). An EDL holds neither its rate (``rate``: fg's,
    the record rate; 24 by the adapter's default) nor its media's ranges:
    ``available`` gives them per media URL (bg's, with its rate and start timecode),
    so that its source timecodes can be told as bg frames.
    """
    fmt = timeline_format(path)
    kwargs = {"rate": rate} if fmt.suffix == ".edl" and rate is not None else {}
    timeline = otio.adapters.read_from_file(str(path), adapter_name=fmt.adapter, **kwargs)
    if fmt.suffix == ".xml":
        _fcp_fixups(timeline)
    if fmt.suffix == ".edl" and rate is not None:
        timeline.global_start_time = otio.opentime.RationalTime(0, rate)
    if available:
        for track in timeline.tracks:
            for clip in track:
                ref = getattr(clip, "media_reference", None)
                url = getattr(ref, "target_url", None)
                if url in available and ref.available_range is None:
                    ref.available_range = available[url]
    return timeline
