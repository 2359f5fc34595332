"""The independent truth of a composite: bg and fg decoded by PyAV, fg pasted with NumPy.

Nothing here comes from vidkompy. A scaled fg is resized by the separable
bicubic below, not by FFmpeg's scaler that vidkompy uses; measured against it,
the two agree to within one level in every plane (`tests/overlay/test_composite.py`
says why). A lossless (FFV1) output must then equal the paste, or come within
that level; a lossy one comes as close as its encoder allows.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import av
import numpy as np

from tests.overlay.test_output_formats import psnr


def decode_planes(path: str | Path, fmt: str = "yuv420p") -> list[list[np.ndarray]]:
    """Every frame's Y, U and V planes (copies, any size: a 161-sample chroma row of a 322-pixel one too)."""
    out = []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            if frame.format.name != fmt:
                frame = frame.reformat(format=fmt)
            dtype = np.uint8 if frame.format.components[0].bits <= 8 else np.dtype("<u2")
            out.append([np.frombuffer(p, dtype).reshape(p.height, p.line_size // np.dtype(dtype).itemsize)
                        [:, : p.width].copy() for p in frame.planes])
    return out


def cubic(t: np.ndarray, a: float = -0.6) -> np.ndarray:
    """Keys' cubic convolution kernel; a = -0.6 is FFmpeg's default bicubic (B = 0, C = 0.6)."""
    t = np.abs(t)
    near = (a + 2) * t**3 - (a + 3) * t**2 + 1
    far = a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a
    return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


@lru_cache(maxsize=64)
def resampling(n_in: int, n_out: int, shift: float = 0.0) -> np.ndarray:
    """(n_out, n_in) weights: output sample j sits at input position (j + 0.5) * n_in / n_out - 0.5 + shift; the
    kernel is stretched by the shrink factor (no aliasing), the edge samples repeat."""
    s = n_in / n_out
    at = (np.arange(n_out) + 0.5) * s - 0.5 + shift
    reach = 2 * int(np.ceil(max(s, 1.0))) + 1
    taps = np.arange(-reach, n_in + reach)
    w = cubic((taps[None, :] - at[:, None]) / max(s, 1.0))
    m = np.zeros((n_out, n_in))
    np.add.at(m, (slice(None), np.clip(taps, 0, n_in - 1)), w)
    return m / m.sum(axis=1, keepdims=True)


def resized(plane: np.ndarray, height: int, width: int, *, chroma: bool) -> np.ndarray:
    """``plane`` at (height, width), rounded to whole levels.

    4:2:0 chroma sits as H.264 and MPEG-2 site it by default: on the even luma
    columns, midway between the rows. Mapped through the luma grid, a chroma
    sample's source position then moves by (1 - s) / 4 chroma pixels for a
    shrink by s: an eighth of a pixel left at 1.5.
    """
    n_h, n_w = plane.shape
    rows = resampling(n_h, height)
    cols = resampling(n_w, width, 0.25 * (1 - n_w / width) if chroma else 0.0)
    top = np.iinfo(plane.dtype).max if plane.dtype.kind == "u" else 255
    return np.clip(np.round(rows @ plane.astype(np.float64) @ cols.T), 0, top).astype(plane.dtype)


def pasted(bg: Path, fg: Path, frames: np.ndarray, x: int, y: int, size: tuple[int, int] | None = None,
           fmt: str = "yuv420p") -> list[list[np.ndarray]]:
    """fg's planes, resized to ``size`` (w, h) when that is not fg's, at (x, y) over bg frames ``frames``.

    What falls outside bg's canvas is cut off. The chroma of an odd offset lands
    at the chroma sample that holds its luma pixel (x // 2): half a chroma pixel
    early, vidkompy's stated convention.
    """
    return pasted_at(bg, fg, frames, [(x, y, *size) if size else (x, y, None, None)] * len(frames), fmt)


def moved(plane: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """``plane`` moved by (dy, dx) of its own pixels: each output pixel is the linear interpolation of the two
    (per axis) it falls between, read at (i - dy, j - dx), a pixel beyond the edge read as the edge's; rounded
    half up."""
    v = plane.astype(np.float64)
    for axis, d in ((0, dy), (1, dx)):
        n = v.shape[axis]
        at = np.clip(np.arange(n) - d, 0, n - 1)
        lo = np.floor(at).astype(int)
        hi = np.minimum(lo + 1, n - 1)
        t = (at - lo).reshape([-1, 1] if axis == 0 else [1, -1])
        v = np.take(v, lo, axis) * (1 - t) + np.take(v, hi, axis) * t
    top = np.iinfo(plane.dtype).max
    return np.clip(np.floor(v + 0.5), 0, top).astype(plane.dtype)


def pasted_at(bg: Path, fg: Path, frames: np.ndarray, places: list[tuple],
              fmt: str = "yuv420p") -> list[list[np.ndarray]]:
    """`pasted` with a place of its own for each fg frame: (x, y, w, h), w and h None for fg's own size, or
    (x, y, w, h, dx, dy): fg's picture moved by (dx, dy) luma pixels (`moved`; chroma by half) before the
    paste at the whole pixel (x, y)."""
    bgs, fgs = decode_planes(bg, fmt), decode_planes(fg, fmt)
    out = []
    for i, planes in enumerate(fgs[: len(frames)]):
        x, y, w, h, *shift = places[i]
        dx, dy = shift or (0.0, 0.0)
        w, h = w or planes[0].shape[1], h or planes[0].shape[0]
        frame = [p.copy() for p in bgs[frames[i]]]
        ch, cw = frame[0].shape
        top, left = max(0, y), max(0, x)  # the visible part, in canvas pixels
        rows, cols = min(ch, y + h) - top, min(cw, x + w) - left
        for k, (dst, src) in enumerate(zip(frame, planes, strict=True)):
            s = 1 if k == 0 else 2
            if src.shape != (h // s, w // s):
                src = resized(src, h // s, w // s, chroma=k > 0)
            if dx or dy:
                src = moved(src, dy / s, dx / s)
            sy, sx = (top - y) // s, (left - x) // s
            dst[top // s : top // s + rows // s, left // s : left // s + cols // s] = \
                src[sy : sy + rows // s, sx : sx + cols // s]
        out.append(frame)
    return out


def assert_planes_within(got: list[list[np.ndarray]], want: list[list[np.ndarray]], levels: int) -> None:
    """Every plane of every frame within ``levels`` of the truth (0: equal); as many frames as the truth."""
    assert len(got) == len(want), (len(got), len(want))
    for i, (a, b) in enumerate(zip(got, want, strict=True)):
        for k, (pa, pb) in enumerate(zip(a, b, strict=True)):
            worst = int(np.abs(pa.astype(np.int32) - pb.astype(np.int32)).max())
            assert worst <= levels, f"frame {i} plane {k}: {worst} levels off"


def worst_luma_psnr(got: list[list[np.ndarray]], want: list[list[np.ndarray]],
                    box: tuple[int, int, int, int] | None = None) -> float:
    """The lowest luma PSNR over the frames, after checking that there are as many as the truth has.

    With ``box`` (x, y, w, h: where fg lands) the inside and the outside of it are
    scored apart, and the lower counts: over the whole frame, fg pasted a pixel off
    costs 4 dB of a lossy encode's 43, inside its box 9.
    """
    assert len(got) == len(want), (len(got), len(want))
    if box is None:
        return min(psnr(a[0], b[0]) for a, b in zip(got, want, strict=True))
    x, y, w, h = box
    inside = np.zeros(want[0][0].shape, bool)
    inside[y : y + h, x : x + w] = True
    return min(min(psnr(a[0][inside], b[0][inside]), psnr(a[0][~inside], b[0][~inside]))
               for a, b in zip(got, want, strict=True))
