"""The alignment against exact truth, through the real flow (`vidkompy.align`)."""

from __future__ import annotations

import numpy as np
import pytest

import vidkompy
from tests.helpers import CASES

# The truths are whole pixels and fg is re-encoded at crf 24: found within 0.042 px and 6e-5 in scale on
# these cases. The bounds leave that a margin and still fail a half-pixel or a quarter-pixel error.
OFFSET_PX = 0.1
SCALE_REL = 1e-3


@pytest.mark.parametrize("case", list(CASES))
def test_alignment_is_sub_pixel_and_frame_exact(samples, case, tmp_path):
    """Planted faults it catches: the fit's result moved by half a pixel (a pixel-centre convention), or by a
    quarter; a scale off by 0.2%; the frame map one frame late anywhere."""
    pair = samples[case]
    result = vidkompy.align(pair.bg, pair.fg, gpu=False, cache_dir=tmp_path / "cache")

    assert abs(result.x - pair.x) <= OFFSET_PX
    assert abs(result.y - pair.y) <= OFFSET_PX
    assert result.scale == pytest.approx(pair.scale, rel=SCALE_REL)
    np.testing.assert_array_equal(result.frames, pair.frames)
    assert result.confidence > 0.8
