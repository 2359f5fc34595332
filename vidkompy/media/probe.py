"""What a video file is, read once: `probe` and the checked `open_video` every reader uses.

Every way a file can fail to open (missing, a folder, empty, unreadable, not a
video, a still image, no frames) becomes one `InputError` line here, so no
caller further down meets a raw FFmpeg exception for a user's mistake.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av

from vidkompy.errors import InputError
from vidkompy.models import VideoInfo


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
