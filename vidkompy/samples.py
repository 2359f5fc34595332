"""Sample pairs with exact ground truth, made with PyAV.

bg frame k is source frame k; fg frame i is a crop of source frame ``frames[i]``
(optionally resized, re-timed, trimmed, re-encoded at another quality), so the
right answer is known to the pixel and the frame. Tests, benchmarks and
``make demo`` all use this one generator.

Run ``python -m vidkompy.samples FOLDER`` to write a demo pair.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from scipy import ndimage

from vidkompy.models import as_fraction


@dataclass(frozen=True)
class SamplePair:
    bg: Path
    fg: Path
    x: float  # top-left of the bg region fg shows, bg pixels
    y: float
    scale: float  # fg width / region width
    frames: np.ndarray  # true bg frame per fg frame
    bg_fps: float
    fg_fps: float


def _texture(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Multi-scale coloured noise with hard-edged blocks: detail at every scale, no repeats."""
    img = np.zeros((height, width, 3), np.float32)
    for sigma, weight in ((1.0, 0.35), (3.0, 0.6), (9.0, 1.0), (27.0, 1.4)):
        noise = rng.standard_normal((height, width, 3)).astype(np.float32)
        layer = ndimage.gaussian_filter(noise, (sigma, sigma, 0))
        img += weight * layer / (layer.std() + 1e-6)
    for _ in range(max(4, height * width // 6000)):
        h, w = rng.integers(4, max(5, height // 6), size=2)
        y, x = rng.integers(0, height - h), rng.integers(0, width - w)
        img[y : y + h, x : x + w] += rng.normal(0, 1.5, 3).astype(np.float32)
    img = (img - img.mean()) / (img.std() + 1e-6)
    return np.clip(128 + 40 * img, 0, 255).astype(np.uint8)


def source_frames(
    width: int, height: int, n: int, *, seed: int = 0, speed: float = 2.0, static: int = 0
) -> Iterator[np.ndarray]:
    """A textured canvas panned under a fixed window, with a moving disc: every frame distinct.

    ``static`` frames at the start repeat one picture (a static shot).
    """
    rng = np.random.default_rng(seed)
    margin_x = int(speed * n) + 8
    margin_y = int(0.15 * height) + 8
    canvas = _texture(height + 2 * margin_y, width + margin_x + 8, rng)
    yy, xx = np.mgrid[0:height, 0:width]
    radius = max(4, min(width, height) // 10)
    for k in range(n):
        m = max(0, k - static)
        px = int(round(speed * m))
        py = int(round(margin_y + 0.8 * margin_y * math.sin(2 * math.pi * m / max(n, 2))))
        frame = canvas[py : py + height, px : px + width].copy()
        cx = (0.2 + 0.6 * ((m * 7) % n) / n) * width
        cy = (0.3 + 0.4 * math.cos(m / 5.0)) * height
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 < radius**2
        frame[disc] = (255 - frame[disc]) // 2 + 60
        yield frame


def _open_encoder(path: Path, width: int, height: int, fps: Fraction, crf: int) -> tuple:
    out = av.open(str(path), mode="w")
    vs = out.add_stream("libx264", rate=fps)
    vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
    vs.options = {"crf": str(crf), "preset": "veryfast"}
    vs.codec_context.thread_type = "AUTO"
    return out, vs


def _add_tone_stream(out: av.container.OutputContainer) -> av.audio.stream.AudioStream:
    stream = out.add_stream("aac", rate=48000)
    stream.layout = "stereo"
    return stream


def _write_tone(out: av.container.OutputContainer, stream: av.audio.stream.AudioStream, seconds: float) -> None:
    """A 440 Hz tone as AAC: fg carries audio, so the overlay must too."""
    rate = 48000
    n = int(seconds * rate)
    t = np.arange(n) / rate
    samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    block = 1024
    for start in range(0, n, block):
        chunk = samples[start : start + block]
        data = np.stack([chunk, chunk])
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format="fltp", layout="stereo")
        frame.sample_rate = rate
        frame.pts = start
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def make_pair(
    folder: str | Path,
    *,
    name: str = "sample",
    bg_size: tuple[int, int] = (320, 240),
    bg_fps: float = 25,
    seconds: float = 3.0,
    region: tuple[int, int, int, int] = (72, 40, 160, 120),
    fg_size: tuple[int, int] | None = None,
    fg_fps: float = 30,
    trim: tuple[float, float] = (0.4, 0.4),
    bg_crf: int = 16,
    fg_crf: int = 24,
    audio: bool = True,
    seed: int = 0,
    speed: float = 2.0,
    static: int = 0,
    grade: tuple[float, float] = (1.0, 0.0),
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0),
    bars: tuple[int, int] = (0, 0),
) -> SamplePair:
    """Write ``NAME.bg.mp4`` and ``NAME.fg.mp4`` into ``folder`` and return the truth.

    ``region`` is (x, y, w, h) in bg pixels; ``fg_size`` resizes that crop (a
    scaled fg); ``trim`` cuts seconds from fg's start and end; ``grade`` is fg's
    (gain, offset) against bg, as a colourist's change would be, and ``tint`` a
    further gain per R, G, B channel. ``bars`` frames fg's picture in black bars
    of (left/right, top/bottom) fg pixels each side (a pillarbox or letterbox):
    fg's file is that much larger, the truth stays that of its picture.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    bw, bh = bg_size
    rx, ry, rw, rh = region
    fw, fh = fg_size or (rw, rh)
    n_bg = int(round(seconds * bg_fps))
    bg_rate, fg_rate = as_fraction(bg_fps), as_fraction(fg_fps)
    t0, t1 = trim[0], seconds - trim[1]
    n_fg = int(math.floor((t1 - t0) * fg_fps + 1e-9))
    # the nearest source frame, ties rounded up consistently (round() alternates on exact halves)
    truth = np.array([min(n_bg - 1, math.floor((t0 + i / fg_fps) * bg_fps + 0.5 + 1e-6)) for i in range(n_fg)])

    bg_path, fg_path = folder / f"{name}.bg.mp4", folder / f"{name}.fg.mp4"
    bg_out, bg_vs = _open_encoder(bg_path, bw, bh, bg_rate, bg_crf)
    bx, by = bars
    fg_out, fg_vs = _open_encoder(fg_path, fw + 2 * bx, fh + 2 * by, fg_rate, fg_crf)
    tone = _add_tone_stream(fg_out) if audio else None
    i = 0
    for k, src in enumerate(source_frames(bw, bh, n_bg, seed=seed, speed=speed, static=static)):
        frame = av.VideoFrame.from_ndarray(src, format="rgb24")
        frame.pts = k
        for packet in bg_vs.encode(frame):
            bg_out.mux(packet)
        while i < n_fg and truth[i] == k:
            pixels = src[ry : ry + rh, rx : rx + rw]
            if grade != (1.0, 0.0):
                pixels = np.clip(grade[0] * pixels.astype(np.float32) + grade[1], 0, 255).astype(np.uint8)
            if tint != (1.0, 1.0, 1.0):
                pixels = np.clip(pixels * np.asarray(tint, np.float32), 0, 255).astype(np.uint8)
            crop = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), "rgb24")
            if (fw, fh) != (rw, rh):
                crop = crop.reformat(width=fw, height=fh, interpolation="BICUBIC")
            if bars != (0, 0):
                framed = np.zeros((fh + 2 * by, fw + 2 * bx, 3), np.uint8)
                framed[by : by + fh, bx : bx + fw] = crop.to_ndarray(format="rgb24")
                crop = av.VideoFrame.from_ndarray(framed, "rgb24")
            crop.pts = i
            for packet in fg_vs.encode(crop):
                fg_out.mux(packet)
            i += 1
    for packet in bg_vs.encode(None):
        bg_out.mux(packet)
    for packet in fg_vs.encode(None):
        fg_out.mux(packet)
    if tone is not None:
        _write_tone(fg_out, tone, n_fg / fg_fps)
    bg_out.close()
    fg_out.close()
    return SamplePair(bg_path, fg_path, float(rx), float(ry), fw / rw, truth, float(bg_fps), float(fg_fps))


def main() -> None:
    parser = argparse.ArgumentParser(description="Write a sample bg/fg pair with known alignment.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    # fg is graded (warmer, more contrast) and pillarboxed, as a restored transfer would be: in the
    # overlay it shows as a warm rectangle whose texture runs on into bg's, without its black bars.
    bars = (40, 0)
    pair = make_pair(args.folder, name="demo", bg_size=(640, 360), region=(200, 96, 320, 180),
                     seconds=args.seconds, grade=(1.4, -45.0), tint=(1.3, 1.0, 0.6), bars=bars)
    print(f"bg {pair.bg}\nfg {pair.fg} (a 320x180 crop of bg, graded warmer and with more contrast, between "
          f"{bars[0]} px black bars left and right)\ntruth x={pair.x:g} y={pair.y:g} scale={pair.scale:g}, "
          f"{len(pair.frames)} fg frames from bg frame {pair.frames[0]} to {pair.frames[-1]}")


if __name__ == "__main__":
    main()
