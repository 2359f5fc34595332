"""Sampling one picture's pixels on another's grid, in FFmpeg's pixel-area convention.

Pixel k covers [k, k+1) and its centre is k + 0.5, as in swscale; an off-by-half
convention shifts every match by half a pixel, which alone flipped a scaled case
in our measurements. Shrinking is preceded by a Gaussian anti-alias of
sigma = 0.5 x the shrink factor.

A stack is warped as two sparse matrix products, one per axis: each output
row or column is a fixed blend of a few source ones (the Gaussian's taps
composed with the two bilinear ones), the way Pillow's resampling precomputes
its coefficients. Blurring every source pixel first and sampling after did
2.4x the work: 0.47 against 0.19 ms a frame for the final match's fg grid
(320x180 -> 213x120), the same numbers to 1e-4 of a grey level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage, sparse


@dataclass(frozen=True)
class GridMap:
    """Index coordinates in a source image as an affine function of output pixel indices.

    ``src = a * out + c`` per axis (y, x).
    """

    ay: float
    cy: float
    ax: float
    cx: float

    @property
    def shrink(self) -> float:
        return max(abs(self.ax), abs(self.ay))


def grid_map(
    x: float, y: float, scale: float, out_factor: tuple[float, float], src_factor: tuple[float, float]
) -> GridMap:
    """Map an output grid over fg onto a source image of bg.

    ``x, y, scale`` place fg in bg full-size pixels; ``out_factor`` is fg full
    pixels per output pixel (x, y), ``src_factor`` bg full pixels per source pixel.
    Output pixel centre (u + 0.5) * out_factor is fg point p, bg point x + p / scale,
    source index (x + p / scale) / src_factor - 0.5.
    """
    ofx, ofy = out_factor
    sfx, sfy = src_factor
    ax = ofx / (scale * sfx)
    ay = ofy / (scale * sfy)
    cx = (x + 0.5 * ofx / scale) / sfx - 0.5
    cy = (y + 0.5 * ofy / scale) / sfy - 0.5
    return GridMap(ay, cy, ax, cx)


MIN_SIGMA = 0.3  # a blur narrower than this changes a picture by less than its rounding: skipped


def antialias_sigma(shrink: float, extra: float = 0.0) -> float:
    """The Gaussian before sampling at ``shrink`` source pixels per output pixel (and ``extra`` more)."""
    return math.hypot(0.5 * shrink if shrink > 1.0 else 0.0, extra)


def antialias(images: np.ndarray, shrink: float, extra: float = 0.0) -> np.ndarray:
    """Blur before sampling at ``shrink`` source pixels per output pixel (and by ``extra`` more, in source pixels)."""
    sigma = antialias_sigma(shrink, extra)
    images = images.astype(np.float32, copy=False)
    if sigma < MIN_SIGMA:
        return images
    axes = (0.0, sigma, sigma) if images.ndim == 3 else (sigma, sigma)
    return ndimage.gaussian_filter(images, axes, mode="nearest")


def axis_samples(a: float, c: float, n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower neighbour and weight of ``n`` bilinear samples at ``a * k + c`` along an axis of ``size``.

    Positions are clamped to the picture, as FFmpeg's edge handling does.
    """
    pos = np.clip(a * np.arange(n) + c, 0.0, size - 1.0)
    lo = np.minimum(np.floor(pos).astype(np.intp), max(size - 2, 0))
    return lo, (pos - lo).astype(np.float32)


def sample_grid(images: np.ndarray, ys: tuple[np.ndarray, np.ndarray], xs: tuple[np.ndarray, np.ndarray]
                ) -> np.ndarray:
    """Bilinear samples on a separable grid: rows first, then columns, over the last two axes.

    Our maps are scale + translation without rotation, so sampling separates per
    axis; this is several times faster than a general ``map_coordinates``.
    """
    (y0, wy), (x0, wx) = ys, xs
    y1 = np.minimum(y0 + 1, images.shape[-2] - 1)
    x1 = np.minimum(x0 + 1, images.shape[-1] - 1)
    wy = wy[:, None]
    rows = images[..., y0, :] * (1 - wy) + images[..., y1, :] * wy
    return rows[..., x0] * (1 - wx) + rows[..., x1] * wx


@lru_cache(maxsize=64)
def axis_operator(a: float, c: float, n: int, size: int, sigma: float, box: int = 1) -> sparse.csr_matrix:
    """(n, size) float32: a Gaussian of ``sigma`` along an axis of ``size``, then `axis_samples`' bilinear samples.

    The Gaussian is scipy's (``gaussian_filter1d``: radius ``int(4 sigma + 0.5)``,
    edges repeated as ``mode="nearest"``), skipped below `MIN_SIGMA` as `antialias` does.

    ``box``: means of ``box`` source pixels first, the Gaussian (``sigma`` in
    block units) and the samples then on the blocks. Block j covers source
    pixels [j box, (j + 1) box), whose centre is index j box + (box - 1) / 2: the
    map is moved by that, so nothing shifts by half a pixel. Box then Gaussian
    blurs about 7% more than the Gaussian alone; it kept the Gaussian's taps few
    before the two were one operator, and embeddings stored since depend on it.
    """
    if box > 1:
        blocks = size // box
        mean = sparse.csr_matrix((np.full(blocks * box, 1.0 / box), (np.repeat(np.arange(blocks), box),
                                                                     np.arange(blocks * box))), shape=(blocks, size))
        inner = axis_operator(a / box, (c + 0.5) / box - 0.5, n, blocks, sigma)
        return (inner.astype(np.float64) @ mean).astype(np.float32).tocsr()
    lo, w = axis_samples(a, c, n, size)
    hi = np.minimum(lo + 1, size - 1)
    rows = np.r_[np.arange(n), np.arange(n)]
    op = sparse.csr_matrix((np.r_[1.0 - w, w].astype(np.float64), (rows, np.r_[lo, hi])), shape=(n, size))
    if sigma >= MIN_SIGMA:
        radius = int(4.0 * sigma + 0.5)
        taps = np.arange(-radius, radius + 1)
        kernel = np.exp(-0.5 / (sigma * sigma) * taps.astype(np.float64) ** 2)
        kernel /= kernel.sum()
        src = np.repeat(np.arange(size), len(taps))
        gauss = sparse.csr_matrix((np.tile(kernel, size), (src, np.clip(src + np.tile(taps, size), 0, size - 1))),
                                  shape=(size, size))
        op = op @ gauss
    return op.astype(np.float32).tocsr()


def separable(images: np.ndarray, rows: sparse.csr_matrix, cols: sparse.csr_matrix) -> np.ndarray:
    """``rows @ picture @ cols.T`` for each picture of ``images`` ((N,) H, W), float32.

    Arranged so that both products are sparse x dense with the summed axis first
    (C-contiguous), which scipy runs as one loop over the whole stack.
    """
    if images.ndim == 2:
        return separable(images[None], rows, cols)[0]
    n, h_src, w_src = images.shape
    h, w = rows.shape[0], cols.shape[0]
    if n == 0:
        return np.zeros((0, h, w), np.float32)
    a = np.ascontiguousarray(images.transpose(1, 0, 2), dtype=np.float32).reshape(h_src, n * w_src)
    b = (rows @ a).reshape(h * n, w_src)  # (h, n, w_src)
    c = cols @ np.ascontiguousarray(b.T)  # (w, h * n)
    return np.ascontiguousarray(np.asarray(c).reshape(w, h, n).transpose(2, 1, 0))


WARP_CHUNK = 64  # frames per step: a whole stack blurred at float32 grew peak memory with the video's length
BOX_FROM = 3.0  # shrinking by this or more, average k x k blocks first (k = shrink // BOX_STEP)
BOX_STEP = 1.5


def crop_to(images: np.ndarray, gmap: GridMap, out_shape: tuple[int, int], margin: int
            ) -> tuple[np.ndarray, GridMap]:
    """Only the source rows and columns the samples reach (and ``margin`` more for the blur before them).

    A bg region is often a fraction of bg: blurring the whole picture to sample
    a part of it cost the embedding stage two thirds of its time.
    """
    h, w = out_shape
    src_h, src_w = images.shape[-2:]
    y0 = max(0, int(math.floor(min(gmap.cy, gmap.cy + gmap.ay * (h - 1)))) - margin)
    y1 = min(src_h, int(math.ceil(max(gmap.cy, gmap.cy + gmap.ay * (h - 1)))) + margin + 2)
    x0 = max(0, int(math.floor(min(gmap.cx, gmap.cx + gmap.ax * (w - 1)))) - margin)
    x1 = min(src_w, int(math.ceil(max(gmap.cx, gmap.cx + gmap.ax * (w - 1)))) + margin + 2)
    if y1 - y0 < 2 or x1 - x0 < 2 or (y1 - y0) * (x1 - x0) > 0.8 * src_h * src_w:
        return images, gmap
    return images[..., y0:y1, x0:x1], GridMap(gmap.ay, gmap.cy - y0, gmap.ax, gmap.cx - x0)


def warp(images: np.ndarray, gmap: GridMap, out_shape: tuple[int, int], *, blurred: bool = False,
         blur: float = 0.0) -> np.ndarray:
    """Sample ``images`` ((N,) H, W) on the output grid, bilinear, float32.

    ``blur``: a Gaussian of this sigma (source pixels) on top of the anti-alias.
    """
    if images.ndim == 3 and len(images) > WARP_CHUNK:
        out = np.empty((len(images), *out_shape), np.float32)
        for a in range(0, len(images), WARP_CHUNK):
            out[a : a + WARP_CHUNK] = warp(images[a : a + WARP_CHUNK], gmap, out_shape, blurred=blurred, blur=blur)
        return out
    box = 1
    if not blurred:
        images, gmap = crop_to(images, gmap, out_shape, margin=int(math.ceil(2 * math.hypot(gmap.shrink, blur))) + 2)
        k = int(gmap.shrink // BOX_STEP) if gmap.shrink >= BOX_FROM else 1
        if k > 1 and min(images.shape[-2:]) // k >= 2:
            box = k  # means of k x k blocks, then the Gaussian on them (axis_operator)
    sigma = 0.0 if blurred else antialias_sigma(gmap.shrink / box, blur / box)
    h, w = out_shape
    return separable(images, axis_operator(gmap.ay, gmap.cy, h, images.shape[-2], sigma, box),
                     axis_operator(gmap.ax, gmap.cx, w, images.shape[-1], sigma, box))


def rescale(images: np.ndarray, factor: float) -> np.ndarray:
    """Shrink (factor > 1) or enlarge an image stack about pixel areas, keeping the convention."""
    h, w = images.shape[-2:]
    out = (max(1, int(round(h / factor))), max(1, int(round(w / factor))))
    gmap = grid_map(0.0, 0.0, 1.0, (w / out[1], h / out[0]), (1.0, 1.0))
    return warp(images, gmap, out)


def valid_mask(gmap: GridMap, out_shape: tuple[int, int], src_shape: tuple[int, int],
               margin: float = 0.5) -> np.ndarray:
    """Output pixels whose sample point lies inside the source picture."""
    h, w = out_shape
    ys = gmap.ay * np.arange(h) + gmap.cy
    xs = gmap.ax * np.arange(w) + gmap.cx
    oky = (ys >= -margin) & (ys <= src_shape[0] - 1 + margin)
    okx = (xs >= -margin) & (xs <= src_shape[1] - 1 + margin)
    return oky[:, None] & okx[None, :]
