"""warp against an independent resampler: the pixel-area grid worked out here, scipy's Gaussian and its bilinear
interpolation.

The grid, in FFmpeg's pixel-area convention (pixel k covers [k, k+1), its centre is k + 0.5): output pixel u
of an output grid of ``out_factor`` fg full pixels a pixel has its centre at fg point (u + 0.5) * out_factor,
which shows bg point x + (u + 0.5) * out_factor / scale; in a source picture of ``src_factor`` bg full pixels
a pixel that point lies at index (x + (u + 0.5) * out_factor / scale) / src_factor - 0.5 (SciPy's coordinates
are indices: index k is the centre of pixel k).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from vidkompy.alignment.resample import antialias as vidkompy_antialias
from vidkompy.alignment.resample import axis_samples, grid_map, rescale, sample_grid, valid_mask, warp


def shrink_of(scale: float, out_factor: tuple[float, float], src_factor: tuple[float, float]) -> float:
    """Source pixels per output pixel, on the axis that shrinks most."""
    return max(out_factor[0] / (scale * src_factor[0]), out_factor[1] / (scale * src_factor[1]))


def antialias(shrink: float, blur: float = 0.0) -> float:
    """The Gaussian before sampling (resample's docstring): sigma 0.5 x the shrink when shrinking, and any extra
    blur added in quadrature (two Gaussians in a row are one of the summed variances)."""
    return float(np.hypot(0.5 * shrink if shrink > 1.0 else 0.0, blur))


def sample_points(offset: float, scale: float, out_factor: float, src_factor: float, n: int) -> np.ndarray:
    """Source indices of ``n`` output pixels along one axis (module docstring)."""
    return (offset + (np.arange(n) + 0.5) * out_factor / scale) / src_factor - 0.5


def reference(image: np.ndarray, place: tuple[float, float, float], out_factor: tuple[float, float],
              src_factor: tuple[float, float], shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Blur the whole picture, then sample each output pixel's point bilinearly (edges repeated, as FFmpeg's
    scaler does)."""
    x, y, scale = place
    src = ndimage.gaussian_filter(image.astype(np.float64), sigma, mode="nearest") if sigma >= 0.3 else image
    ys = sample_points(y, scale, out_factor[1], src_factor[1], shape[0])
    xs = sample_points(x, scale, out_factor[0], src_factor[0], shape[1])
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
    """Catches: the grid half a pixel off (centres at k instead of k + 0.5 in `grid_map`, or 0.5 added to the
    sample positions in `axis_samples`), a wrong anti-alias sigma (`antialias_sigma`), and samples not clamped
    at the edges."""
    rng = np.random.default_rng(3)
    stack = rng.integers(0, 256, (3, 90, 160)).astype(np.uint8)
    shrink = shrink_of(place[2], out_factor, src_factor)
    sigma = antialias(shrink, blur * shrink)
    gmap = grid_map(*place, out_factor, src_factor)
    got = warp(stack, gmap, shape, blur=blur * shrink)
    assert got.shape == (3, *shape) and got.dtype == np.float32
    for k in range(len(stack)):
        np.testing.assert_allclose(got[k], reference(stack[k], place, out_factor, src_factor, shape, sigma), atol=2e-3)
    np.testing.assert_allclose(warp(stack[1], gmap, shape, blur=blur * shrink), got[1], atol=1e-4)


@pytest.mark.parametrize(("out_factor", "k", "blur"), [(20.0, 3, 0.0), (12.0, 2, 0.0), (20.0, 3, 2.0)])
def test_a_large_shrink_averages_blocks_first_then_blurs_and_samples_them(out_factor, k, blur):
    """From 3x shrinking on (3x included), k x k block means come first (k = shrink // 1.5), each block sampled at
    its centre, the Gaussian then in block units (the extra ``blur`` too).

    Block j covers source pixels [j k, (j + 1) k): the blocks are a picture of 4 k bg full pixels a pixel, and the
    module docstring's grid applies to it. Catches: blocks sampled at their first pixel instead of their centre
    (the (k - 1) / 2 shift in `axis_operator`), block means over the wrong pixels, blocks from more than 3x only,
    and the extra blur not divided by the block size.
    """
    rng = np.random.default_rng(4)
    stack = rng.integers(0, 256, (2, 90, 160)).astype(np.uint8)
    shape = (int(90 * 4 / out_factor), int(160 * 4 / out_factor))
    got = warp(stack, grid_map(0.0, 0.0, 1.0, (out_factor, out_factor), (4.0, 4.0)), shape, blur=blur)
    for n in range(len(stack)):
        hk, wk = 90 // k, 160 // k
        blocks = stack[n, : hk * k, : wk * k].astype(np.float64).reshape(hk, k, wk, k).mean(axis=(1, 3))
        sigma = antialias(out_factor / (4.0 * k), blur / k)  # the anti-alias of the blocks' own shrink
        want = reference(blocks, (0.0, 0.0, 1.0), (out_factor, out_factor), (4.0 * k, 4.0 * k), shape, sigma)
        np.testing.assert_allclose(got[n], want, atol=2e-3)


# -- the pieces, each against its formula -------------------------------------------------------------------


@pytest.mark.parametrize(("a", "c", "n", "size", "lo", "weight"), [
    (1.0, -1.5, 4, 5, [0, 0, 0, 1], [0.0, 0.0, 0.5, 0.5]),  # before the first pixel: clamped to it
    (1.0, 2.5, 4, 5, [2, 3, 3, 3], [0.5, 0.5, 1.0, 1.0]),  # at and past the last: its lower neighbour, weight 1
    (0.5, 0.25, 3, 5, [0, 0, 1], [0.25, 0.75, 0.25]),
    (1.0, 0.0, 2, 1, [0, 0], [0.0, 0.0]),  # a one-pixel axis
])
def test_axis_samples_are_the_lower_neighbour_and_the_weight_of_the_clamped_position(a, c, n, size, lo, weight):
    """Position a k + c clamped to [0, size - 1]; lower neighbour floor(position), at most size - 2; weight the
    rest. Catches: the clamp dropped or moved, and the last pixel taken as its own lower neighbour."""
    got_lo, got_w = axis_samples(a, c, n, size)
    assert list(got_lo) == lo and got_w.dtype == np.float32
    np.testing.assert_array_equal(got_w, np.array(weight, np.float32))


def test_sample_grid_is_scipys_bilinear_interpolation_on_a_separable_grid():
    """Catches: the upper neighbour clamped one short (the last row or column read from the one before)."""
    rng = np.random.default_rng(5)
    stack = rng.random((2, 12, 17)).astype(np.float32)
    ys, xs = np.array([0.0, 2.25, 7.5, 11.0]), np.array([0.0, 0.5, 9.75, 15.1, 16.0])  # the last row and column
    got = sample_grid(stack, _samples(ys, 12), _samples(xs, 17))
    yy, xx = np.meshgrid(ys, xs, indexing="ij")
    for k in range(2):
        np.testing.assert_allclose(got[k], ndimage.map_coordinates(stack[k].astype(np.float64), [yy, xx], order=1),
                                   atol=1e-5)


def _samples(points: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Lower neighbours and weights of points inside [0, size - 1] (the last one: size - 2 with weight 1)."""
    lo = np.minimum(np.floor(points).astype(np.intp), size - 2)
    return lo, (points - lo).astype(np.float32)


@pytest.mark.parametrize(("shrink", "extra", "sigma"), [
    (4.0, 0.0, 2.0), (4.0, 1.5, 2.5), (1.0, 0.3, 0.3), (3.0, 0.0, 1.5),  # 0.3: the smallest blur applied
    (1.0, 0.0, 0.0), (0.5, 0.29, 0.0),  # enlarging, or a blur under 0.3 px: none
])
def test_antialias_is_scipys_gaussian_of_half_the_shrink_on_each_picture(shrink, extra, sigma):
    """sigma = hypot(0.5 shrink when shrinking, extra), edges repeated, never across the pictures of a stack.
    Catches: the extra blur dropped, the stack's frames blurred into each other, other edge handling, and the
    smallest blur skipped."""
    rng = np.random.default_rng(6)
    stack = rng.integers(0, 256, (3, 30, 40)).astype(np.uint8)
    got = vidkompy_antialias(stack, shrink, extra) if extra else vidkompy_antialias(stack, shrink)
    assert got.dtype == np.float32
    for k in range(3):
        want = ndimage.gaussian_filter(stack[k].astype(np.float64), sigma, mode="nearest") if sigma else stack[k]
        np.testing.assert_allclose(got[k], want, atol=1e-3)
        np.testing.assert_allclose(vidkompy_antialias(stack[k], shrink, extra), got[k], atol=1e-4)


def test_a_long_stack_is_warped_in_pieces_to_the_same_pictures():
    """Stacks longer than 64 frames go through in pieces of 64 (memory). Catches: a piece lost, shifted or
    overwritten."""
    rng = np.random.default_rng(7)
    stack = rng.integers(0, 256, (70, 12, 20)).astype(np.uint8)
    gmap = grid_map(3.3, 2.1, 1.0, (2.0, 2.0), (1.0, 1.0))
    got = warp(stack, gmap, (4, 8))
    assert got.shape == (70, 4, 8)
    want = np.stack([reference(f, (3.3, 2.1, 1.0), (2.0, 2.0), (1.0, 1.0), (4, 8), 1.0) for f in stack])
    np.testing.assert_allclose(got, want, atol=2e-3)


def test_an_empty_stack_warps_to_an_empty_stack():
    got = warp(np.zeros((0, 12, 20), np.uint8), grid_map(0.0, 0.0, 1.0, (2.0, 2.0), (1.0, 1.0)), (4, 8))
    assert got.shape == (0, 4, 8) and got.dtype == np.float32


def test_a_stack_already_blurred_is_only_sampled():
    """``blurred=True``: the caller has blurred; warp samples bilinearly and adds no Gaussian."""
    rng = np.random.default_rng(8)
    image = rng.integers(0, 256, (40, 60)).astype(np.uint8)
    got = warp(image, grid_map(1.5, 2.5, 1.0, (2.0, 2.0), (1.0, 1.0)), (15, 25), blurred=True)
    np.testing.assert_allclose(got, reference(image, (1.5, 2.5, 1.0), (2.0, 2.0), (1.0, 1.0), (15, 25), 0.0),
                               atol=2e-3)


@pytest.mark.parametrize(("shape", "factor", "out"), [
    ((90, 160), 2.0, (45, 80)), ((91, 161), 2.0, (46, 80)), ((90, 160), 2.5, (36, 64)), ((90, 160), 0.5, (180, 320)),
    ((3, 5), 4.0, (1, 1))])
def test_rescale_is_a_warp_onto_the_rounded_grid_over_the_same_picture(shape, factor, out):
    """Output size round(size / factor) (at least 1); output pixel u covers input [u W / w, (u + 1) W / w), so the
    picture keeps its extent whatever the rounding. Catches: the size multiplied by the factor, the grid not
    stretched to the rounded size, and a stack's frames taken for rows."""
    rng = np.random.default_rng(9)
    stack = rng.integers(0, 256, (2, *shape)).astype(np.uint8)
    got = rescale(stack, factor)
    assert got.shape == (2, *out)
    of = (shape[1] / out[1], shape[0] / out[0])
    sigma = antialias(shrink_of(1.0, of, (1.0, 1.0)))
    for k in range(2):
        np.testing.assert_allclose(got[k], reference(stack[k], (0.0, 0.0, 1.0), of, (1.0, 1.0), out, sigma),
                                   atol=2e-3)
    np.testing.assert_allclose(rescale(stack[1], factor), got[1], atol=1e-4)


@pytest.mark.parametrize("margin", [0.5, 0.0])
def test_valid_mask_marks_the_output_pixels_whose_sample_lies_on_the_source(margin):
    place, out_factor, src_factor, out, src = (-7.0, 5.0, 1.25), (2.0, 2.0), (2.0, 2.0), (30, 40), (20, 25)
    ys = sample_points(place[1], place[2], out_factor[1], src_factor[1], out[0])
    xs = sample_points(place[0], place[2], out_factor[0], src_factor[0], out[1])
    want = ((ys >= -margin) & (ys <= src[0] - 1 + margin))[:, None] & ((xs >= -margin) & (xs <= src[1] - 1 + margin))
    got = valid_mask(grid_map(*place, out_factor, src_factor), out, src, margin)
    np.testing.assert_array_equal(got, want)
    assert 0 < got.sum() < got.size
