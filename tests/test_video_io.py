"""Frames read on demand are the frames a plain decode gives."""

from __future__ import annotations

import av
import numpy as np
import pytest
from av.video.frame import PictureType

from tests.helpers import write_video
from vidkompy.video_io import SEEK_COST_FRAMES, read_gray_frames


@pytest.fixture(scope="module")
def long_gop(tmp_path_factory):
    """640 distinct frames, x264's default GOP (keyframes 250 apart) and B-frames: seeks decode many."""
    rng = np.random.default_rng(7)
    texture = rng.integers(0, 256, (120 + 640, 160, 3), dtype=np.uint8)
    frames = [texture[k : k + 120] for k in range(640)]  # the picture scrolls a row a frame
    return write_video(tmp_path_factory.mktemp("gop") / "gop.mp4", frames, fps=25)


def test_frames_read_by_seeking_are_the_decoded_frames(long_gop):
    with av.open(str(long_gop)) as c:
        vs = c.streams.video[0]
        decoded = [(float(f.pts * f.time_base), f.to_ndarray(format="gray"), PictureType(f.pict_type).name)
                   for f in c.decode(vs)]
    pts = np.array([t for t, _, _ in decoded])
    # targets far enough apart to be read by seeking; two a few frames apart share one seek
    wanted = [137, 141, 380, 517]
    assert len(wanted) * SEEK_COST_FRAMES <= wanted[-1]
    assert {decoded[i][2] for i in range(100, 250)} >= {"B", "P"}  # the frames skipped on the way exist
    got = read_gray_frames(long_gop, wanted, pts)
    assert sorted(got) == wanted
    for i in wanted:
        np.testing.assert_array_equal(got[i], decoded[i][1], err_msg=f"frame {i}")
