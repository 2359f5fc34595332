"""Small readers the tests share."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

VIDKOMPY = str(Path(sys.executable).with_name("vidkompy"))

# The cases of the pipeline issue: a re-timed, trimmed, re-encoded crop; a full-width band (top and
# bottom edges of bg visible); a crop touching three edges (only its right edge visible).
CASES = {
    "crop": dict(region=(72, 40, 160, 120), bg_fps=25, fg_fps=30, trim=(0.4, 0.4)),
    "band": dict(region=(0, 72, 320, 96), bg_fps=25, fg_fps=25, trim=(0.3, 0.5), seed=1),
    "three_edges": dict(region=(0, 0, 240, 240), bg_fps=30, fg_fps=25, trim=(0.5, 0.2), seed=2),
    # fg larger than bg: the whole picture at 1.5x, which the overlay scales back to fit the canvas
    "larger": dict(region=(0, 0, 320, 240), fg_size=(480, 360), bg_fps=25, fg_fps=30, seed=3),
}




def write_video(path, frames, fps: float | str = 25, crf: int = 18, *, codec: str = "libx264",
                options: dict[str, str] | None = None, pix_fmt: str = "yuv420p", **context) -> Path:
    """RGB pictures into a video (a test's own footage): h264 unless ``codec`` says otherwise.

    ``options`` replace the h264 defaults (crf, preset); ``context`` sets codec context
    attributes such as ``gop_size`` or ``max_b_frames``.
    """
    from fractions import Fraction

    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=Fraction(fps))
        vs.width, vs.height, vs.pix_fmt = frames[0].shape[1], frames[0].shape[0], pix_fmt
        vs.options = {"crf": str(crf), "preset": "veryfast"} if options is None else options
        for name, value in context.items():
            setattr(vs.codec_context, name, value)
        for k, f in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), "rgb24")
            frame.pts = k
            for p in vs.encode(frame):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    return Path(path)


@contextlib.contextmanager
def vidkompy_log(level: int = logging.INFO) -> Iterator[list[logging.LogRecord]]:
    """vidkompy's log records at ``level`` and above while the block runs, from a handler on its own logger:
    the CLI's logging setup (`main` called in this process) stops them reaching pytest's caplog at the root."""
    log = logging.getLogger("vidkompy")
    records: list[logging.LogRecord] = []
    handler = logging.Handler(level)
    handler.emit = records.append  # type: ignore[method-assign]
    before = log.level
    log.addHandler(handler)
    log.setLevel(level)
    try:
        yield records
    finally:
        log.removeHandler(handler)
        log.setLevel(before)


def decode_all(path, fmt: str = "rgb24") -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format=fmt) for f in c.decode(video=0)]


def timestamps(path) -> list[float]:
    with av.open(str(path)) as c:
        return [float(f.pts * f.time_base) for f in c.decode(video=0)]


def stream_types(path) -> list[str]:
    with av.open(str(path)) as c:
        return [s.type for s in c.streams]


def video_rate(path) -> float:
    with av.open(str(path)) as c:
        return float(c.streams.video[0].average_rate)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)
