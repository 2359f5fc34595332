"""A file's start timecode, read as FFmpeg exposes a tmcd track or a Matroska tag."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from vidkompy.conform import read_timecode
from vidkompy.errors import InputError


def _write(path: Path, timecode: str | None) -> Path:
    with av.open(str(path), "w") as out:
        s = out.add_stream("libx264", rate=Fraction(25))
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        if timecode:
            s.metadata["timecode"] = timecode
        for k in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), "rgb24")
            frame.pts = k
            for p in s.encode(frame):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
    return path


@pytest.mark.parametrize("suffix", [".mov", ".mp4", ".mkv"])
def test_read_timecode(suffix: str, tmp_path: Path) -> None:
    assert read_timecode(_write(tmp_path / f"tc{suffix}", "01:00:00:00")) == "01:00:00:00"
    assert read_timecode(_write(tmp_path / f"none{suffix}", None)) is None


def test_unreadable_file_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "x.mov").write_text("not a video")
    with pytest.raises(InputError):
        read_timecode(tmp_path / "x.mov")
