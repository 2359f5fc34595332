"""Sampling one picture's pixels on another's grid, in FFmpeg's pixel-area convention.

Pixel k covers [k, k+1) and its centre is k + 0.5, as in swscale; an off-by-half
convention shifts every match by half a pixel, which alone flipped a scaled case
in our measurements. Shrinking is preceded by a Gaussian anti-alias of
sigma = 0.5 x the shrink factor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


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


def antialias(images: np.ndarray, shrink: float) -> np.ndarray:
    """Blur before sampling at ``shrink`` source pixels per output pixel."""
    sigma = 0.5 * shrink if shrink > 1.0 else 0.0
    images = images.astype(np.float32, copy=False)
    if sigma < 0.3:
        return images
    axes = (0.0, sigma, sigma) if images.ndim == 3 else (sigma, sigma)
    return ndimage.gaussian_filter(images, axes, mode="nearest")


def warp(images: np.ndarray, gmap: GridMap, out_shape: tuple[int, int], *, blurred: bool = False) -> np.ndarray:
    """Sample ``images`` ((N,) H, W) on the output grid, bilinear, float32."""
    src = images if blurred else antialias(images, gmap.shrink)
    if src.ndim == 3:
        matrix = np.array([1.0, gmap.ay, gmap.ax])
        offset = (0.0, gmap.cy, gmap.cx)
        shape = (src.shape[0], *out_shape)
    else:
        matrix = np.array([gmap.ay, gmap.ax])
        offset = (gmap.cy, gmap.cx)
        shape = tuple(out_shape)
    return ndimage.affine_transform(src, matrix, offset=offset, output_shape=shape, order=1, mode="nearest")


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
