"""warp against an independent resampler: scipy's Gaussian, then scipy's bilinear interpolation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from vidkompy.alignment.resample import antialias_sigma, grid_map, warp


def reference(image: np.ndarray, gmap, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Blur the whole picture, then sample each output pixel's point (edges repeated, as FFmpeg does)."""
    src = ndimage.gaussian_filter(image.astype(np.float64), sigma, mode="nearest") if sigma >= 0.3 else image
    ys = gmap.ay * np.arange(shape[0]) + gmap.cy
    xs = gmap.ax * np.arange(shape[1]) + gmap.cx
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    return ndimage.map_coordinates(src.astype(np.float64), [yy, xx], order=1, mode="nearest")


@pytest.mark.parametrize(
    ("place", "out_factor", "src_factor", "shape", "blur"),
    [
        ((0.0, 0.0, 1.0), (6.0, 6.0), (4.0, 4.0), (60, 100), 0.0),  # fg onto a coarser grid: shrink 1.5
        ((50.0, 30.0, 1.0), (6.0, 6.0), (6.0, 6.0), (40, 70), 0.0),  # a bg region at its own pixel size
        ((50.3, 30.7, 1.0), (6.0, 6.0), (6.0, 6.0), (40, 70), 1.5),  # ... made softer, sub-pixel placed
        ((-20.0, -10.0, 1.3), (3.0, 3.0), (6.0, 6.0), (50, 90), 0.0),  # enlarged, partly off the picture
        ((10.0, 5.0, 0.8), (5.0, 4.0), (4.0, 4.0), (45, 60), 0.0),  # unequal factors per axis
    ],
)
def test_warp_matches_blur_then_bilinear_sampling(place, out_factor, src_factor, shape, blur):
    rng = np.random.default_rng(3)
    stack = rng.integers(0, 256, (3, 90, 160)).astype(np.uint8)
    gmap = grid_map(*place, out_factor, src_factor)
    sigma = antialias_sigma(gmap.shrink, blur * gmap.shrink)
    got = warp(stack, gmap, shape, blur=blur * gmap.shrink)
    assert got.shape == (3, *shape) and got.dtype == np.float32
    for k in range(len(stack)):
        np.testing.assert_allclose(got[k], reference(stack[k], gmap, shape, sigma), atol=2e-3)
    np.testing.assert_allclose(warp(stack[1], gmap, shape, blur=blur * gmap.shrink), got[1], atol=1e-4)


def test_a_large_shrink_averages_blocks_first_then_blurs_and_samples_them():
    """From 3x shrinking on, k x k block means come first (k = shrink // 1.5), each block sampled at its centre."""
    rng = np.random.default_rng(4)
    stack = rng.integers(0, 256, (2, 90, 160)).astype(np.uint8)
    gmap = grid_map(0.0, 0.0, 1.0, (20.0, 20.0), (4.0, 4.0))  # shrink 5: blocks of 3
    k = int(gmap.shrink // 1.5)
    got = warp(stack, gmap, (18, 32))
    for n in range(len(stack)):
        hk, wk = 90 // k, 160 // k
        blocks = stack[n, : hk * k, : wk * k].astype(np.float64).reshape(hk, k, wk, k).mean(axis=(1, 3))
        moved = grid_map(0.0, 0.0, 1.0, (20.0, 20.0), (4.0 * k, 4.0 * k))
        # grid_map puts block j's centre at source index j: the same point as j k + (k - 1) / 2 in pixels
        want = reference(blocks, moved, (18, 32), antialias_sigma(moved.shrink))
        np.testing.assert_allclose(got[n], want, atol=2e-3)
