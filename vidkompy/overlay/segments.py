"""One long pair composed in pieces: plan contiguous runs of fg frames, compose each alone, check it.

As Av1an does for encoding, the three steps are separate: `plan_segments` cuts
fg's frame range, `compose_segment` writes one run on any worker (video only,
starting with an IDR frame, fg's own timestamps, the one-pass encoder
settings), `verify_segment` says whether a file on disk can be trusted, and
`vidkompy.media.join.join_segments` concatenates them by stream copy.

A segment finds its frames by seeking, so it must know which decoded frame is
which: the caller passes fg's and bg's per-frame times (seconds, presentation
order, as the decode stage records them) and frames are matched by pts, never
by counting at a nominal rate.

Cost: a segment decodes bg and fg from the keyframe before its first frame, so
inputs with long GOPs (x264's default 250) make each segment decode up to a GOP
it does not use; measured on a 10 s 720p pair with one keyframe per input,
4 segments composed one after another took 1.5x the one pass, 8 took 2x. The
join itself is a stream copy (0.07-0.6 s there), and the win is running the
segments on several workers at once.

How close to the one pass: a segment holds whole chunks of the one pass
(`vidkompy.media.chunks`: the output is encoded in independent chunks of
``keyint`` fg frames, a fresh encoder each, one pass or not), so the joined
file is the one pass's packets. Before chunks, a fresh encoder per segment
against one continuous encode came within only 42.1-42.3 dB of it at the
default crf 18 (x264's CRF rate control carries state across GOPs), and only
constant QP made them identical. x264's frame threads do not always repeat one
pass bit for bit on tiny frames (320x240: 61 dB worst frame between two runs;
640x360 repeated exactly), which is as close as two runs of the one pass get.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from vidkompy.errors import InputError, SettingsError
from vidkompy.media.chunks import chunk_count
from vidkompy.media.decode import Reformatter, packets_from_keyframe, packets_from_start
from vidkompy.media.encoding import (
    CONTAINERS,
    OutputSettings,
    open_output,
    segment_suffix,
    validate_settings,
)
from vidkompy.media.paths import atomic_output
from vidkompy.media.probe import open_video, probe
from vidkompy.models import Alignment, VideoInfo
from vidkompy.options import KEYINT
from vidkompy.overlay.composite import layout, open_encoder, overlay_frames, writable
from vidkompy.overlay.masks import Placer
from vidkompy.progress import stage


@dataclass(frozen=True)
class Segment:
    """fg frames [start, stop) of the output, the ``index``-th piece."""

    index: int
    start: int
    stop: int

    @property
    def frames(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class ComposedSegment:
    """A composed segment as the store keeps it: which frames, the file's name and its sha256."""

    segment: Segment
    file: str
    sha256: str


# `auto_segments`: a segment should be long enough that what it pays alone (seeking bg and fg to the keyframe
# before its first frame, decoding up to a GOP it does not use, a fresh encoder) stays a few per cent.
MIN_SEGMENT_SECONDS = 60.0
SEGMENTS_PER_WORKER = 2


def auto_segments(n_frames: int, fps: float, workers: int) -> int:
    """How many segments ``--segments auto`` cuts: two per worker, none shorter than a minute.

    One worker (one machine) gets one pass: segments there are not faster (see
    benchmarks/segments_bench.py). Two per worker rather than one, so that a
    worker lost mid-run costs half as much again, and a slower worker does not
    hold the rest up for a whole share.
    """
    if workers <= 1 or n_frames < 1:
        return 1
    longest = max(1, int(n_frames // max(1.0, MIN_SEGMENT_SECONDS * (fps if fps > 0 else 25.0))))
    return max(1, min(SEGMENTS_PER_WORKER * workers, longest))


def plan_segments(n_frames: int, count: int, keyint: int = KEYINT) -> tuple[Segment, ...]:
    """Cut [0, n_frames) into ``count`` contiguous runs of whole chunks (`vidkompy.media.chunks`), near-equal in length.

    A segment then holds whole chunks of the one pass, so joined segments are
    the one pass's own packets. ``count`` is clamped to [1, number of chunks]:
    a segment holds at least one chunk.
    """
    if n_frames < 1:
        raise ValueError(f"nothing to segment: {n_frames} frames")
    chunks = chunk_count(n_frames, keyint)
    n = max(1, min(int(count), chunks))
    cuts = [min(n_frames, keyint * round(k * chunks / n)) for k in range(n + 1)]
    return tuple(Segment(k, cuts[k], cuts[k + 1]) for k in range(n))


def _index_of(pts: np.ndarray, t: float) -> int | None:
    """The presentation index whose time is ``t``, or None if none is within half a frame."""
    k = int(np.searchsorted(pts, t))
    best = None
    for j in (k - 1, k):
        if 0 <= j < len(pts) and (best is None or abs(pts[j] - t) < abs(pts[best] - t)):
            best = j
    if best is None:
        return None
    gaps = np.diff(pts[max(0, best - 1) : best + 2])
    tol = 0.5 * float(gaps.min()) if len(gaps) and gaps.min() > 0 else 1e-3
    return best if abs(pts[best] - t) <= tol else None


def frames_from(container: av.container.InputContainer, pts: np.ndarray, start: int,
                stop: int | None = None, *, name: object = "video") -> Iterator[tuple[int, av.VideoFrame]]:
    """(index, frame) for presentation indices start, start+1, ... (up to ``stop``), by seeking.

    Starts at the keyframe before ``pts[start]`` (`packets_from_keyframe`, which
    also finds it in files without an index) and decodes forward, dropping what
    comes before; where no keyframe is found, or the decoded times disagree,
    from the file's start.
    """
    vs = container.streams.video[0]
    vs.thread_type = "AUTO"

    def starts() -> Iterator[Iterator[av.Packet]]:
        packets = packets_from_keyframe(container, vs, float(pts[start]))
        if packets is not None:
            yield packets
        yield packets_from_start(container, vs)

    for packets in starts():
        first = True
        for frame in (f for packet in packets for f in packet.decode()):
            if frame.pts is None:
                raise InputError(name, "has frames without timestamps; it cannot be composed in segments")
            i = _index_of(pts, float(frame.pts * frame.time_base))
            if i is None:
                raise InputError(name, f"decoded a frame at {float(frame.pts * frame.time_base):.6f} s that its "
                                       "frame times do not list")
            if first and i > start:
                break  # began past the target: from the start
            first = False
            if i < start:
                continue
            if stop is not None and i >= stop:
                return
            yield i, frame
        else:
            return  # the stream ended
    raise InputError(name, f"frame {start} cannot be reached by seeking or decoding from the start")


def compose_segment(
    bg_path: str | os.PathLike,
    fg_path: str | os.PathLike,
    output: str | os.PathLike,
    alignment: Alignment,
    segment: Segment,
    *,
    fg_pts: np.ndarray,
    bg_pts: np.ndarray,
    border: int = 8,
    blend: bool = False,
    settings: OutputSettings | None = None,
    bg_info: VideoInfo | None = None,
) -> Path:
    """Write fg frames [segment.start, segment.stop) over bg as a video-only file (``segment_suffix``).

    The same encoder and options as the one-pass output (so the pieces join by
    stream copy), fg's own timestamps, an IDR frame first (a fresh encoder's
    first frame is one, and x264/x265 keep GOPs closed). Written atomically.
    """
    settings = settings or OutputSettings()
    validate_settings(settings)
    output = Path(output)
    suffix = segment_suffix(settings)
    if output.suffix.lower() != suffix:
        raise SettingsError(f"{output}: a {settings.codec} segment is written as {suffix}")
    frames = np.asarray(alignment.frames)
    fg_pts, bg_pts = np.asarray(fg_pts, np.float64), np.asarray(bg_pts, np.float64)
    if not 0 <= segment.start < segment.stop <= len(frames):
        raise ValueError(f"segment {segment} outside the map's {len(frames)} frames")
    if segment.start % settings.keyint:
        raise ValueError(f"segment {segment} does not start on a chunk of {settings.keyint} frames")
    if len(fg_pts) < segment.stop or len(bg_pts) <= int(frames[segment.stop - 1]):
        raise ValueError("the frame times do not cover the segment")
    rotation = (bg_info or probe(bg_path)).rotation
    with atomic_output(output) as tmp, open_video(bg_path) as bg_in, open_video(fg_path) as fg_in:
        lay = layout(bg_in, fg_in, alignment, settings, rotation)
        placer = Placer(alignment, lay.fg_size, lay.canvas, border, blend, lay.pix_fmt)
        bg_start = int(frames[segment.start])
        sws = Reformatter()
        bg_frames = ((i, writable(f, lay.canvas, lay.pix_fmt, sws))
                     for i, f in frames_from(bg_in, bg_pts, bg_start, name=bg_path))
        fg_frames = frames_from(fg_in, fg_pts, segment.start, segment.stop, name=fg_path)
        with open_output(tmp, CONTAINERS[suffix], lay.time_base) as out:
            out.metadata["comment"] = f"vidkompy segment {segment.start}-{segment.stop}"
            encoder = open_encoder(out, settings, lay, strict_dts=True)  # segments are QuickTime files
            written = 0
            with stage(f"composite {segment.start}-{segment.stop}", segment.frames) as bar:
                for c in overlay_frames(fg_frames, bg_frames, frames, lay, placer, active=alignment.active,
                                        bg_name=bg_path):
                    encoder.encode(c.index, c.frame)
                    written += 1
                    bar.advance()
            if written != segment.frames:
                # a short segment would fail verification on every retry: say why instead
                raise InputError(fg_path, f"ended after frame {segment.start + written - 1}, before the "
                                          f"segment's last frame {segment.stop - 1}")
            encoder.finish()
    return output


def verify_segment(path: str | os.PathLike, expected_frames: int, *, decode: bool = False) -> bool:
    """Whether a segment file can be joined: it opens, has one video stream, starts with a keyframe and
    holds exactly ``expected_frames`` packets, each with a timestamp.

    Counting packets needs no decoding (milliseconds), and catches what an
    interrupted or truncated write leaves. ``decode=True`` also decodes every
    frame, which catches damage inside packets too, at the price of a decode.
    """
    p = Path(path)
    if not p.is_file() or p.stat().st_size == 0:
        return False
    try:
        with av.open(str(p)) as c:
            if len(c.streams.video) != 1 or c.streams.audio:
                return False
            vs = c.streams.video[0]
            count, first_key = 0, False
            for packet in c.demux(vs):
                if packet.size == 0 and packet.pts is None and packet.dts is None:
                    continue
                if packet.pts is None:
                    return False
                if count == 0:
                    first_key = packet.is_keyframe
                count += 1
            if not first_key or count != expected_frames:
                return False
            if decode:
                c.seek(0, stream=vs)
                vs.thread_type = "AUTO"
                decoded = sum(1 for _ in c.decode(vs))
                return decoded == expected_frames
            return True
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError):
        return False
