"""A placement that moves, through the whole run (issue 19): `align --json`, the composite, the refusal.

Truth comes from `tests.moving` (fg's window per frame, rendered with SciPy) and from NumPy pastes
(`tests.reference`), never from vidkompy's own output.
"""

from __future__ import annotations

import json
import subprocess

import av
import numpy as np
import pytest

import vidkompy
from tests.alignment.test_placement import corner_error
from tests.helpers import VIDKOMPY, write_video
from tests.moving import moving_pair
from tests.overlay.test_moving_overlay import places
from tests.reference import assert_planes_within, decode_planes, pasted_at
from vidkompy.errors import AlignmentError


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("moving")
    return {kind: moving_pair(folder, kind) for kind in ("fixed", "shots", "pan")}


def test_align_json_gives_every_frame_its_placement(pairs, tmp_path):
    """A pan of (2, 1) px a frame for 36 frames, then a still shot of 24 at (150, 60): `placement` holds each
    frame's [x, y, scale] within 0.5 px of its window, and x, y, scale are the placement most frames share
    (the still shot's: the pan's frames each have their own). Planted faults it catches: the pan's frames
    reported at one place; x, y taken as the mean of the track."""
    t = pairs["pan"]
    r = subprocess.run([VIDKOMPY, "align", str(t.bg), str(t.fg), "--json", "--no-gpu", "--cache-dir",
                        str(tmp_path / "c")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["placement_mode"] == "tracked" and doc["off_canvas"] == []
    found = np.array(doc["placement"], np.float64)
    assert found.shape == (len(t.frames), 3)
    assert corner_error(found, t.placement, t.fg_size).max() <= 0.5
    still = t.placement[-1]
    assert abs(doc["x"] - still[0]) <= 0.5 and abs(doc["y"] - still[1]) <= 0.5 and abs(doc["scale"] - 1) < 1e-3, \
        (doc["x"], doc["y"], doc["scale"], found[-30:].round(3).tolist())
    np.testing.assert_array_equal(t.labels[doc["frames"]], t.labels[t.frames])


def test_a_fixed_window_keeps_one_placement_for_every_frame(pairs, tmp_path):
    """One window: the mode is "fixed", every frame's placement is x, y, scale, and that is the true window to
    0.05 px. Planted fault it catches: a placement search on a fixed pair that moves some frames' placement
    (a wrong-time bg frame matches a pixel off during bikes' pans)."""
    t = pairs["fixed"]
    result = vidkompy.align(str(t.bg), str(t.fg), cache_dir=str(tmp_path / "c"), gpu=False)
    a = result.alignment
    assert a.placement_mode == "fixed" and a.placement is None
    doc = a.as_json()
    assert doc["placement"] == [[round(a.geometry.x, 4), round(a.geometry.y, 4), round(a.geometry.scale, 4)]] * len(
        t.frames)
    assert corner_error(a.placements(), t.placement, t.fg_size).max() <= 0.05


def test_compose_pastes_each_shot_at_its_window(pairs, tmp_path):
    """Three still shots with a jump at each cut, composed to FFV1: every plane of every frame equals the NumPy
    paste of fg at its shot's window over its true bg frame. Planted fault it catches: the overlay pasting
    every frame at x, y (two of the three shots 100 px and more off)."""
    t = pairs["shots"]
    out = tmp_path / "o.mkv"
    result = vidkompy.compose(str(t.bg), str(t.fg), str(out), cache_dir=str(tmp_path / "c"), gpu=False,
                              codec="ffv1", border=0)
    assert result.alignment.placement_mode == "per shot"
    assert_planes_within(decode_planes(out), pasted_at(t.bg, t.fg, t.frames, places(t)), 0)


def test_fg_from_other_footage_is_refused_for_what_it_is(pairs, tmp_path):
    """fg made of Big Buck Bunny's frames against bikes: refused (exit code 4) in one line that says its frames
    were looked for at every placement vidkompy follows, not merely at one. By the library, in this process:
    the reason is the point here; how the command line prints an error is tests/pipeline/test_reliability.py's.
    Planted fault it catches: the refusal of issue 19's report, which blames fixed placement ("no counterpart")
    without having searched elsewhere."""
    from tests.footage import clip_path

    frames = []
    with av.open(str(clip_path("bigbuckbunny.mp4"))) as c:
        for k, f in enumerate(c.decode(video=0)):
            if k >= 60:
                break
            frames.append(f.reformat(width=192, height=96, format="rgb24").to_ndarray())
    fg = write_video(tmp_path / "other.mp4", frames)
    t = pairs["pan"]
    with pytest.raises(AlignmentError) as refused:
        vidkompy.align(t.bg, fg, gpu=False, cache_dir=tmp_path / "c")
    reason = str(refused.value)
    assert refused.value.exit_code == 4 and "\n" not in reason
    assert "at any placement" in reason or "other footage" in reason
    assert "--force" in reason
