"""Location and sub-pixel registration on images with a known answer."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from vidkompy.alignment.fit import FitPair, fit_geometry, phase_correlate
from vidkompy.alignment.ncc import ncc_map
from vidkompy.alignment.resample import grid_map, warp
from vidkompy.models import Geometry
from vidkompy.samples import _texture


@pytest.fixture(scope="module")
def texture() -> np.ndarray:
    return _texture(200, 260, np.random.default_rng(3))[..., 1].astype(np.float32)


@pytest.mark.parametrize(("dy", "dx"), [(-2.4, 1.32), (0.0, 0.0), (3.7, -5.25), (0.5, 0.5)])
def test_phase_correlation_recovers_a_sub_pixel_shift(texture, dy, dx):
    moved = np.fft.ifft2(ndimage.fourier_shift(np.fft.fft2(texture), (dy, dx))).real
    fy, fx, ratio = phase_correlate(texture, moved)
    assert (fy, fx) == pytest.approx((dy, dx), abs=0.15)
    assert ratio > 2.0


def test_phase_correlation_of_unrelated_pictures_has_a_low_peak_ratio(texture):
    other = _texture(200, 260, np.random.default_rng(99))[..., 1].astype(np.float32)
    assert phase_correlate(texture, other)[2] < 1.6


def test_ncc_map_finds_a_template_where_it_was_cut():
    img = _texture(120, 160, np.random.default_rng(4))[..., 0].astype(np.float32)
    t = img[37:37 + 40, 61:61 + 50]
    ncc = ncc_map(img, t)
    assert np.unravel_index(np.argmax(ncc), ncc.shape) == (37, 61)
    assert ncc.max() == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize(
    "truth", [Geometry(40.3, 22.7, 1.0), Geometry(31.25, 40.6, 0.75), Geometry(50.0, 30.0, 1.6)])
def test_joint_fit_reaches_sub_pixel_geometry(texture, truth):
    fg_w, fg_h = 120, 90
    bg = texture
    fg = warp(bg, grid_map(truth.x, truth.y, truth.scale, (1.0, 1.0), (1.0, 1.0)), (fg_h, fg_w))
    fg = 0.8 * fg + 12.0  # another grade
    start = Geometry(round(truth.x) + 2, round(truth.y) - 1, truth.scale * 1.02)
    found = fit_geometry([FitPair(fg, (1.0, 1.0), bg, (1.0, 1.0))], start)
    assert found.x == pytest.approx(truth.x, abs=0.1)
    assert found.y == pytest.approx(truth.y, abs=0.1)
    assert found.scale == pytest.approx(truth.scale, rel=2e-3)
