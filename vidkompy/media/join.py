"""Join composed segments into one output by stream copy: no second encode, as Av1an's concat does.

Segments keep fg's own timestamps, so concatenation needs no offsets: packets
are copied in order with their pts and dts as they are. What the join checks:

- every segment has the same codec, size, time base and extradata (SPS/PPS in
  mp4's avcC live there only, so a segment encoded differently would not
  decode in the joined stream);
- segments follow one another in time (a later one starts after the earlier
  one's last frame);
- DTS stays strictly increasing across a join. Options measured: (a) keep
  the one-pass settings, B-frames included: each segment starts with the same
  B-frame delay (x264: its IDR's dts is two frame durations before its pts),
  so at a steady frame rate a segment's first dts already lies after the
  previous segment's last - on our pairs no dts needed changing, for h264,
  hevc, ProRes and FFV1 into mp4, mov and mkv; (b) no B-frames in segments,
  which would make them differ from the one-pass encode and cost size; (c)
  shifting each segment's clock, which breaks "fg's timestamps". We take (a),
  and where a variable frame rate makes dts collide at a join, the colliding
  dts are moved up by one tick (`next_dts`), valid while dts <= pts; past
  that the join refuses.
- Segments are QuickTime files (`vidkompy.media.encoding.segment_suffix`): Matroska
  drops the dts of the leading B-frames and keeps milliseconds, and mov's
  default movie timescale (1000) rounded a segment's start offset by 10 ticks
  of 1/15360 s, shifting all its timestamps, until the timescale was set to
  the track's.

One method per container: mp4/mov get faststart and a movie timescale that
keeps the timestamps exact; Matroska stores pts only (in milliseconds) and
needs neither. fg's (or bg's) audio is muxed once, over the whole output,
interleaved with the video as it goes (`vidkompy.media.audio`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from vidkompy.errors import OutputError, SettingsError
from vidkompy.media.audio import AudioFeed, AudioPlan
from vidkompy.media.chunks import next_dts
from vidkompy.media.encoding import CONTAINERS, ContainerSpec, container_for, open_output
from vidkompy.media.paths import atomic_output


@dataclass(frozen=True)
class JoinReport:
    """What a join did: packets copied, and how many dts it had to move up at the joins."""

    output: Path
    packets: int
    dts_fixed: int


@dataclass(frozen=True)
class _SegmentInfo:
    codec: str
    size: tuple[int, int]
    time_base: Fraction
    extradata: bytes


def _info(path: Path) -> _SegmentInfo:
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise OutputError(path, "segment has no video stream")
            vs = c.streams.video[0]
            cc = vs.codec_context
            return _SegmentInfo(cc.name, (cc.width, cc.height), vs.time_base, bytes(cc.extradata or b""))
    except (av.error.FFmpegError, OSError) as exc:
        raise OutputError(path, "segment cannot be read; compose it again") from exc


def join_segments(segment_paths: Sequence[str | os.PathLike], output: str | os.PathLike, *,
                  audio: AudioPlan | None = None, comment: str | None = None) -> JoinReport:
    """Concatenate segments (in order) into ``output`` by stream copy, with ``audio`` muxed in step.

    The container follows ``output``'s extension; a codec it cannot hold is a
    `SettingsError`, unreadable or mismatched segments an `OutputError`.
    Nothing appears under ``output``'s name unless the join completes.
    """
    paths = [Path(p) for p in segment_paths]
    if not paths:
        raise OutputError(output, "no segments to join")
    output = Path(output)
    container = container_for(output)
    infos = [_info(p) for p in paths]
    first = infos[0]
    codec = first.codec  # the decoder's name, which is our codec name for all four
    if codec not in container.video:
        raise SettingsError(f"{output}: a {container.suffix} file cannot hold {codec}; "
                            f"{container.suffix} takes {', '.join(container.video)}")
    for path, info in zip(paths[1:], infos[1:], strict=True):
        if info != first:
            raise OutputError(path, "segment was encoded differently from the first (codec, size, time base or "
                                    "encoder settings); compose it again")
    method = _METHODS[container.format]
    return method(paths, output, container, first.time_base, audio, comment)


def _join_mov(paths: list[Path], output: Path, container: ContainerSpec, time_base: Fraction,
              audio: AudioPlan | None, comment: str | None) -> JoinReport:
    """mp4/mov: faststart, a timescale that holds every tick, DTS strictly increasing."""
    return _copy(paths, output, container, time_base, audio, comment, strict_dts=True)


def _join_matroska(paths: list[Path], output: Path, container: ContainerSpec, time_base: Fraction,
                   audio: AudioPlan | None, comment: str | None) -> JoinReport:
    """Matroska: blocks carry pts only; DTS need only not decrease (FFmpeg's non-strict muxers)."""
    return _copy(paths, output, container, time_base, audio, comment, strict_dts=False)


_METHODS: dict[str, Callable[..., JoinReport]] = {"mp4": _join_mov, "mov": _join_mov, "matroska": _join_matroska}
assert set(_METHODS) == {c.format for c in CONTAINERS.values()}


def _copy(paths: list[Path], output: Path, container: ContainerSpec, time_base: Fraction,
          audio: AudioPlan | None, comment: str | None, *, strict_dts: bool) -> JoinReport:
    packets = fixed = 0
    last_pts: int | None = None
    last_dts: int | None = None
    end = 0.0
    with atomic_output(output) as tmp, open_output(tmp, container, time_base) as out:
        if comment:
            out.metadata["comment"] = comment
        feed: AudioFeed | None = None
        try:
            vs_out = None
            for k, path in enumerate(paths):
                try:
                    src = av.open(str(path))
                except (av.error.FFmpegError, OSError) as exc:
                    raise OutputError(path, "segment cannot be read; compose it again") from exc
                with src:
                    vs = src.streams.video[0]
                    if vs_out is None:
                        vs_out = out.add_stream_from_template(vs)
                        vs_out.time_base = vs.time_base
                        if audio is not None:
                            feed = AudioFeed(audio, out, container)
                    seg_first_pts: int | None = None
                    seg_max_pts: int | None = None
                    try:
                        for packet in src.demux(vs):
                            if packet.pts is None and packet.dts is None:
                                continue
                            if packet.pts is None:
                                raise OutputError(path, "segment has a packet without a timestamp")
                            if seg_first_pts is None or packet.pts < seg_first_pts:
                                seg_first_pts = packet.pts
                            if packet.dts is not None and last_dts is not None:
                                dts = next_dts(packet.dts, packet.pts, last_dts, strict=strict_dts)
                                if dts is None:
                                    raise OutputError(path, "segment overlaps the previous one in time")
                                if dts != packet.dts:
                                    packet.dts = dts
                                    fixed += 1
                            if packet.dts is not None:
                                last_dts = packet.dts
                            seg_max_pts = packet.pts if seg_max_pts is None else max(seg_max_pts, packet.pts)
                            end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
                            t = float((packet.dts if packet.dts is not None else packet.pts) * packet.time_base)
                            packet.stream = vs_out
                            out.mux(packet)
                            packets += 1
                            if feed is not None:
                                feed.mux_until(t)
                    except av.error.FFmpegError as exc:
                        raise OutputError(path, f"segment is damaged ({exc}); compose it again") from exc
                    if seg_first_pts is None:
                        raise OutputError(path, "segment has no frames; compose it again")
                    if last_pts is not None and seg_first_pts <= last_pts:
                        raise OutputError(path, f"segment {k} starts before the previous one ends")
                    last_pts = seg_max_pts
            if feed is not None:
                feed.finish(end if end > 0 else math.inf)
        finally:
            if feed is not None:
                feed.close()
    return JoinReport(output, packets, fixed)
