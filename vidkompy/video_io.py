"""Reading videos with PyAV: probe, thumbnails with timestamps, frames on demand.

Frames are always counted in the decoder's output (presentation) order, and
times come from ``pts * time_base``: real files have variable frame rates, edit
lists and B-frames, so ``index / fps`` is wrong often enough to matter.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from vidkompy.errors import InputError
from vidkompy.models import VideoInfo
from vidkompy.progress import stage

# Width of the gray working copy that decode stores. Decoding dominates the cost
# of this pass, not the thumbnail's size; a few hundred pixels keep the
# alignment's working arrays small while leaving enough detail for a sub-pixel fit.
WORK_WIDTH = 320
SEEK_COST_FRAMES = 125  # frames decoded per seek, on average, with a 250-frame GOP


@dataclass(frozen=True)
class Thumbnails:
    """Every frame of a video, gray, at working size, with its time in seconds."""

    pts: np.ndarray  # (N,) float64 seconds
    frames: np.ndarray  # (N, h, w) uint8
    full_size: tuple[int, int]  # (width, height) of the source frames

    @property
    def factor(self) -> tuple[float, float]:
        """Source pixels per thumbnail pixel, (x, y)."""
        h, w = self.frames.shape[1:]
        return self.full_size[0] / w, self.full_size[1] / h


@contextmanager
def open_video(path: str | os.PathLike) -> Iterator[av.container.InputContainer]:
    """Open a file for reading, turning the ways it can fail into one-line errors."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, "no such file")
    if p.is_dir():
        raise InputError(p, "is a directory, not a video file")
    if p.stat().st_size == 0:
        raise InputError(p, "is empty")
    try:
        container = av.open(str(p), mode="r")
    except PermissionError as exc:
        raise InputError(p, "cannot be read (permission denied)") from exc
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(p, "is not a video FFmpeg can read") from exc
    try:
        if not container.streams.video:
            raise InputError(p, "has no video stream")
        yield container
    finally:
        container.close()


# Demuxers FFmpeg uses for single pictures: a still image opens as a one-frame "video".
_STILL_FORMATS = ("image2", "_pipe")


def _first_frame(path: str | os.PathLike, container: av.container.InputContainer) -> av.VideoFrame:
    """The first decodable frame, which also carries the display rotation."""
    try:
        for frame in container.decode(container.streams.video[0]):
            return frame
    except av.error.FFmpegError as exc:
        raise InputError(path, f"has no decodable video frames ({exc.strerror or exc})") from exc
    raise InputError(path, "has no decodable video frames")


def probe(path: str | os.PathLike) -> VideoInfo:
    """Describe a file's first video stream, or say in one line why it cannot be used."""
    with open_video(path) as container:
        vs = container.streams.video[0]
        cc = vs.codec_context
        if not cc.width or not cc.height:
            raise InputError(path, "has a video stream without a frame size")
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate
        fps = float(rate) if rate else 0.0
        duration = 0.0
        if vs.duration is not None and vs.time_base is not None:
            duration = float(vs.duration * vs.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        n_frames = vs.frames or (round(duration * fps) if fps else 0)
        fmt = container.format.name or ""
        if any(fmt == f or fmt.endswith(f) for f in _STILL_FORMATS):
            raise InputError(path, "is a still image, not a video")
        first = _first_frame(path, container)
        if n_frames == 1 and not duration:
            raise InputError(path, "has a single frame, not a video")
        return VideoInfo(
            path=str(path),
            width=cc.width,
            height=cc.height,
            fps=fps,
            n_frames=int(n_frames),
            duration=duration,
            rotation=int(round(first.rotation or 0)) % 360,
            has_audio=bool(container.streams.audio),
            pix_fmt=cc.pix_fmt or "yuv420p",
        )


def thumb_size(width: int, height: int, max_width: int = WORK_WIDTH) -> tuple[int, int]:
    if width <= max_width:
        return width, height
    return max_width, max(1, round(height * max_width / width))


def frame_seconds(frame: av.VideoFrame, fallback: float) -> float:
    if frame.pts is None or frame.time_base is None:
        return fallback
    return float(frame.pts * frame.time_base)


def decode_thumbnails(path: str | os.PathLike, max_width: int = WORK_WIDTH) -> Thumbnails:
    """Decode every frame once into a gray working copy; FFmpeg does the downscale.

    Full-size frames are never kept: each is reformatted inside swscale (area
    filter, the right one for shrinking) as it comes out of the decoder.
    """
    info = probe(path)
    tw, th = thumb_size(info.width, info.height, max_width)
    pts: list[float] = []
    chunks: list[np.ndarray] = []
    step = 1.0 / info.fps if info.fps else 0.04
    with open_video(path) as container, stage(f"decode {Path(path).name}", info.n_frames or None) as bar:
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        try:
            for frame in container.decode(vs):
                t = frame_seconds(frame, pts[-1] + step if pts else 0.0)
                img = frame.reformat(width=tw, height=th, format="gray", interpolation="AREA").to_ndarray()
                pts.append(t)
                chunks.append(img)
                bar.advance()
        except av.error.FFmpegError as exc:
            if not chunks:
                raise InputError(path, f"cannot be decoded ({exc.strerror or exc})") from exc
            # A damaged tail: keep what decoded, as players do.
    if not chunks:
        raise InputError(path, "has no decodable video frames")
    return Thumbnails(
        pts=np.asarray(pts, dtype=np.float64),
        frames=np.stack(chunks),
        full_size=(info.width, info.height),
    )


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
    with open_video(path) as container:
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        tb = vs.time_base
        frames: Iterator[av.VideoFrame] | None = None
        last = -1
        for target in wanted:
            if frames is None or target <= last or pts[target] - pts[max(last, 0)] > 2.0:
                container.seek(int(max(pts[target] - 0.001, 0.0) / tb), stream=vs, backward=True)
                frames = iter(container.decode(vs))
                last = -1
            idx = -1
            for frame in frames:
                idx = int(np.argmin(np.abs(pts - frame_seconds(frame, pts[target]))))
                if idx >= target:
                    if idx == target:
                        out[target] = frame.reformat(format="gray").to_ndarray()
                    break
            last = idx
            if target not in out:
                # The seek landed past the target (or timestamps disagree): read from the start.
                out.update(_read_sequential(path, [i for i in wanted if i not in out]))
                break
    return out


def _read_sequential(path: str | os.PathLike, indices: Sequence[int]) -> dict[int, np.ndarray]:
    wanted = set(int(i) for i in indices)
    out: dict[int, np.ndarray] = {}
    with open_video(path) as container:
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(vs)):
            if i in wanted:
                out[i] = frame.reformat(format="gray").to_ndarray()
                if len(out) == len(wanted):
                    break
    return out
