"""The blend mask ramps only on edges where bg is visible, in every plane of every pixel format."""

from __future__ import annotations

import numpy as np
import pytest

from vidkompy.overlay.masks import Blender, Placement, edge_alpha


def test_inner_crop_ramps_on_all_four_edges():
    a = edge_alpha(Placement(40, 30, 10, 10, (100, 80)), border=4)
    assert a[0].max() < 1 and a[-1].max() < 1 and a[:, 0].max() < 1 and a[:, -1].max() < 1
    assert a[4:-4, 4:-4].min() == 1.0


def test_three_touching_edges_leave_one_ramp():
    a = edge_alpha(Placement(60, 80, 0, 0, (100, 80)), border=4)
    assert a[:, :-4].min() == 1.0  # left, top, bottom touch the canvas: hard
    assert np.all(np.diff(a[10, -4:]) < 0)  # fading out towards the visible right edge


def test_full_width_band_ramps_top_and_bottom_only():
    a = edge_alpha(Placement(100, 30, 0, 25, (100, 80)), border=5)
    assert a[5:-5].min() == 1.0
    assert a[0].max() < 1 and a[-1].max() < 1
    assert np.array_equal(a[:, 0], a[:, 50])


@pytest.mark.parametrize(("pix_fmt", "dtype", "sub"), [
    ("yuv420p", np.uint8, (2, 2)), ("yuv420p10le", np.uint16, (2, 2)),
    ("yuv422p10le", np.uint16, (1, 2)), ("yuv444p", np.uint8, (1, 1)),
])
def test_blend_feathers_every_plane_of_every_format_on_its_own_grid(pix_fmt, dtype, sub):
    """A flat fg over a flat bg: inside fg's value, outside bg's, the ramp strictly between, in every plane."""
    p = Placement(40, 20, 20, 10, (80, 40))
    under, over = (100, 200) if dtype == np.uint8 else (400, 800)
    fy, fx = sub
    shapes = [(40, 80), (40 // fy, 80 // fx), (40 // fy, 80 // fx)]
    bg = [np.full(s, under, dtype) for s in shapes]
    fg = [np.full((20 // (1 if k == 0 else fy), 40 // (1 if k == 0 else fx)), over, dtype) for k in range(3)]
    blender = Blender(p, 4, True, pix_fmt)
    blender.paste(bg, blender.save(bg), fg)
    for k, plane in enumerate(bg):
        gy, gx = (1, 1) if k == 0 else sub
        y0, y1, x0, x1 = 10 // gy, 30 // gy, 20 // gx, 60 // gx
        assert plane.dtype == dtype
        assert (plane[:y0] == under).all() and (plane[y1:] == under).all()
        assert (plane[:, :x0] == under).all() and (plane[:, x1:] == under).all()
        inner = plane[y0 + 4 // gy : y1 - 4 // gy, x0 + 4 // gx : x1 - 4 // gx]
        assert (inner == over).all()
        edge = plane[y0, x0 + 4 // gx : x1 - 4 // gx]
        assert ((edge > under) & (edge < over)).all()


@pytest.mark.parametrize("pos", [(320, 180), (0, 180), (320, 0)])
def test_blend_strips_cover_exactly_the_soft_edge_pixels(pos):
    """Regression: a soft left or right edge made the top strip the whole picture (blended in full, 11 ms a frame)."""
    from vidkompy.overlay.masks import _strips

    p = Placement(1280, 720, pos[0], pos[1], (1920, 1080))
    alpha = edge_alpha(p, 3)
    covered = np.zeros(alpha.shape, int)
    for (ry, rx), a in _strips(alpha):
        covered[ry, rx] += 1
        assert np.array_equal(a, alpha[ry, rx])
    assert np.array_equal(covered > 0, alpha < 1) and covered.max() == 1
