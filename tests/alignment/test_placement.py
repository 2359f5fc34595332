"""The placement that moves (`vidkompy.alignment.placement`) against exact truth.

The pairs come from `tests.moving`: fg's window is known per frame and rendered with SciPy, independently of
vidkompy's resampling; the error of a placement is measured here, as the largest distance between the found
and the true region's corners (which folds a scale error in).
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.moving import moving_pair
from vidkompy.alignment.dtw import frame_ratio
from vidkompy.alignment.locate import locate
from vidkompy.alignment.placement import Sample, _on_clock, follow, group
from vidkompy.alignment.source import Video
from vidkompy.media.decode import WORK_WIDTH, ThumbnailDecoder
from vidkompy.models import Fit, Geometry


def working(path) -> Video:
    decoder = ThumbnailDecoder(str(path), WORK_WIDTH)
    blocks = list(decoder.blocks(256))
    return Video(np.concatenate([b.frames for b in blocks]), np.concatenate([b.pts for b in blocks]),
                 decoder.info_size)


def corner_error(found: np.ndarray, true: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    corners = []
    for p in (found, true):
        x, y, s = p[:, 0], p[:, 1], p[:, 2]
        corners.append(np.stack([x, y, x + w / s, y + h / s], axis=1))
    d = corners[0] - corners[1]
    return np.maximum(np.hypot(d[:, 0], d[:, 1]), np.hypot(d[:, 2], d[:, 3]))


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("moving")
    out = {}
    for kind in ("fixed", "shots", "pan", "zoom"):
        t = moving_pair(folder, kind)
        out[kind] = (t, working(t.bg), working(t.fg))
    return out


@pytest.mark.parametrize(("kind", "mode"), [("shots", "per shot"), ("pan", "tracked"), ("zoom", "tracked")])
def test_every_frame_is_placed_within_half_a_pixel_on_its_true_frame(pairs, kind, mode):
    """Three still shots with a jump at each cut; a pan of (2, 1) px a frame then a still shot; a zoom from
    1.0 to 1.15: searched from wherever locate voted, every frame lands within 0.5 px of its true window, on
    its true bg frame, and the mode says which case it was. Planted faults it catches: a cut put two frames
    late (those frames placed at the other shot's window, 100 px off), a pan's velocity taken from two
    samples instead of the line through all (0.5-1 px at its far end), a zoom's scale held at its start."""
    truth, bg, fg = pairs[kind]
    located = locate(bg.frames, bg.size, fg.frames, fg.size)
    moving = follow(bg, fg, Fit(located.geometry), frame_ratio(bg.pts, fg.pts), fg.pts, bg.pts)
    assert moving is not None and moving.moves and moving.mode == mode
    err = corner_error(moving.per_frame, truth.placement, truth.fg_size)
    assert np.nanmax(err) <= 0.5, (np.nanargmax(err), np.nanmax(err))
    assert moving.match.matched.all()
    np.testing.assert_array_equal(truth.labels[moving.match.frames], truth.labels[truth.frames])


def test_a_fixed_window_is_voted_by_every_sample(pairs):
    """One window for all frames: no locate sample is found clearly better elsewhere, so the fixed path runs
    exactly as before, and locate's place is the true window to the working pixel (bg 400 px wide: 1.25 px).
    Planted fault it catches: counting a sample whose best place is a wrong-time bg frame a pixel off
    (a pan in bikes' footage) as placed elsewhere."""
    truth, bg, fg = pairs["fixed"]
    located = locate(bg.frames, bg.size, fg.frames, fg.size)
    assert located.elsewhere == 0
    x, y, s = truth.placement[0]
    assert abs(located.geometry.x - x) <= 1.25 and abs(located.geometry.y - y) <= 1.25 and located.geometry.scale == s


def _pan(rows, x0=10.0, vx=2.0, scale=1.0) -> list[Sample]:
    return [Sample(int(r), int(r), Geometry(x0 + vx * r, 20.0, scale), 0.99) for r in rows]


def test_a_sample_off_its_line_is_an_outlier_and_a_jump_starts_a_stretch():
    """Samples every 8 frames of a pan at 2 px a frame, one of them 10 px off, then a still shot 100 px
    away: one stretch for the pan (the outlier dropped, counted), one for the still shot. Planted faults it
    catches: the outlier starting a stretch of its own (which then splits the pan), or the still shot joined
    to the pan."""
    pan = _pan(range(0, 64, 8))
    pan[3] = Sample(24, 24, Geometry(10.0 + 2 * 24 + 10.0, 20.0, 1.0), 0.99)
    still = [Sample(r, r, Geometry(200.0, 50.0, 1.0), 0.99) for r in range(64, 120, 8)]
    groups, dropped = group(pan + still, (192, 96), 1.0)
    assert dropped == 1
    assert [[s.row for s in g] for g in groups] == [[0, 8, 16, 32, 40, 48, 56], list(range(64, 120, 8))]


def test_samples_on_wrong_time_frames_are_put_back_on_the_clock():
    """Eleven samples 8 frames apart on bg's clock (frame = 3 + row), two of them picked a wrong-time frame
    (a camera move makes those match almost as well), then fg recut 40 frames ahead: the two go back on the
    clock, the recut stays. Planted faults it catches: trusting each sample's own frame; smoothing the recut
    away (a 40-frame jump becomes a slope)."""
    rows = list(range(0, 88, 8))
    frames = [3 + r for r in rows]
    frames[2], frames[3] = frames[2] - 4, frames[3] - 5
    frames[6:] = [f + 40 for f in frames[6:]]
    want = [3 + r for r in rows[:6]] + [43 + r for r in rows[6:]]
    assert _on_clock(rows, frames, 1.0) == want
