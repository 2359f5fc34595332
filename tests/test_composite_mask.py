"""The blend mask ramps only on edges where bg is visible."""

from __future__ import annotations

import numpy as np

from vidkompy.composite import Placement, edge_alpha


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
