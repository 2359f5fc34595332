"""The conform as a timeline an editing application opens: OpenTimelineIO, FCP7 XML and CMX 3600 EDL.

`build_timeline` turns an `Alignment` into an OTIO timeline (bg cut and retimed
under fg, fg placed on top, inserted shots flagged); `write_timeline` writes it
in the format its extension names; `shown_frames` reads one back and says which
bg frame each fg frame shows, so that tests and benchmarks can measure how much
of the frame map a written timeline reproduces.
"""

from __future__ import annotations

from vidkompy.conform.evaluate import Reproduction, reproduction, shown_frames
from vidkompy.conform.formats import FORMATS, check_timeline_path, read_timeline, timeline_target, write_timeline
from vidkompy.conform.timecode import read_timecode
from vidkompy.conform.timeline import Stretch, build_timeline, conform_stretches, fit_stretches

__all__ = [
    "FORMATS",
    "Reproduction",
    "Stretch",
    "build_timeline",
    "check_timeline_path",
    "conform_stretches",
    "fit_stretches",
    "read_timecode",
    "read_timeline",
    "reproduction",
    "shown_frames",
    "timeline_target",
    "write_timeline",
]
