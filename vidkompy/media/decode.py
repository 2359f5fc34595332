"""The decode stage with PyAV: thumbnails with timestamps, and frames on demand (keyframe search, seeks).

Frames are always counted in the decoder's output (presentation) order, and
times come from ``pts * time_base``: real files have variable frame rates, edit
lists and B-frames, so ``index / fps`` is wrong often enough to matter.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from vidkompy.errors import InputError
from vidkompy.media.bars import SAMPLES, BarStats
from vidkompy.media.probe import open_video, probe
from vidkompy.models import VideoInfo
from vidkompy.parallel import ordered_map

# Width of the gray working copy that decode stores. Decoding dominates the cost
# of this pass, not the thumbnail's size; a few hundred pixels keep the
# alignment's working arrays small while leaving enough detail for a sub-pixel fit.
WORK_WIDTH = 320
log = logging.getLogger("vidkompy")
SEEK_COST_FRAMES = 125  # frames decoded per seek, on average, with a 250-frame GOP
SEEK_BACK_S = (0.0, 1.0, 4.0, 16.0, 64.0)  # how far before a target each seek tries, in turn (`packets_from_keyframe`)


@dataclass(frozen=True)
class ThumbBlock:
    """Consecutive frames of a video, gray, at working size, with their times in seconds."""

    pts: np.ndarray  # (n,) float64 seconds
    frames: np.ndarray  # (n, h, w) uint8


def thumb_size(width: int, height: int, max_width: int = WORK_WIDTH) -> tuple[int, int]:
    if width <= max_width:
        return width, height
    return max_width, max(1, round(height * max_width / width))


class Reformatter:
    """swscale for a stream of frames: one scaling context kept between frames, on the calling thread.

    Since PyAV 17 every ``frame.reformat()`` builds a new SwsContext and, by default,
    a thread pool of its own. Per frame that cost more than the scaling: measured
    on 1080p h264 (2 cores), decode plus a 320 px gray thumbnail took 3.27 ms of
    CPU a frame that way and 2.34 ms with this (decode alone: 2.36 ms). The
    pictures are identical. Use one per stream and thread: a context is not shared.
    """

    def __init__(self) -> None:
        self._sws = VideoReformatter()

    def __call__(self, frame: av.VideoFrame, **kwargs) -> av.VideoFrame:
        return self._sws.reformat(frame, threads=1, **kwargs)


def frame_seconds(frame: av.VideoFrame, fallback: float) -> float:
    if frame.pts is None or frame.time_base is None:
        return fallback
    return float(frame.pts * frame.time_base)


class ThumbnailDecoder:
    """Every frame of a video once, gray, at working size, in blocks; past damage, counting what it lost.

    Full-size frames are never kept: each is reformatted inside swscale (area
    filter, the right one for shrinking) as it comes out of the decoder. The
    loop filter is skipped: about 30% faster here, and it changes a working
    thumbnail by under a grey level (DESIGN: 0.5-1) while the output is
    decoded in full. A packet that does not decode (a damaged stretch) is
    skipped and counted; decoding goes on with the next one, as players do.
    """

    def __init__(self, path: str | os.PathLike, max_width: int = WORK_WIDTH, *, info: VideoInfo | None = None):
        self.path = path
        self.info = info or probe(path)  # a run probes each input once and passes the probe down
        self.size = thumb_size(self.info.width, self.info.height, max_width)
        self.info_size = (self.info.width, self.info.height)
        self.lost = 0  # packets that did not decode, in the blocks read so far
        self.damaged_at: list[float] = []  # times of the first few packets that did not

    def blocks(self, block: int = 256, *, after: float | None = None, start: int = 0,
               bars: BarStats | None = None) -> Iterator[ThumbBlock]:
        """Blocks of ``block`` frames (the last may be shorter), from the start or after time ``after``.

        Resuming seeks to the keyframe before ``after`` (`packets_from_keyframe`: in an
        MPEG-PS or -TS file a plain seek lands past it, and the frames in between
        would be lost) and drops frames up to it, identified by their timestamps;
        ``start`` is then the index of the next frame. ``bars`` gathers black-bar
        statistics from full-size frames spread through the video (every n-th
        frame, by index, so a resumed run samples the same ones).
        """
        tw, th = self.size
        step = 1.0 / self.info.fps if self.info.fps else 0.04
        every = max(1, (self.info.n_frames or SAMPLES) // SAMPLES)
        index = start
        pts: list[float] = []
        frames: list[np.ndarray] = []
        last = after
        thumb, full = Reformatter(), Reformatter()
        with open_video(self.path) as container:
            vs = container.streams.video[0]
            vs.thread_type = "AUTO"
            vs.codec_context.options = {"skip_loop_filter": "all"}
            if after is None:
                packets = container.demux(vs)
            else:  # where no keyframe is found before it: from the start, dropping what is done
                packets = packets_from_keyframe(container, vs, after) or packets_from_start(container, vs)
            for frame in self._frames(packets, vs):
                t = frame_seconds(frame, (last if last is not None else -step) + step)
                if after is not None and t <= after + 1e-6:
                    continue
                img = thumb(frame, width=tw, height=th, format="gray", interpolation="AREA").to_ndarray()
                if bars is not None and index % every == 0:
                    bars.add(full(frame, format="gray").to_ndarray())
                index += 1
                pts.append(t)
                frames.append(img)
                last = t
                if len(frames) == block:
                    yield ThumbBlock(np.asarray(pts, np.float64), np.stack(frames))
                    pts, frames = [], []
        if frames:
            yield ThumbBlock(np.asarray(pts, np.float64), np.stack(frames))

    def _frames(self, demuxed: Iterator[av.Packet], vs: av.video.stream.VideoStream) -> Iterator[av.VideoFrame]:
        packets = frames = 0
        try:
            for packet in demuxed:
                if packet.size:
                    packets += 1
                try:
                    decoded = packet.decode()
                except av.error.FFmpegError as exc:
                    self.lost += 1
                    if len(self.damaged_at) < 5 and packet.pts is not None:
                        self.damaged_at.append(float(packet.pts * vs.time_base))
                    log.debug("%s: a packet did not decode (%s)", self.path, exc)
                    continue
                for frame in decoded:
                    frames += 1
                    yield frame
        except av.error.FFmpegError as exc:
            if not frames:
                raise InputError(self.path, f"cannot be decoded ({exc.strerror or exc})") from exc
            log.debug("%s: the file ends in damage (%s)", self.path, exc)  # a damaged tail: keep what decoded
        self.lost = max(self.lost, packets - frames)  # also frames the decoder dropped without an error
        if not frames and not packets:
            raise InputError(self.path, "has no decodable video frames")


def read_gray_frames(
    path: str | os.PathLike, indices: Sequence[int], pts: np.ndarray
) -> dict[int, np.ndarray]:
    """Full-size gray frames at the given presentation indices, by seeking.

    Only the dozen frames the sub-pixel fit needs are read this way, so a seek
    to the keyframe before each far-apart target beats a second full decode.
    Frames are identified by their timestamp against ``pts`` from decode.
    """
    wanted = sorted(set(int(i) for i in indices))
    out: dict[int, np.ndarray] = {}
    if not wanted:
        return out
    if len(wanted) * SEEK_COST_FRAMES > wanted[-1]:
        # keyframes are often 250 frames apart (x264's default): a seek per target would
        # decode more than one pass up to the last target does
        return _read_sequential(path, wanted)
    gray = Reformatter()
    with open_video(path) as container:
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        frames: Iterator[av.VideoFrame] | None = None
        last = -1
        aim = [0.0]  # the time before which non-reference frames need not be decoded
        for target in wanted:
            aim[0] = 0.5 * (pts[target - 1] + pts[target]) if target > 0 else -np.inf
            if frames is None or target <= last or pts[target] - pts[max(last, 0)] > 2.0:
                packets = packets_from_keyframe(container, vs, float(pts[target]))
                if packets is None:
                    break  # no seek lands before the target: read from the start, below
                frames = _skipping_nonref(packets, vs, aim)
                last = -1
            idx = -1
            for frame in frames:
                idx = int(np.argmin(np.abs(pts - frame_seconds(frame, pts[target]))))
                if idx >= target:
                    if idx == target:
                        out[target] = gray(frame, format="gray").to_ndarray()
                    break
            last = idx
            if target not in out:
                break  # the timestamps disagree with decode's: read from the start, below
    if len(out) < len(wanted):
        out.update(_read_sequential(path, [i for i in wanted if i not in out]))
    return out


def read_gray_frames_of(*requests: tuple[str | os.PathLike, Sequence[int], np.ndarray]
                        ) -> list[dict[int, np.ndarray]]:
    """`read_gray_frames` for several videos at once, a thread each: a decoder waits on its seek
    while the other decodes (the fit's bg and fg reads: 1.45 -> 1.12 s on a 1080p/720p pair)."""
    return list(ordered_map(lambda r: read_gray_frames(*r), requests, workers=len(requests)))


def packets_from_keyframe(container: av.container.InputContainer, vs: av.video.stream.VideoStream, time: float
                          ) -> Iterator[av.Packet] | None:
    """The stream's packets from the last keyframe at or before ``time`` on; None where no seek finds one.

    MP4, MOV and Matroska seek by their index and land on that keyframe. MPEG-PS
    and MPEG-TS (broadcast and camera files) have no index: FFmpeg searches their
    timestamps and lands wherever a packet has one, usually past the keyframe a
    decoder needs, so decoding would begin at the next keyframe, after the target.
    Each try therefore starts further back (`SEEK_BACK_S`) and is judged on packets,
    demuxed, not decoded: those from the last keyframe up to the target's are held
    (at most a GOP of compressed packets) and the rest, which a decoder would only
    skip or decode in vain, are dropped.
    """
    tb = vs.time_base
    for back in SEEK_BACK_S:
        at = max(time - 0.001 - back, 0.0)
        container.seek(int(at / tb), stream=vs, backward=True)
        packets = container.demux(vs)
        held: list[av.Packet] = []
        for packet in packets:
            stamp = packet.dts if packet.dts is not None else packet.pts
            if stamp is not None and float(stamp * tb) > time + 1e-6:
                # decode order: every packet the target's picture needs came before this one
                if held:
                    return itertools.chain(held, [packet], packets)
                break
            if packet.is_keyframe and packet.pts is not None and float(packet.pts * tb) <= time + 1e-6:
                held = [packet]  # only a keyframe shown by then can start it (not an open GOP's next I)
            elif held:
                held.append(packet)
        else:
            if held:  # the stream ends at the target
                return iter(held)
        if at == 0.0:
            break
    return None


def packets_from_start(container: av.container.InputContainer, vs: av.video.stream.VideoStream
                       ) -> Iterator[av.Packet]:
    """The stream's packets from the file's start, after reading elsewhere in it."""
    container.seek(0, stream=vs, backward=True)
    return container.demux(vs)


def _skipping_nonref(packets: Iterator[av.Packet], vs: av.video.stream.VideoStream, aim: list[float]
                     ) -> Iterator[av.VideoFrame]:
    """``packets`` decoded, non-reference frames skipped while their time is before ``aim[0]``.

    Between a keyframe and a target the decoder must rebuild every reference
    frame, but no frame that nothing refers to (most B-frames): FFmpeg's
    ``skip_frame = NONREF`` drops those, which cut the fit's seeks by a third
    (1080p h264, 6 targets: 2.14 -> 1.47 s of CPU, the same pictures). ``aim``
    is read per packet, so a caller may move it on to its next target. Each packet
    sets the decoder's choice before it is decoded, so nothing needs undoing
    when a caller abandons this generator for a new seek.
    """
    cc = vs.codec_context
    for packet in packets:
        ahead = packet.pts is not None and float(packet.pts * vs.time_base) < aim[0]
        cc.skip_frame = "NONREF" if ahead else "DEFAULT"
        yield from packet.decode()


def _read_sequential(path: str | os.PathLike, indices: Sequence[int]) -> dict[int, np.ndarray]:
    wanted = set(int(i) for i in indices)
    out: dict[int, np.ndarray] = {}
    gray = Reformatter()
    with open_video(path) as container:
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(vs)):
            if i in wanted:
                out[i] = gray(frame, format="gray").to_ndarray()
                if len(out) == len(wanted):
                    break
    return out
