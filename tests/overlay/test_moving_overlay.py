"""A placement that moves (issue 19): each fg frame pasted at its own place, against a NumPy paste.

The pairs come from `tests.moving` (fg's window known per frame, rendered with SciPy); the alignment handed
to the composite is that truth, so what is tested is the paste alone. FFV1 output: lossless, so the
comparison is exact where fg is not scaled.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.moving import moving_pair
from tests.reference import assert_planes_within, decode_planes, pasted_at
from vidkompy.media.encoding import OutputSettings
from vidkompy.models import Alignment, Geometry
from vidkompy.overlay.composite import composite

FFV1 = OutputSettings("ffv1")


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("moving")
    return {kind: moving_pair(folder, kind) for kind in ("shots", "pan", "zoom")}


def truth_alignment(truth, frames: np.ndarray | None = None) -> Alignment:
    """The pair's own answer, placement per frame; ``frames`` replaces its frame map."""
    frames = truth.frames if frames is None else frames
    return Alignment(Geometry(*truth.placement[0]), 1.0, np.asarray(frames), np.ones(len(frames)),
                     np.ones(len(frames), bool), placement=truth.placement, placement_mode="tracked")


def places(truth, placement: np.ndarray | None = None) -> list[tuple]:
    """Each frame's pasted rectangle, worked out here: the region's top-left rounded half up, its size even, and
    the picture moved by what the rounding left (`tests.reference.moved`) where that is 0.1 px or more."""
    out = []
    for x, y, s in truth.placement if placement is None else placement:
        w, h = round(truth.fg_size[0] / s), round(truth.fg_size[1] / s)
        px, py = int(np.floor(x + 0.5)), int(np.floor(y + 0.5))
        dx, dy = x - px, y - py
        shift = (dx, dy) if max(abs(dx), abs(dy)) >= 0.1 else (0.0, 0.0)
        out.append((px, py, w - w % 2, h - h % 2, *shift))
    return out


@pytest.mark.parametrize("kind", ["shots", "pan"])
def test_each_frame_is_pasted_exactly_at_its_own_place(pairs, kind, tmp_path):
    """Three still shots (a jump at each cut) and a pan of (2, 1) px a frame: every plane of every frame equals
    the NumPy paste at that frame's window. Planted fault it catches: one placement for all frames (the first
    frame's, or the one most frames share), which is tens of levels off wherever the window moved."""
    t = pairs[kind]
    out = composite(t.bg, t.fg, tmp_path / "o.mkv", truth_alignment(t), settings=FFV1, border=0)
    assert_planes_within(decode_planes(out), pasted_at(t.bg, t.fg, t.frames, places(t)), 0)


def test_a_bg_frame_shown_twice_at_two_places_keeps_no_trace_of_the_first(pairs, tmp_path):
    """fg at half speed over bg (each bg frame under two fg frames) while the window pans: the second paste
    lands a few pixels from the first on the same decoded bg frame. Planted fault it catches: pasting into the
    reused frame without restoring it, which leaves a strip of the first paste beside the second."""
    t = pairs["pan"]
    slow = np.arange(len(t.frames)) // 2
    out = composite(t.bg, t.fg, tmp_path / "o.mkv", truth_alignment(t, slow), settings=FFV1, border=0)
    assert_planes_within(decode_planes(out), pasted_at(t.bg, t.fg, slow, places(t)), 0)


def test_the_blend_ramps_only_the_edges_visible_at_that_frame(pairs, tmp_path):
    """--blend over 8 px: the first shot sits in bg's top-left corner, so its left and top edges stay hard
    (fg's own pixels) while its right edge ramps; the second shot is inside bg, so its left edge ramps too.
    The ramp's outermost column is alpha = (0 + 0.5) / 8 of fg over bg, the value stated here."""
    t = pairs["shots"]
    out = composite(t.bg, t.fg, tmp_path / "o.mkv", truth_alignment(t), settings=FFV1, border=8, blend=True)
    got = decode_planes(out)
    plain = pasted_at(t.bg, t.fg, t.frames, places(t))
    bgs = decode_planes(t.bg)
    first, second = 5, 25  # a frame of each of the first two shots
    x, y, w, h, *_ = places(t)[first]
    assert (x, y) == (0, 0)
    # hard: the canvas's edge (down to where the bottom edge's ramp begins)
    np.testing.assert_array_equal(got[first][0][: h - 8, 0], plain[first][0][: h - 8, 0])
    x, y, w, h, *_ = places(t)[second]
    assert x > 0 and y > 0
    rows = slice(y + 8, y + h - 8)  # away from the corners, where the top and bottom ramps meet it
    fg_col = plain[second][0][rows, x].astype(np.float64)
    bg_col = bgs[t.frames[second]][0][rows, x].astype(np.float64)
    want = np.floor(bg_col + (0.5 / 8) * (fg_col - bg_col) + 0.5)
    np.testing.assert_array_equal(got[second][0][rows, x], want)


def test_a_place_between_pixels_is_pasted_there_to_within_a_level(pairs, tmp_path):
    """The pan's places moved by (0.3, -0.5) px (fg itself unchanged): each frame pasted at its whole pixel with
    its picture moved by the rest, within one level of the NumPy paste of the picture moved bilinearly.
    Planted fault it catches: the whole-pixel paste alone, up to half a pixel off (tens of levels at edges)."""
    t = pairs["pan"]
    placement = t.placement + np.array([0.3, -0.5, 0.0])
    alignment = Alignment(Geometry(*placement[0]), 1.0, np.asarray(t.frames), np.ones(len(t.frames)),
                          np.ones(len(t.frames), bool), placement=placement, placement_mode="tracked")
    out = composite(t.bg, t.fg, tmp_path / "o.mkv", alignment, settings=FFV1, border=0)
    assert_planes_within(decode_planes(out), pasted_at(t.bg, t.fg, t.frames, places(t, placement)), 1)


def test_a_zoom_is_pasted_at_each_frames_size_to_within_a_level(pairs, tmp_path):
    """Scale 1.0 -> 1.15: fg shrunk to each frame's region size and pasted at its place, within one level of the
    NumPy paste (the scalers' rounding, as at a fixed scale). Planted fault it catches: every frame shrunk to
    the first frame's size (the last frames then overrun their region by 25 px)."""
    t = pairs["zoom"]
    out = composite(t.bg, t.fg, tmp_path / "o.mkv", truth_alignment(t), settings=FFV1, border=0)
    assert_planes_within(decode_planes(out), pasted_at(t.bg, t.fg, t.frames, places(t)), 1)
