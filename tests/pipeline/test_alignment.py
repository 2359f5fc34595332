"""The alignment against exact truth, through the real flow (`vidkompy.align`)."""

from __future__ import annotations

import numpy as np
import pytest

import vidkompy
from tests.helpers import CASES


@pytest.mark.parametrize("case", list(CASES))
def test_alignment_is_sub_pixel_and_frame_exact(samples, case, tmp_path):
    pair = samples[case]
    result = vidkompy.align(pair.bg, pair.fg, gpu=False, cache_dir=tmp_path / "cache")

    assert abs(result.x - pair.x) <= 0.5
    assert abs(result.y - pair.y) <= 0.5
    assert result.scale == pytest.approx(pair.scale, rel=0.01)
    frames = np.asarray(result.frames)
    assert len(frames) == len(pair.frames)
    assert np.all(np.diff(frames) >= 0), "time runs backwards in bg"
    assert np.mean(frames == pair.frames) >= 0.98
    assert np.max(np.abs(frames - pair.frames)) <= 1
    assert result.confidence > 0.8
