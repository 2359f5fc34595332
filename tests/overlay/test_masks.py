"""The placement, the blend ramp and the paste, each against its own formula computed here with NumPy.

The ramp, as the README's ``--border`` describes it: fg's opacity rises linearly over ``border`` px on each edge
of its visible rectangle where bg shows beside it. Pixel k from such an edge (k = 0 on the edge) has alpha
(k + 0.5) / border, capped at 1: the ramp's samples sit at pixel centres, so no pixel is fully transparent and
the ramp is symmetric about its middle. An edge that touches the canvas has no bg beside it and stays at 1. A
pixel near two edges takes the smaller alpha (the minimum over both axes).

The paste: inside fg's visible rectangle a plane takes fg's samples; where alpha < 1 the sample is
bg + alpha (fg - bg), rounded half up (the float32 arithmetic written out in `blended`). Chroma planes work on
their own grid: a luma offset or size of n is n // f chroma pixels (f the subsampling), and a chroma pixel takes
the alpha of the first luma pixel it covers.
"""

from __future__ import annotations

import av
import numpy as np
import pytest

from vidkompy.models import Alignment, Geometry
from vidkompy.overlay.masks import Blender, Placement, _strips, chroma_factors, edge_alpha, placement, yuv_planes


def visible(p: Placement) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): fg's rectangle on the canvas, clipped to it."""
    cw, ch = p.canvas
    return max(0, p.y), min(ch, p.y + p.height), max(0, p.x), min(cw, p.x + p.width)


def ramp(p: Placement, border: int) -> np.ndarray:
    """The module docstring's alpha over the visible rectangle, pixel by pixel (float32, as the paste uses it)."""
    cw, ch = p.canvas
    y0, y1, x0, x1 = visible(p)
    alpha = np.ones((y1 - y0, x1 - x0))
    if border == 0:
        return alpha.astype(np.float32)
    for i in range(y1 - y0):
        for j in range(x1 - x0):
            edges = [(y0 > 0, i), (y1 < ch, y1 - y0 - 1 - i), (x0 > 0, j), (x1 < cw, x1 - x0 - 1 - j)]
            for shows_bg, k in edges:
                if shows_bg:
                    alpha[i, j] = min(alpha[i, j], (k + 0.5) / border)
    return alpha.astype(np.float32)


CANVAS = (100, 80)
PLACEMENTS = {
    "inner crop": Placement(40, 30, 10, 10, CANVAS),
    "three edges touch": Placement(60, 80, 0, 0, CANVAS),
    "full-width band": Placement(100, 30, 0, 25, CANVAS),
    "off the canvas left and top": Placement(50, 40, -7, -3, CANVAS),
    "off the canvas right and bottom": Placement(50, 40, 61, 53, CANVAS),
    "narrower than two borders": Placement(6, 5, 30, 30, CANVAS),
    "the whole canvas": Placement(100, 80, 0, 0, CANVAS),
    "a pixel from the top-left corner": Placement(30, 20, 1, 1, CANVAS),  # bg shows in that one pixel: ramps
}


@pytest.mark.parametrize("border", [0, 1, 3, 4])
@pytest.mark.parametrize("case", PLACEMENTS)
def test_edge_alpha_is_the_ramp_formula_pixel_for_pixel(case, border):
    """Catches: the ramp's samples off by half a pixel ((k + 1) / border or k / border instead of
    (k + 0.5) / border), a ramp on an edge that touches the canvas, a ramp one pixel too long or short, and
    the two axes combined by product instead of minimum."""
    p = PLACEMENTS[case]
    got = edge_alpha(p, border)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, ramp(p, border))


def test_the_ramp_of_four_px_on_a_visible_edge_is_an_eighth_three_eighths_five_eighths_seven_eighths():
    """The formula's numbers written out, in case `ramp` and `edge_alpha` were wrong alike."""
    a = edge_alpha(PLACEMENTS["three edges touch"], border=4)  # only the right edge shows bg
    np.testing.assert_array_equal(a[17, -5:], [1.0, 0.875, 0.625, 0.375, 0.125])
    np.testing.assert_array_equal(a[:, :-4], np.ones((80, 56)))
    inner = edge_alpha(PLACEMENTS["inner crop"], border=4)
    np.testing.assert_array_equal(inner[0, :5], [0.125, 0.125, 0.125, 0.125, 0.125])
    np.testing.assert_array_equal(inner[:5, 2], [0.125, 0.375, 0.625, 0.625, 0.625])


def blended(under: np.ndarray, over: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """bg + alpha (fg - bg), rounded half up, in float32 as the paste computes it, in the planes' own type."""
    u, o = under.astype(np.float32), over.astype(np.float32)
    return (u + alpha * (o - u) + np.float32(0.5)).astype(under.dtype)


def expected_planes(p: Placement, border: int, blend: bool, sub: tuple[int, int], bg: list[np.ndarray],
                    fg: list[np.ndarray]) -> list[np.ndarray]:
    """The module docstring's paste, plane by plane, from the placement's numbers alone."""
    y0, y1, x0, x1 = visible(p)
    sy, sx = y0 - p.y, x0 - p.x  # the first fg pixel that shows
    alpha = ramp(p, border) if blend else np.ones((y1 - y0, x1 - x0), np.float32)
    out = []
    for k, (under, over) in enumerate(zip(bg, fg, strict=True)):
        fy, fx = (1, 1) if k == 0 else sub
        h, w = (y1 - y0) // fy, (x1 - x0) // fx
        a = alpha[::fy, ::fx][:h, :w]
        plane = under.copy()
        region = (slice(y0 // fy, y0 // fy + h), slice(x0 // fx, x0 // fx + w))
        plane[region] = blended(under[region], over[sy // fy : sy // fy + h, sx // fx : sx // fx + w], a)
        out.append(plane)
    return out


FORMATS = [("yuv420p", np.uint8, (2, 2)), ("yuv420p10le", np.uint16, (2, 2)), ("yuv422p10le", np.uint16, (1, 2)),
           ("yuv444p", np.uint8, (1, 1))]


@pytest.mark.parametrize(("blend", "border"), [(True, 3), (True, 1), (False, 3)])
@pytest.mark.parametrize("case", ["inner crop", "off the canvas left and top", "off the canvas right and bottom",
                                  "full-width band", "odd offset"])
@pytest.mark.parametrize(("pix_fmt", "dtype", "sub"), FORMATS)
def test_paste_gives_every_plane_its_formula_value(pix_fmt, dtype, sub, case, blend, border):
    """Random fg over random bg in every plane of every format, compared sample for sample with `expected_planes`.

    Catches: the blend rounded down instead of half up, under and over swapped, a strip left unblended or
    blended twice, chroma placed on the luma grid (or at the rounded-up half of an odd offset), chroma taking the
    alpha of the wrong luma pixel, fg's clipped part taken from the wrong side, and bg outside fg touched.
    """
    p = Placement(40, 20, 21, 11, CANVAS) if case == "odd offset" else PLACEMENTS[case]
    top = 255 if dtype == np.uint8 else 1023
    fy, fx = sub
    rng = np.random.default_rng(7)
    cw, ch = p.canvas
    bg = [rng.integers(0, top + 1, (ch, cw) if k == 0 else (ch // fy, cw // fx)).astype(dtype) for k in range(3)]
    fg = [rng.integers(0, top + 1, (p.height, p.width) if k == 0 else (p.height // fy, p.width // fx)).astype(dtype)
          for k in range(3)]
    want = expected_planes(p, border, blend, sub, bg, fg)
    blender = Blender(p, border, blend, pix_fmt)
    planes = [b.copy() for b in bg]
    blender.paste(planes, blender.save(planes), fg)
    for got, expected in zip(planes, want, strict=True):
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, expected)


def test_a_reused_bg_frame_blends_with_the_saved_bg_not_with_the_last_paste():
    """One bg frame under two fg frames in a row (a still bg): the second blend reads the bg saved before the
    first paste. Catches: the blend reading the plane it has just written."""
    p = PLACEMENTS["inner crop"]
    rng = np.random.default_rng(8)
    bg = [rng.integers(0, 256, (80, 100) if k == 0 else (40, 50)).astype(np.uint8) for k in range(3)]
    first, second = ([rng.integers(0, 256, (30, 40) if k == 0 else (15, 20)).astype(np.uint8) for k in range(3)]
                     for _ in range(2))
    blender = Blender(p, 4, True, "yuv420p")
    planes = [b.copy() for b in bg]
    saved = blender.save(planes)
    blender.paste(planes, saved, first)
    blender.paste(planes, saved, second)
    for got, expected in zip(planes, expected_planes(p, 4, True, (2, 2), bg, second), strict=True):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("pos", [(320, 180), (0, 180), (320, 0)])
def test_blend_strips_cover_exactly_the_soft_edge_pixels(pos):
    """Regression: a soft left or right edge made the top strip the whole picture (blended in full, 11 ms a frame)."""
    p = Placement(1280, 720, pos[0], pos[1], (1920, 1080))
    alpha = edge_alpha(p, 3)
    covered = np.zeros(alpha.shape, int)
    for (ry, rx), a in _strips(alpha):
        covered[ry, rx] += 1
        assert np.array_equal(a, alpha[ry, rx])
    assert np.array_equal(covered > 0, alpha < 1) and covered.max() == 1


def alignment(x: float, y: float, scale: float = 1.0, active: tuple[int, int, int, int] | None = None) -> Alignment:
    return Alignment(Geometry(x, y, scale), 1.0, np.zeros(1, int), active=active)


@pytest.mark.parametrize(("aligned", "fg_size", "expected"), [
    (alignment(10.4, 20.6), (320, 240), Placement(320, 240, 10, 21, (640, 480))),  # whole pixels, nearest
    (alignment(-3.2, -0.7), (320, 240), Placement(320, 240, -3, -1, (640, 480))),
    (alignment(10.0, 20.0, 1.5), (480, 360), Placement(320, 240, 10, 20, (640, 480))),  # fg at 1.5x: back to size
    (alignment(10.0, 20.0, 0.5), (100, 50), Placement(200, 100, 10, 20, (640, 480))),
    (alignment(0.0, 0.0, 1.5), (481, 361), Placement(320, 240, 0, 0, (640, 480))),  # 320.67 x 240.67: even
    (alignment(0.0, 0.0, 1.0005), (321, 241), Placement(320, 240, 0, 0, (640, 480))),  # scale 1 within 1e-3
    (alignment(0.0, 0.0, 1.0009), (1920, 1080), Placement(1920, 1080, 0, 0, (640, 480))),  # not 1918 x 1078
    (alignment(0.0, 0.0, 1.0), (1, 1), Placement(2, 2, 0, 0, (640, 480))),  # never under 2 x 2
    (alignment(5.0, 6.0, 1.0, active=(8, 0, 304, 240)), (320, 240), Placement(304, 240, 5, 6, (640, 480))),
    (alignment(5.0, 6.0, 2.0, active=(8, 0, 304, 240)), (320, 240), Placement(152, 120, 5, 6, (640, 480))),
])
def test_placement_is_the_rounded_geometry_at_an_even_size(aligned, fg_size, expected):
    """fg (or its active picture) scaled by 1 / scale to its region, sizes rounded then made even (4:2:0), the
    corner rounded to the nearest pixel. Catches: the size multiplied by the scale, sizes rounded up to even,
    the corner truncated, and the active picture ignored."""
    assert placement(aligned, fg_size, (640, 480)) == expected


@pytest.mark.parametrize(("pix_fmt", "factors"), [("yuv420p", (2, 2)), ("yuv422p", (1, 2)), ("yuv444p", (1, 1)),
                                                   ("yuv420p10le", (2, 2)), ("yuv440p", (2, 1))])
def test_chroma_factors_are_the_subsampling_of_each_axis(pix_fmt, factors):
    assert chroma_factors(pix_fmt) == factors


@pytest.mark.parametrize(("pix_fmt", "dtype"), [("yuv420p", np.uint8), ("yuv420p9le", np.uint16),
                                               ("yuv420p10le", np.uint16)])
def test_yuv_planes_are_writable_views_of_the_frame(pix_fmt, dtype):
    """Catches: planes copied (a paste then lost), row padding kept, or 10-bit read as bytes."""
    frame = av.VideoFrame(36, 10, pix_fmt)  # 36 px: rows padded to the line size
    planes = yuv_planes(frame)
    assert [p.shape for p in planes] == [(10, 36), (5, 18), (5, 18)]
    assert all(p.dtype == dtype for p in planes)
    for k, p in enumerate(planes):
        p[...] = np.arange(p.size, dtype=dtype).reshape(p.shape) % 200 + k
    again = yuv_planes(frame)
    for k, p in enumerate(again):
        np.testing.assert_array_equal(p, np.arange(p.size, dtype=dtype).reshape(p.shape) % 200 + k)
