"""The overlay: decode fg and bg in lockstep, paste fg into bg's own planes, encode the result.

It stays in YUV: fg's planes are pasted into the decoded bg frame's own planes
(numpy views over ``frame.planes``); a round trip through RGB cost about 6
CPU-seconds more per 30 s of 1080p in our measurements. The default output
(h264, 8-bit 4:2:0 in) pastes straight into bg's decoded yuv420p frame; other
pixel formats (10-bit, ProRes's 4:2:2) first convert each bg frame to the
output's format and paste there, with the same code over 16-bit planes. The
map is monotonic, so bg never seeks back, and a bg frame that the map repeats
is decoded once.

The file is written under a temporary name in the target folder and renamed
when complete; audio is muxed in step with the video (`vidkompy.interleave`).
The same frame loop composes a segment (`vidkompy.segments`), which is why it
takes its frames as iterators of (index, frame).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vidkompy.chunks import ChunkedEncoder
from vidkompy.encoding import (
    ColourTags,
    OutputSettings,
    add_video_stream,
    bit_depth,
    open_output,
    output_pix_fmt,
    validate_output,
)
from vidkompy.errors import OutputError
from vidkompy.faults import crash_point
from vidkompy.interleave import AudioFeed, plan_audio
from vidkompy.models import Alignment
from vidkompy.progress import stage
from vidkompy.video_io import Reformatter, open_video, probe


@dataclass(frozen=True)
class Placement:
    """fg's pixels on the canvas: the pasted rectangle and which fg pixels show."""

    width: int  # fg after scaling to its region
    height: int
    x: int  # top-left on the canvas (may be negative: clipped)
    y: int
    canvas: tuple[int, int]

    @property
    def dst(self) -> tuple[slice, slice]:
        cw, ch = self.canvas
        return (slice(max(0, self.y), min(ch, self.y + self.height)),
                slice(max(0, self.x), min(cw, self.x + self.width)))

    @property
    def src(self) -> tuple[slice, slice]:
        ys, xs = self.dst
        return slice(ys.start - self.y, ys.stop - self.y), slice(xs.start - self.x, xs.stop - self.x)


def placement(alignment: Alignment, fg_size: tuple[int, int], canvas: tuple[int, int]) -> Placement:
    """Whole-pixel placement of fg on bg's canvas, scaled to the region it shows (even sizes for 4:2:0).

    With ``alignment.active`` only that part of fg is placed, so its size is the one scaled.
    """
    g = alignment.geometry
    w, h = alignment.active[2:] if alignment.active else fg_size
    if abs(g.scale - 1.0) > 1e-3:
        w, h = round(w / g.scale), round(h / g.scale)
    w, h = max(2, w - w % 2), max(2, h - h % 2)
    return Placement(w, h, int(round(g.x)), int(round(g.y)), canvas)


def edge_alpha(p: Placement, border: int) -> np.ndarray:
    """fg's opacity over the visible part: a linear ramp of ``border`` px on the edges where bg shows.

    An edge that touches the canvas has no bg beside it and stays hard.
    """
    ys, xs = p.dst
    h, w = ys.stop - ys.start, xs.stop - xs.start
    cw, ch = p.canvas
    ramp_y = np.ones(h, np.float32)
    ramp_x = np.ones(w, np.float32)
    if border > 0:
        r = (np.arange(border, dtype=np.float32) + 0.5) / border
        n = min(border, h)
        if ys.start > 0:
            ramp_y[:n] = np.minimum(ramp_y[:n], r[:n])
        if ys.stop < ch:
            ramp_y[h - n :] = np.minimum(ramp_y[h - n :], r[:n][::-1])
        n = min(border, w)
        if xs.start > 0:
            ramp_x[:n] = np.minimum(ramp_x[:n], r[:n])
        if xs.stop < cw:
            ramp_x[w - n :] = np.minimum(ramp_x[w - n :], r[:n][::-1])
    return np.minimum(ramp_y[:, None], ramp_x[None, :])


def chroma_factors(pix_fmt: str) -> tuple[int, int]:
    """(vertical, horizontal) chroma subsampling of a planar YUV format: (2, 2) for 4:2:0, (1, 2) for 4:2:2."""
    probe_frame = av.VideoFrame(16, 16, pix_fmt)
    chroma = probe_frame.planes[1]
    return 16 // chroma.height, 16 // chroma.width


def _scaled(s: slice, f: int, n: int) -> slice:
    return slice(s.start // f, s.start // f + n // f)


class Blender:
    """Pastes fg planes into a bg frame; feathers only the strips where alpha < 1.

    The mask is built once; for one visible edge its strips are a single rectangle.
    Works on any planar YUV format: the chroma slices follow its subsampling and
    the samples are whatever width the planes have (uint8, or uint16 above 8 bits).
    """

    def __init__(self, p: Placement, border: int, blend: bool, pix_fmt: str = "yuv420p"):
        self.p = p
        ys, xs = p.dst
        sy, sx = p.src
        h, w = ys.stop - ys.start, xs.stop - xs.start
        fy, fx = chroma_factors(pix_fmt)
        self.luma = (ys, xs, sy, sx)
        # chroma at its own resolution; an odd offset lands half a chroma pixel early
        self.chroma = (_scaled(ys, fy, h), _scaled(xs, fx, w), _scaled(sy, fy, h), _scaled(sx, fx, w))
        self.strips: list[tuple[tuple[slice, slice], np.ndarray]] = []
        self.chroma_strips: list[tuple[tuple[slice, slice], np.ndarray]] = []
        if blend and border > 0:
            alpha = edge_alpha(p, border)
            self.strips = _strips(alpha)
            self.chroma_strips = _strips(alpha[::fy, ::fx][: h // fy, : w // fx])

    def paste(self, bg_planes: list[np.ndarray], bg_saved: list[np.ndarray], fg_planes: list[np.ndarray]) -> None:
        for k, (dst, src) in enumerate(zip(bg_planes, fg_planes, strict=True)):
            ys, xs, sy, sx = self.luma if k == 0 else self.chroma
            region = dst[ys, xs]
            region[...] = src[sy, sx]
            for (ry, rx), a in self.strips if k == 0 else self.chroma_strips:
                under = bg_saved[k][ry, rx].astype(np.float32)
                over = region[ry, rx].astype(np.float32)
                region[ry, rx] = (under + a * (over - under) + 0.5).astype(region.dtype)

    def save(self, bg_planes: list[np.ndarray]) -> list[np.ndarray]:
        """The bg pixels under fg, kept while this bg frame is reused (blending reads them)."""
        if not self.strips:
            return []
        return [plane[(self.luma if k == 0 else self.chroma)[:2]].copy() for k, plane in enumerate(bg_planes)]


def _strips(alpha: np.ndarray) -> list[tuple[tuple[slice, slice], np.ndarray]]:
    """Rectangles (top, bottom, left, right bands) covering every pixel with alpha < 1.

    The edge ramp is separable (`edge_alpha`): a band row is soft across the whole
    row, a band column down the whole column. Counting rows that are *all* opaque
    instead made the top band the whole picture whenever the left or right edge was
    soft (every row then has soft pixels): 11 ms a 720p frame blended in float32.
    """
    h, w = alpha.shape
    soft_row = alpha.max(axis=1) < 1
    soft_col = alpha.max(axis=0) < 1
    top = int(np.argmin(soft_row)) if not soft_row.all() else h
    bottom = h - int(np.argmin(soft_row[::-1])) if not soft_row.all() else h
    left = int(np.argmin(soft_col)) if not soft_col.all() else w
    right = w - int(np.argmin(soft_col[::-1])) if not soft_col.all() else w
    out = []
    if top > 0:
        out.append(((slice(0, top), slice(0, w)), alpha[:top]))
    if bottom < h and bottom > top:
        out.append(((slice(bottom, h), slice(0, w)), alpha[bottom:h]))
    if left > 0 and bottom > top:
        out.append(((slice(top, bottom), slice(0, left)), alpha[top:bottom, :left]))
    if right < w and bottom > top and right > left:
        out.append(((slice(top, bottom), slice(right, w)), alpha[top:bottom, right:]))
    return out


def yuv_planes(frame: av.VideoFrame) -> list[np.ndarray]:
    """Writable numpy views over a planar YUV frame's planes (no copy): uint8, or uint16 above 8 bits."""
    dtype = np.dtype(np.uint8) if frame.format.components[0].bits <= 8 else np.dtype("<u2")
    return [np.frombuffer(plane, dtype).reshape(plane.height, plane.line_size // dtype.itemsize)[:, : plane.width]
            for plane in frame.planes]


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path`` that replaces it only if the block completes."""
    folder = path.parent
    if not folder.is_dir():
        raise OutputError(path, "output folder does not exist")
    if not os.access(folder, os.W_OK):
        raise OutputError(path, "output folder is not writable")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".part" + path.suffix, dir=folder)
    except OSError as exc:
        raise OutputError(path, f"output folder is not writable ({exc.strerror})") from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp's 0600 is for the temporary file, not for the output
        os.replace(tmp_path, path)
    except OSError as exc:  # PyAV's write errors are OSErrors too, with the errno
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OutputError(path, "the output's disk is full; nothing was written under this name") from exc
        raise
    finally:
        tmp_path.unlink(missing_ok=True)


def open_encoder(out: av.container.OutputContainer, fg_stream: av.video.stream.VideoStream, size: tuple[int, int],
                 crf: int, preset: str) -> av.video.stream.VideoStream:
    """The default h264 encoder at the given crf/preset (the benchmark floor's set-up)."""
    settings = OutputSettings("h264", crf=crf, preset=preset)
    return add_video_stream(out, settings, rate=video_rate(fg_stream), time_base=fg_stream.time_base, size=size,
                            pix_fmt="yuv420p")


def video_rate(stream: av.video.stream.VideoStream) -> Fraction:
    return stream.average_rate or stream.guessed_rate or Fraction(25)


def resolve_settings(settings: OutputSettings | None, crf: int | None, preset: str | None) -> OutputSettings:
    """``settings`` with the shorthand ``crf``/``preset`` keywords applied over it."""
    settings = settings or OutputSettings()
    if crf is not None:
        settings = dataclasses.replace(settings, crf=crf)
    if preset is not None:
        settings = dataclasses.replace(settings, preset=preset)
    return settings


@dataclass(frozen=True)
class Layout:
    """Everything about the output's pictures that follows from the inputs and the alignment."""

    canvas: tuple[int, int]
    placement: Placement
    pix_fmt: str
    colour: ColourTags
    rotation: int
    rate: Fraction
    time_base: Fraction


def layout(bg_in: av.container.InputContainer, fg_in: av.container.InputContainer, alignment: Alignment,
           settings: OutputSettings, rotation: int) -> Layout:
    """The canvas (bg's size, made even), fg's placement, the pixel format and colour tags."""
    bg_vs, fg_vs = bg_in.streams.video[0], fg_in.streams.video[0]
    canvas = (bg_vs.codec_context.width, bg_vs.codec_context.height)
    canvas = (canvas[0] - canvas[0] % 2, canvas[1] - canvas[1] % 2)
    fg_size = (fg_vs.codec_context.width, fg_vs.codec_context.height)
    depth = max(bit_depth(bg_vs.codec_context.pix_fmt), bit_depth(fg_vs.codec_context.pix_fmt))
    return Layout(canvas, placement(alignment, fg_size, canvas), output_pix_fmt(settings.codec, depth),
                  ColourTags.of(bg_vs), rotation, video_rate(fg_vs), fg_vs.time_base)


def yuv_frames(decoded: Iterator[av.VideoFrame], canvas: tuple[int, int],
               pix_fmt: str = "yuv420p") -> Iterator[av.VideoFrame]:
    """bg frames as writable frames of the output's pixel format and the (even) canvas size."""
    sws = Reformatter()
    for frame in decoded:
        yield writable(frame, canvas, pix_fmt, sws)


def writable(frame: av.VideoFrame, canvas: tuple[int, int], pix_fmt: str, sws: Reformatter) -> av.VideoFrame:
    """A decoded bg frame ready to paste into: its own buffer when it already fits, else a converted copy
    (``sws``: the stream's kept scaling context)."""
    if frame.format.name != pix_fmt or (frame.width, frame.height) != canvas:
        return sws(frame, width=canvas[0], height=canvas[1], format=pix_fmt)
    frame.make_writable()
    return frame


class FgPictures:
    """fg's frames (or their active picture) in the output's format at the placed size.

    Each swscale step keeps its context between frames (``Reformatter``): a frame
    that needs no conversion passes through untouched.
    """

    def __init__(self, lay: Layout, active: tuple[int, int, int, int] | None):
        self.lay, self.active = lay, active
        self._convert, self._scale = Reformatter(), Reformatter()

    def __call__(self, frame: av.VideoFrame) -> av.VideoFrame:
        p, pix_fmt = self.lay.placement, self.lay.pix_fmt
        if self.active is not None:
            if frame.format.name != pix_fmt:
                frame = self._convert(frame, format=pix_fmt)
            frame = _crop(frame, self.active)
        if frame.format.name == pix_fmt and (frame.width, frame.height) == (p.width, p.height):
            return frame
        return self._scale(frame, width=p.width, height=p.height, format=pix_fmt, interpolation="BICUBIC")


def _crop(frame: av.VideoFrame, rect: tuple[int, int, int, int]) -> av.VideoFrame:
    """A copy of ``rect`` (x, y, w, h; snapped to even numbers for subsampled chroma) of a planar frame."""
    x, y, w, h = (int(v) - int(v) % 2 for v in rect)
    x, y = max(0, x), max(0, y)
    w, h = max(2, min(w, frame.width - x)), max(2, min(h, frame.height - y))
    out = av.VideoFrame(w, h, frame.format.name)
    out.pts, out.time_base = frame.pts, frame.time_base
    fy, fx = chroma_factors(frame.format.name)
    for k, (src, dst) in enumerate(zip(yuv_planes(frame), yuv_planes(out), strict=True)):
        if k == 0:
            dst[...] = src[y : y + h, x : x + w]
        else:
            dst[...] = src[y // fy : y // fy + h // fy, x // fx : x // fx + w // fx]
    return out


@dataclass(frozen=True)
class Composed:
    """One output frame: fg frame ``index`` over bg frame ``bg_index``, and the two frames' times."""

    index: int
    frame: av.VideoFrame
    bg_index: int
    fg_time: float
    bg_time: float
    duration: float  # fg frame's duration in seconds (0 when the stream does not say)


def _seconds(frame: av.VideoFrame) -> float:
    return float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base is not None else 0.0


def overlay_frames(fg_frames: Iterator[tuple[int, av.VideoFrame]], bg_frames: Iterator[tuple[int, av.VideoFrame]],
                   frames: np.ndarray, lay: Layout, blender: Blender, *, active: tuple[int, int, int, int] | None,
                   bg_name: object = "bg") -> Iterator[Composed]:
    """bg with fg pasted, one frame per fg frame, at fg's timestamps.

    ``fg_frames`` and ``bg_frames`` yield (presentation index, frame), bg's
    already in the output's format; bg is read forward only, and a frame the
    map repeats is reused (its saved pixels feed the blend).
    """
    bg_index, bg_frame, bg_time, saved = -1, None, 0.0, []
    fg_picture = FgPictures(lay, active)
    for i, fg_frame in fg_frames:
        if i >= len(frames):
            break
        while bg_index < frames[i]:
            nxt = next(bg_frames, None)
            if nxt is None:
                break
            bg_index, bg_frame = nxt
            bg_time = _seconds(bg_frame)
            saved = blender.save(yuv_planes(bg_frame))
        if bg_frame is None:
            raise OutputError(bg_name, "ended before the first mapped frame")
        fg_pic = fg_picture(fg_frame)
        blender.paste(yuv_planes(bg_frame), saved, yuv_planes(fg_pic))
        fg_time = _seconds(fg_frame)
        duration = float(fg_frame.duration * fg_frame.time_base) if fg_frame.duration and fg_frame.time_base else 0.0
        bg_frame.pts = fg_frame.pts
        bg_frame.time_base = fg_frame.time_base
        bg_frame.pict_type = av.video.frame.PictureType.NONE  # else x264 copies bg's I/P/B
        yield Composed(i, bg_frame, bg_index, fg_time, bg_time, duration)


def composite(
    bg_path: str | os.PathLike,
    fg_path: str | os.PathLike,
    output: str | os.PathLike,
    alignment: Alignment,
    *,
    border: int = 8,
    blend: bool = False,
    crf: int | None = None,
    preset: str | None = None,
    comment: str | None = None,
    settings: OutputSettings | None = None,
) -> Path:
    """Write bg with fg laid over it: one output frame per fg frame, at fg's timestamps, with audio.

    ``settings`` chooses codec, quality and audio (`OutputSettings`; h264 crf 18
    veryfast with fg's audio by default); ``crf``/``preset`` are shorthand that
    override its fields. The container follows ``output``'s extension.
    Raises `SettingsError` before any work when the settings cannot be honoured.
    """
    settings = resolve_settings(settings, crf, preset)
    output = Path(output)
    container = validate_output(settings, output)
    frames = np.asarray(alignment.frames)
    rotation = probe(bg_path).rotation
    with (
        atomic_output(output) as tmp,
        open_video(bg_path) as bg_in,
        open_video(fg_path) as fg_in,
    ):
        bg_vs, fg_vs = bg_in.streams.video[0], fg_in.streams.video[0]
        bg_vs.thread_type = fg_vs.thread_type = "AUTO"
        lay = layout(bg_in, fg_in, alignment, settings, rotation)
        blender = Blender(lay.placement, border, blend, lay.pix_fmt)
        with open_output(tmp, container, lay.time_base) as out:
            if comment:
                out.metadata["comment"] = comment  # what the batch checks to skip finished pairs
            vs = add_video_stream(out, settings, rate=lay.rate, time_base=lay.time_base, size=lay.canvas,
                                  pix_fmt=lay.pix_fmt, colour=lay.colour, rotation=lay.rotation)
            encoder = ChunkedEncoder(out, vs, settings.keyint, settings.encoder_options(),
                                     strict_dts=container.is_mov)
            bg_frames = enumerate(yuv_frames(bg_in.decode(bg_vs), lay.canvas, lay.pix_fmt))
            feed: AudioFeed | None = None
            end, last = 0.0, None
            try:
                with stage("composite", len(frames)) as bar:
                    for c in overlay_frames(enumerate(fg_in.decode(fg_vs)), bg_frames, frames, lay, blender,
                                            active=alignment.active, bg_name=bg_path):
                        if c.index == 0:
                            # audio's stream must exist before the first packet is muxed
                            plan = plan_audio(bg_path, fg_path, mode=settings.audio, bg_start=c.bg_time,
                                              fg_start=c.fg_time)
                            feed = AudioFeed(plan, out, container) if plan is not None else None
                        encoder.encode(c.index, c.frame)
                        end = c.fg_time + (c.duration or (c.fg_time - last if last is not None else 0.0))
                        last = c.fg_time
                        if feed is not None:
                            feed.mux_until(c.fg_time)
                        bar.advance()
                        if c.index == len(frames) // 2:
                            crash_point("composite")
                encoder.finish()
                if feed is not None:
                    feed.finish(end)
            finally:
                if feed is not None:
                    feed.close()
    return output
