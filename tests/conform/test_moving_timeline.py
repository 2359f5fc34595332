"""A placement that moves, on the timeline (issue 19): V2 carries a transform per clip where it changes."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import opentimelineio as otio

from tests.conform.cases import case
from vidkompy.conform import build_timeline, write_timeline
from vidkompy.models import Alignment


def moving_alignment() -> tuple[Alignment, np.ndarray, tuple]:
    """60 fg frames on bg frames 0-59: a still shot at (20, 10), a pan from (100, 40) at (2, 1) px a frame, an
    unmatched frame inside the pan, and a still shot at (300, 150) at scale 1.25."""
    frames = np.arange(60)
    place = np.zeros((60, 3))
    place[:20] = [20, 10, 1.0]
    place[20:40] = [[100 + 2 * k, 40 + k, 1.0] for k in range(20)]
    place[40:] = [300, 150, 1.25]
    matched = np.ones(60, bool)
    matched[30] = False
    place[30] = np.nan
    c = case("moving", frames, 25.0, 25.0, (Fraction(1),))
    a = Alignment(c.alignment.geometry, 0.99, frames, np.ones(60), matched, placement=place,
                  placement_mode="tracked")
    return a, place, c


def test_v2_has_a_clip_per_placement_with_its_own_transform(tmp_path: Path):
    """Three stretches (the pan split by its unmatched frame into two, each moving): V2's clips cover fg frame
    for frame, each carries its stretch's x, y, scale, a moving one also where it ends, and FCP7 XML gives
    each clip its own Basic Motion. Planted faults it catches: one placement for the whole of fg (the
    timeline would show the pan's frames at the first shot's place); a moving clip without its end."""
    a, place, c = moving_alignment()
    timeline = build_timeline(a, c.fg, c.bg)
    v2 = [cl for cl in timeline.tracks[1] if isinstance(cl, otio.schema.Clip)]
    spans = [(cl.source_range.start_time.to_frames(), cl.source_range.duration.to_frames()) for cl in v2]
    assert [f for f, _ in spans] == [0, 20, 31, 40] and sum(d for _, d in spans) == 60
    metas = [cl.metadata["vidkompy"] for cl in v2]
    assert [(m["x"], m["y"], m["scale"]) for m in metas] == [(20, 10, 1.0), (100, 40, 1.0), (122, 51, 1.0),
                                                             (300, 150, 1.25)]
    assert "motion" not in metas[0] and "motion" not in metas[3]
    assert (metas[1]["motion"]["end"]["x"], metas[1]["motion"]["end"]["y"]) == (118, 49)
    assert (metas[2]["motion"]["end"]["x"], metas[2]["motion"]["end"]["y"]) == (138, 59)
    xml = Path(write_timeline(timeline, tmp_path / "t.xml")).read_text()
    assert xml.count("<name>Basic Motion</name>") == 4
