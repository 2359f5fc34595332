"""--timeline through the real flow: the written timeline shows the sample's true bg frames, from the store.

The truth is the sample's own map (`SamplePair.frames`, made when the pair was cut), and the timeline is
read back with OpenTimelineIO's adapter and evaluated by `vidkompy.conform.shown_frames`, which reads only
the timeline's clips, ranges and time warps, never the map that built them.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import vidkompy
from vidkompy._cli.main import main
from vidkompy.conform import read_timeline, shown_frames


def _shown(path, fps: float | None = None) -> np.ndarray:
    return shown_frames(read_timeline(path), rate=fps)


def test_align_writes_an_otio_timeline_that_shows_the_true_frames(samples, crop_cache, tmp_path, capsys):
    """The alignment comes from the store (`crop_cache`); the timeline is made from it. Planted fault it catches:
    a clip whose source start or time scalar is a frame off."""
    pair = samples["crop"]  # 25 fps bg under a 30 fps fg, trimmed at both ends
    out = tmp_path / "conform.otio"
    code = main(["align", str(pair.bg), str(pair.fg), "--no-gpu", "--cache-dir", str(crop_cache), "--json",
                 "--timeline", str(out)])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["timeline"] == str(out)
    assert np.array_equal(_shown(out), pair.frames)
    assert np.array_equal(doc["frames"], pair.frames)


def test_a_bare_extension_puts_the_timeline_beside_the_output_and_a_cached_run_computes_no_stage(samples, tmp_path):
    pair = samples["band"]  # 25 over 25: FCP7 XML carries it exactly
    cache = tmp_path / "c"
    vidkompy.align(pair.bg, pair.fg, gpu=False, cache_dir=cache)
    result = vidkompy.compose(pair.bg, pair.fg, tmp_path / "film.mp4", gpu=False, cache_dir=cache, timeline=".xml")
    assert result.timeline == str(tmp_path / "film.xml")
    assert set(result.computed) == {"composite", "timeline"}  # the alignment came from the store
    assert np.array_equal(_shown(result.timeline), pair.frames)


@pytest.mark.parametrize(("name", "code", "words"), [
    ("t.txt", 2, ["unknown extension", ".otio"]),
    ("missing/t.otio", 3, ["timeline folder does not exist"]),
])
def test_a_timeline_that_cannot_be_written_fails_before_any_stage(samples, tmp_path, capsys, name, code, words):
    pair = samples["crop"]
    cache = tmp_path / "c"
    got = main(["align", str(pair.bg), str(pair.fg), "--no-gpu", "--cache-dir", str(cache),
                "--timeline", str(tmp_path / name)])
    err = capsys.readouterr().err.strip().splitlines()
    assert got == code
    assert len(err) == 1 and all(w in err[0] for w in words)
    assert not cache.exists()  # nothing ran: no stage opened the store
