"""Bad and unusual inputs: what cannot be used is one line and an exit code, with nothing written and no
poisoned cache; what is unusual but fine gives the right output.

Crashes, Ctrl-C and concurrent runs are `tests/pipeline/test_crashes.py`'s.
"""

from __future__ import annotations

import logging
import math
import os
import struct
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

import vidkompy
from tests.helpers import VIDKOMPY, decode_all, vidkompy_log
from tests.reference import assert_planes_within, decode_planes, pasted, pasted_at
from vidkompy.samples import SamplePair, make_pair
from vidkompy.store.artifacts import Store


def cli(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([VIDKOMPY, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


# -- making bad inputs ---------------------------------------------------------------------------


def _rotated(path: Path, out: Path) -> Path:
    """A copy whose track header says: display turned by 90 degrees."""
    data = bytearray(path.read_bytes())
    i = data.find(b"tkhd")
    version = data[i + 4]
    matrix = i + 8 + (28 if version == 1 else 20) + 8 + 8
    data[matrix : matrix + 36] = struct.pack(">9I", 0, 0x10000, 0, (-0x10000) & 0xFFFFFFFF, 0, 0, 0, 0, 0x40000000)
    out.write_bytes(bytes(data))
    return out


def _zero_frames(path: Path, out: Path) -> Path:
    """A well-formed mp4 whose video payload is zeros: opens, but no frame decodes."""
    data = bytearray(path.read_bytes())
    i = data.find(b"mdat")
    size = int.from_bytes(data[i - 4 : i], "big")
    data[i + 4 : i - 4 + size] = bytes(size - 8)
    out.write_bytes(bytes(data))
    return out


def _audio_only(out: Path) -> Path:
    with av.open(str(out), "w") as c:
        s = c.add_stream("aac", rate=48000)
        s.layout = "mono"
        for k in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 48000, k * 1024
            for pkt in s.encode(frame):
                c.mux(pkt)
        for pkt in s.encode(None):
            c.mux(pkt)
    return out


def _write(out: Path, data: bytes) -> Path:
    out.write_bytes(data)
    return out


def _still(out: Path) -> Path:
    av.VideoFrame.from_ndarray(np.full((48, 64, 3), 128, np.uint8), "rgb24").to_image().save(out)
    return out


@dataclass(frozen=True)
class Bad:
    """A bad input: which argument it replaces, how to make it, the exit code and words expected."""

    role: str  # "bg", "fg" or "output"
    make: Callable[[Path, SamplePair], Path]
    code: int
    words: str


BAD = {
    "missing bg": Bad("bg", lambda d, p: d / "missing.mp4", 2, "no such file"),
    "missing fg": Bad("fg", lambda d, p: d / "missing.mp4", 2, "no such file"),
    "bg a directory": Bad("bg", lambda d, p: d, 2, "is a directory"),
    "fg a directory": Bad("fg", lambda d, p: d, 2, "is a directory"),
    "bg empty": Bad("bg", lambda d, p: _write(d / "empty.mp4", b""), 2, "is empty"),
    "fg empty": Bad("fg", lambda d, p: _write(d / "empty.mp4", b""), 2, "is empty"),
    "bg text named .mp4": Bad("bg", lambda d, p: _write(d / "t.mp4", b"hello\n"), 2, "not a video"),
    "fg text named .mp4": Bad("fg", lambda d, p: _write(d / "t.mp4", b"hello\n"), 2, "not a video"),
    "mp4 cut in half": Bad("fg", lambda d, p: _write(d / "h.mp4", p.fg.read_bytes()[: p.fg.stat().st_size // 2]),
                           2, "not a video"),
    "bg audio only": Bad("bg", lambda d, p: _audio_only(d / "a.m4a"), 2, "no video stream"),
    "fg audio only": Bad("fg", lambda d, p: _audio_only(d / "a.m4a"), 2, "no video stream"),
    "still image": Bad("bg", lambda d, p: _still(d / "still.png"), 2, "still image"),
    "zero decodable frames": Bad("bg", lambda d, p: _zero_frames(p.bg, d / "z.mp4"), 2, "no decodable video frames"),
    "rotation differs": Bad("fg", lambda d, p: _rotated(p.fg, d / "r.mp4"), 2, "rotated"),
    "output is the bg": Bad("output", lambda d, p: p.bg, 3, "is an input file"),
    "output is the fg": Bad("output", lambda d, p: p.fg, 3, "is an input file"),
    "output folder missing": Bad("output", lambda d, p: d / "nowhere" / "o.mp4", 3, "does not exist"),
    "output folder not writable": Bad("output", lambda d, p: Path("/proc/o.mp4"), 3, "not writable"),
    "output is a directory": Bad("output", lambda d, p: d, 3, "is a directory"),
}


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> SamplePair:
    return make_pair(tmp_path_factory.mktemp("rel"), name="r", seconds=2.0, seed=40)


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_an_exit_code_no_output_and_an_untouched_cache(pair, tmp_path, case):
    bad = BAD[case]
    thing = bad.make(tmp_path, pair)
    bg, fg, out = pair.bg, pair.fg, tmp_path / "out.mp4"
    if bad.role == "bg":
        bg = thing
    elif bad.role == "fg":
        fg = thing
    else:
        out = thing
    inputs_before = {p: p.read_bytes() for p in (pair.bg, pair.fg)}
    cache = tmp_path / "cache"
    r = cli(str(bg), str(fg), "-o", str(out), "--no-gpu", "--cache-dir", str(cache))
    assert r.returncode == bad.code, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and bad.words in lines[0] and "Traceback" not in r.stderr, r.stderr
    assert str(thing) in lines[0]
    if bad.role != "output":
        assert not out.exists()
    assert not list(tmp_path.glob(".*.part*"))
    assert Store(cache).files() == {}
    assert {p: p.read_bytes() for p in (pair.bg, pair.fg)} == inputs_before


def placed_size(fg: Path, scale: float) -> tuple[int, int]:
    """fg's size on bg's canvas at ``scale``, in the even numbers 4:2:0 needs (the rule vidkompy documents)."""
    with av.open(str(fg)) as c:
        w, h = c.streams.video[0].width, c.streams.video[0].height
    if abs(scale - 1.0) > 1e-3:
        w, h = round(w / scale), round(h / scale)
    return max(2, w - w % 2), max(2, h - h % 2)


def test_fg_that_is_not_part_of_bg_is_refused_with_its_confidence_and_force_composes(pair, tmp_path):
    """The refusal is the command line's (exit 4, one line). Forced (the library's ``force``, which --force
    sets: tests/test_options.py), the lossless output is what the reported alignment says, whatever it is
    worth: fg resized to each frame's scale and pasted at each frame's placement, to the nearest pixel with a
    half rounding up and, where the placement moves, its picture moved by the rest (`tests.reference.moved`; a
    frame without a placement held at the one before it), over the bg frames of its map, within a level of the
    NumPy paste. Planted
    faults it catches: the output pasted a pixel off the alignment the run reports (which --json prints); a
    track that moves half a pixel a frame pasted with round-half-to-even, a pixel off the reported place at
    every other frame."""
    other = make_pair(tmp_path, name="other", seconds=2.0, seed=41)
    out = tmp_path / "o.mkv"
    r = cli(str(pair.bg), str(other.fg), "-o", str(out), "--no-gpu", "--cache-dir", str(tmp_path / "c"))
    assert r.returncode == 4
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("vidkompy: error:")]
    assert len(errors) == 1 and "confidence" in errors[0] and "--force" in errors[0]
    assert "Traceback" not in r.stderr
    assert not out.exists()
    forced = vidkompy.compose(pair.bg, other.fg, out, codec="ffv1", force=True, gpu=False, cache_dir=tmp_path / "c")
    doc = forced.alignment.as_json()
    assert doc["confidence"] < 0.8
    moving = doc["placement_mode"] != "fixed"  # forced onto other footage, the search may or may not adopt one

    def place(p: list[float]) -> tuple:  # the nearest pixel, a half rounding up; a moving one's picture moved
        x, y = math.floor(p[0] + 0.5), math.floor(p[1] + 0.5)  # by the rest
        off = max(abs(p[0] - x), abs(p[1] - y)) >= 0.1 and moving
        return x, y, *placed_size(other.fg, p[2]), *((p[0] - x, p[1] - y) if off else (0.0, 0.0))

    places, last = [], [doc["x"], doc["y"], doc["scale"]]
    for p in doc["placement"]:
        last = p or last
        places.append(place(last))
    if doc["placement"][0] is None:  # held back from the first frame that has one, as the overlay does
        first = next((p for p in doc["placement"] if p), [doc["x"], doc["y"], doc["scale"]])
        lead = next(i for i, p in enumerate(doc["placement"] + [first]) if p)
        places[:lead] = [place(first)] * lead
    want = pasted_at(pair.bg, other.fg, np.array(doc["frames"]), places)
    assert_planes_within(decode_planes(out), want, 1)


# -- inputs that are unusual but fine -----------------------------------------------------------


def _align(bg: Path, fg: Path, cache: Path) -> dict:
    """The alignment by the library, in this process: these tests are about the answer, not the command line."""
    return vidkompy.align(bg, fg, gpu=False, cache_dir=cache).alignment.as_json()


def assert_true_alignment(doc: dict, pair: SamplePair) -> None:
    """The sample's map frame for frame, its whole-pixel offset to within 0.1 px (found within 0.061 here)."""
    np.testing.assert_array_equal(doc["frames"], pair.frames)
    assert abs(doc["x"] - pair.x) <= 0.1 and abs(doc["y"] - pair.y) <= 0.1 and doc["scale"] == pair.scale


def test_odd_sizes_compose_on_an_even_canvas(tmp_path):
    """At an odd offset the lossless output is the NumPy paste at the true offset over the true frames, to the
    bit. Planted fault it catches: fg snapped to an even offset for 4:2:0 (a pixel off)."""
    p = make_pair(tmp_path, name="odd", bg_size=(322, 242), region=(51, 33, 160, 120), seconds=2.0, seed=42)
    out = tmp_path / "o.mkv"
    result = vidkompy.compose(p.bg, p.fg, out, codec="ffv1", gpu=False, cache_dir=tmp_path / "c")
    assert_true_alignment(result.alignment.as_json(), p)
    assert_planes_within(decode_planes(out), pasted(p.bg, p.fg, p.frames, 51, 33), 0)


def test_same_rotation_on_both_is_kept_in_the_output(pair, tmp_path):
    bg, fg = _rotated(pair.bg, tmp_path / "rb.mp4"), _rotated(pair.fg, tmp_path / "rf.mp4")
    out = tmp_path / "o.mp4"
    vidkompy.compose(bg, fg, out, gpu=False, cache_dir=tmp_path / "c")
    with av.open(str(out)) as c:
        assert next(c.decode(video=0)).rotation in (-90, 270)


def test_variable_frame_rate_fg_maps_by_timestamps(pair, tmp_path):
    """fg with every 4th frame dropped (gaps in pts): each kept frame still finds its bg frame."""
    vfr = tmp_path / "vfr.mp4"
    keep = [i for i in range(len(pair.frames)) if i % 4 != 3]
    with av.open(str(pair.fg)) as src, av.open(str(vfr), "w") as dst:
        s_in = src.streams.video[0]
        vs = dst.add_stream("libx264", rate=s_in.average_rate)
        vs.width, vs.height, vs.pix_fmt = s_in.width, s_in.height, "yuv420p"
        vs.time_base = s_in.time_base
        for i, frame in enumerate(src.decode(s_in)):
            if i in keep:
                frame.pict_type = av.video.frame.PictureType.NONE
                for pkt in vs.encode(frame):
                    dst.mux(pkt)
        for pkt in vs.encode(None):
            dst.mux(pkt)
    doc = _align(pair.bg, vfr, tmp_path / "c")
    frames = np.array(doc["frames"])
    truth = pair.frames[keep]
    assert len(frames) == len(truth)
    assert np.mean(frames == truth) >= 0.95 and np.max(np.abs(frames - truth)) <= 1


@pytest.mark.parametrize("overhang", ["fg longer than bg", "fg starts before bg"])
def test_fg_outside_bg_time_is_clamped_monotonically(tmp_path, overhang):
    """bg is cut from the source too: fg frames with no bg moment sit on bg's first or last frame."""
    p = make_pair(tmp_path, name="long", seconds=3.0, seed=43, trim=(0.2, 0.2), bg_fps=25, fg_fps=25)
    cut = tmp_path / "bgcut.mp4"
    frames = decode_all(p.bg)
    keep = range(25, len(frames)) if overhang == "fg starts before bg" else range(0, len(frames) - 25)
    with av.open(str(cut), "w") as dst:
        vs = dst.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for k, i in enumerate(keep):
            f = av.VideoFrame.from_ndarray(frames[i], "rgb24")
            f.pts = k
            for pkt in vs.encode(f):
                dst.mux(pkt)
        for pkt in vs.encode(None):
            dst.mux(pkt)
    doc = _align(cut, p.fg, tmp_path / "c")
    got = np.array(doc["frames"])
    truth = np.clip(p.frames - keep[0], 0, len(keep) - 1)
    inside = (p.frames >= keep[0]) & (p.frames <= keep[-1])
    assert len(got) == len(p.frames) and np.all(np.diff(got) >= 0)
    assert np.mean(got[inside] == truth[inside]) >= 0.95


@pytest.fixture(scope="module")
def without_cache_over_an_old_output(pair, tmp_path_factory) -> tuple[list[str], Path]:
    """One compose for the two tests below, by the library in this process: its output exists already, and a
    file stands where its cache folder would be. Its warnings (the CLI prints each as one line) and output."""
    folder = tmp_path_factory.mktemp("nocache")
    blocker = folder / "file"
    blocker.write_text("a file where the cache folder would be")
    out = folder / "o.mp4"
    out.write_bytes(b"old")
    with vidkompy_log(logging.WARNING) as records:
        vidkompy.compose(pair.bg, pair.fg, out, gpu=False, cache_dir=blocker / "cache")
    return [r.getMessage() for r in records], out


def test_an_existing_output_is_replaced_whole(pair, without_cache_over_an_old_output):
    _, out = without_cache_over_an_old_output
    assert len(decode_all(out, "gray")) == len(pair.frames)


def test_an_unwritable_cache_runs_without_it_and_says_so_once(pair, without_cache_over_an_old_output):
    warnings, out = without_cache_over_an_old_output
    assert sum("not writable: running without the cache" in w for w in warnings) == 1, warnings
    assert len(decode_all(out, "gray")) == len(pair.frames)
