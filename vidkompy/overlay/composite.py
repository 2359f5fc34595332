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
when complete; audio is muxed in step with the video (`vidkompy.media.audio`).
The same frame loop composes a segment (`vidkompy.overlay.segments`), which is why it
takes its frames as iterators of (index, frame).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vidkompy.errors import OutputError
from vidkompy.faults import crash_point
from vidkompy.media.audio import AudioFeed, plan_audio
from vidkompy.media.chunks import ChunkedEncoder
from vidkompy.media.decode import Reformatter
from vidkompy.media.encoding import (
    ColourTags,
    OutputSettings,
    add_video_stream,
    bit_depth,
    open_output,
    output_pix_fmt,
    validate_output,
)
from vidkompy.media.paths import atomic_output
from vidkompy.media.probe import open_video, probe
from vidkompy.models import Alignment, VideoInfo
from vidkompy.overlay.masks import Placement, Placer, chroma_factors, placement, yuv_planes
from vidkompy.progress import stage


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
    placement: Placement  # the fixed one (the one most frames share, when it moves: see `Placer`)
    fg_size: tuple[int, int]
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
    pix_fmt = output_pix_fmt(settings.codec, depth, settings.bit_depth)
    return Layout(canvas, placement(alignment, fg_size, canvas), fg_size, pix_fmt, ColourTags.of(bg_vs), rotation,
                  video_rate(fg_vs), fg_vs.time_base)


def open_encoder(out: av.container.OutputContainer, settings: OutputSettings, lay: Layout, *,
                 strict_dts: bool) -> ChunkedEncoder:
    """The output's video stream and its chunked encoder: the one set-up of the one pass and of every segment,
    which is what lets segments join by stream copy (same encoder, options and extradata)."""
    vs = add_video_stream(out, settings, rate=lay.rate, time_base=lay.time_base, size=lay.canvas,
                          pix_fmt=lay.pix_fmt, colour=lay.colour, rotation=lay.rotation)
    return ChunkedEncoder(out, vs, settings.keyint, settings.encoder_options(), strict_dts=strict_dts)


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

    def __call__(self, frame: av.VideoFrame, p: Placement) -> av.VideoFrame:
        pix_fmt = self.lay.pix_fmt
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
                   frames: np.ndarray, lay: Layout, placer: Placer, *, active: tuple[int, int, int, int] | None,
                   bg_name: object = "bg") -> Iterator[Composed]:
    """bg with fg pasted, one frame per fg frame, at fg's timestamps.

    ``fg_frames`` and ``bg_frames`` yield (presentation index, frame), bg's
    already in the output's format; bg is read forward only, and a frame the
    map repeats is reused (its saved pixels feed the blend). With a moving
    placement a reused bg frame is first restored from its pristine copy: the
    previous paste may lie elsewhere.
    """
    bg_index, bg_frame, bg_time, saved = -1, None, 0.0, []
    pristine: list[np.ndarray] | None = None
    pasted = False
    fg_picture = FgPictures(lay, active)
    for i, fg_frame in fg_frames:
        if i >= len(frames):
            break
        blender = placer(i)
        while bg_index < frames[i]:
            nxt = next(bg_frames, None)
            if nxt is None:
                break
            bg_index, bg_frame = nxt
            bg_time = _seconds(bg_frame)
            if placer.moving:
                pristine, pasted = [plane.copy() for plane in yuv_planes(bg_frame)], False
            else:
                saved = blender.save(yuv_planes(bg_frame))
        if bg_frame is None:
            raise OutputError(bg_name, "ended before the first mapped frame")
        planes = yuv_planes(bg_frame)
        if pristine is not None:
            if pasted:
                for plane, clean in zip(planes, pristine, strict=True):
                    np.copyto(plane, clean)
            saved, pasted = blender.save(pristine), True
        blender.paste(planes, saved, placer.moved(i, yuv_planes(fg_picture(fg_frame, blender.p))))
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
    bg_info: VideoInfo | None = None,
) -> Path:
    """Write bg with fg laid over it: one output frame per fg frame, at fg's timestamps, with audio.

    ``settings`` chooses codec, quality and audio (`OutputSettings`; h264 crf 18
    veryfast with fg's audio by default); ``crf``/``preset`` are shorthand that
    override its fields. The container follows ``output``'s extension. ``bg_info``: bg's probe, when the
    caller has it (a run probes each input once).
    Raises `SettingsError` before any work when the settings cannot be honoured.
    """
    settings = resolve_settings(settings, crf, preset)
    output = Path(output)
    container = validate_output(settings, output)
    frames = np.asarray(alignment.frames)
    rotation = (bg_info or probe(bg_path)).rotation
    with (
        atomic_output(output) as tmp,
        open_video(bg_path) as bg_in,
        open_video(fg_path) as fg_in,
    ):
        bg_vs, fg_vs = bg_in.streams.video[0], fg_in.streams.video[0]
        bg_vs.thread_type = fg_vs.thread_type = "AUTO"
        lay = layout(bg_in, fg_in, alignment, settings, rotation)
        placer = Placer(alignment, lay.fg_size, lay.canvas, border, blend, lay.pix_fmt)
        with open_output(tmp, container, lay.time_base) as out:
            if comment:
                out.metadata["comment"] = comment  # what the batch checks to skip finished pairs
            encoder = open_encoder(out, settings, lay, strict_dts=container.is_mov)
            bg_frames = enumerate(yuv_frames(bg_in.decode(bg_vs), lay.canvas, lay.pix_fmt))
            feed: AudioFeed | None = None
            end, last = 0.0, None
            try:
                with stage("composite", len(frames)) as bar:
                    for c in overlay_frames(enumerate(fg_in.decode(fg_vs)), bg_frames, frames, lay, placer,
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
