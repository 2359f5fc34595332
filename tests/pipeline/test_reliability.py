"""Bad input, crashes and concurrent runs: nothing lost, nothing half-written, no poisoned cache."""

from __future__ import annotations

import json
import math
import os
import signal
import struct
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pytest

import vidkompy
from tests.helpers import VIDKOMPY, decode_all
from tests.reference import assert_planes_within, decode_planes, pasted, pasted_at
from vidkompy.faults import ENV as FAULT_ENV
from vidkompy.faults import PAUSE_ENV
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


def lossless_run(bg: Path, fg: Path, out: Path, cache: Path, *extra: str, env: dict | None = None
                 ) -> subprocess.CompletedProcess:
    """A compose to FFV1 (lossless: its pictures can be held to a NumPy paste exactly) printing its alignment."""
    return cli(str(bg), str(fg), "-o", str(out), "--codec", "ffv1", "--json", "--no-gpu", "--cache-dir", str(cache),
               *extra, env=env)


def placed_size(fg: Path, scale: float) -> tuple[int, int]:
    """fg's size on bg's canvas at ``scale``, in the even numbers 4:2:0 needs (the rule vidkompy documents)."""
    with av.open(str(fg)) as c:
        w, h = c.streams.video[0].width, c.streams.video[0].height
    if abs(scale - 1.0) > 1e-3:
        w, h = round(w / scale), round(h / scale)
    return max(2, w - w % 2), max(2, h - h % 2)


def test_fg_that_is_not_part_of_bg_is_refused_with_its_confidence_and_force_composes(pair, tmp_path):
    """With --force the output is what the reported alignment says, whatever it is worth: fg resized to its
    scale and pasted at its placement, to the nearest pixel with a half rounding up, over the bg frames of its
    map, within a level of the NumPy paste (`tests.reference`). Planted faults it catches: the output pasted a
    pixel off what --json reports; a track that moves half a pixel a frame pasted with round-half-to-even, a
    pixel off the reported place at every other frame."""
    other = make_pair(tmp_path, name="other", seconds=2.0, seed=41)
    out = tmp_path / "o.mkv"
    r = cli(str(pair.bg), str(other.fg), "-o", str(out), "--no-gpu", "--cache-dir", str(tmp_path / "c"))
    assert r.returncode == 4
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("vidkompy: error:")]
    assert len(errors) == 1 and "confidence" in errors[0] and "--force" in errors[0]
    assert "Traceback" not in r.stderr
    assert not out.exists()
    r = lossless_run(pair.bg, other.fg, out, tmp_path / "c", "--force")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["confidence"] < 0.8
    # each frame at its reported placement (where the placement moves), a frame without one held at the one before
    # it (the first one's, at the start), as the overlay holds it
    rows = [p for p in doc["placement"] if p] or [[doc["x"], doc["y"], doc["scale"]]]
    places, last = [], rows[0]
    for p in doc["placement"]:
        last = p or last
        places.append((math.floor(last[0] + 0.5), math.floor(last[1] + 0.5), *placed_size(other.fg, last[2])))
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
    r = lossless_run(p.bg, p.fg, out, tmp_path / "c")
    assert r.returncode == 0, r.stderr
    assert_true_alignment(json.loads(r.stdout), p)
    assert_planes_within(decode_planes(out), pasted(p.bg, p.fg, p.frames, 51, 33), 0)


def test_same_rotation_on_both_is_kept_in_the_output(pair, tmp_path):
    bg, fg = _rotated(pair.bg, tmp_path / "rb.mp4"), _rotated(pair.fg, tmp_path / "rf.mp4")
    out = tmp_path / "o.mp4"
    r = cli(str(bg), str(fg), "-o", str(out), "--no-gpu", "--cache-dir", str(tmp_path / "c"))
    assert r.returncode == 0, r.stderr
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


def test_an_existing_output_is_replaced_whole(pair, tmp_path):
    out = tmp_path / "o.mp4"
    out.write_bytes(b"old")
    r = cli(str(pair.bg), str(pair.fg), "-o", str(out), "--no-gpu", "--cache-dir", str(tmp_path / "c"))
    assert r.returncode == 0, r.stderr
    assert len(decode_all(out, "gray")) == len(pair.frames)


def test_an_unwritable_cache_runs_without_it_and_says_so_once(pair, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache folder would be")
    out = tmp_path / "o.mp4"
    r = cli(str(pair.bg), str(pair.fg), "-o", str(out), "--no-gpu", "--cache-dir", str(blocker / "cache"))
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("not writable: running without the cache") == 1
    assert len(decode_all(out, "gray")) == len(pair.frames)


def _sigint_default() -> None:
    """SIGINT as a terminal gives it: a suite started in the background (``make test &``) passes its
    children SIGINT ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_removes_temporary_files_and_exits_130(pair, tmp_path):
    """SIGINT, sent by the test while the composite is half written: the fault hook holds the run at that point
    (its temporary file open) until the signal comes, so no race with the encoder decides what is tested.
    Planted fault it catches: the writer's temporary file kept when it is interrupted."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    paused = tmp_path / "paused"
    proc = subprocess.Popen([VIDKOMPY, str(pair.bg), str(pair.fg), "-o", str(out_dir / "o.mp4"), "--no-gpu",
                             "--cache-dir", str(tmp_path / "c")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, FAULT_ENV: "composite", PAUSE_ENV: str(paused)},
                            preexec_fn=_sigint_default)
    deadline = time.monotonic() + 240
    while not paused.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert paused.exists(), proc.communicate(timeout=60)
    assert int(paused.read_text()) == proc.pid
    assert len(list(out_dir.glob(".*.part*"))) == 1  # half written: what the signal must clean up
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert list(out_dir.iterdir()) == []


# -- crashes and concurrency ---------------------------------------------------------------------

STAGES = ["decode", "locate", "embed", "index", "dtw", "spatial"]


@pytest.fixture(scope="module")
def truth(pair) -> list[list[np.ndarray]]:
    """The true overlay: fg pasted with NumPy at the true offset over the true bg frames."""
    return pasted(pair.bg, pair.fg, pair.frames, int(pair.x), int(pair.y))


@pytest.fixture(scope="module")
def uninterrupted(pair, truth, tmp_path_factory) -> dict:
    """A run from start to end: its --json document, which is the sample's truth."""
    folder = tmp_path_factory.mktemp("ref")
    r = lossless_run(pair.bg, pair.fg, folder / "o.mkv", folder / "c")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert_true_alignment(doc, pair)
    assert_planes_within(decode_planes(folder / "o.mkv"), truth, 0)
    return doc


@pytest.mark.parametrize("point", [f"store:{s}" for s in STAGES] + ["composite"])
def test_a_run_killed_inside_a_stage_leaves_nothing_trusted(pair, truth, uninterrupted, tmp_path, point):
    """The run after the kill gives the uninterrupted run's document, and both are the truth: the sample's map
    and offset, and the true overlay to the bit. Planted fault it catches: fg pasted a pixel off in every run
    alike, which comparing the runs with each other (as this test did) passes."""
    cache, out = tmp_path / "c", tmp_path / "o.mkv"
    killed = lossless_run(pair.bg, pair.fg, out, cache, env={FAULT_ENV: point})
    assert killed.returncode == -signal.SIGKILL
    assert not out.exists()
    again = lossless_run(pair.bg, pair.fg, out, cache)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == uninterrupted
    assert_planes_within(decode_planes(out), truth, 0)


def test_two_runs_on_one_pair_at_once_compute_each_stage_once(pair, truth, uninterrupted, tmp_path):
    cache = tmp_path / "c"
    procs = [subprocess.Popen([VIDKOMPY, str(pair.bg), str(pair.fg), "-o", str(tmp_path / f"o{k}.mkv"), "--codec",
                               "ffv1", "--no-gpu", "--cache-dir", str(cache)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=os.environ.copy()) for k in range(2)]
    results = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    assert all(rc == 0 for _, _, rc in results), results
    computed = []
    for stdout, _, _ in results:
        line = next(ln for ln in stdout.splitlines() if ln.startswith("computed:"))
        computed += [part.split()[0] for part in line.removeprefix("computed:").split(",")]
    alignment_stages = [c for c in computed if c != "composite"]
    assert sorted(alignment_stages) == sorted(set(alignment_stages)), computed
    assert len(set(alignment_stages)) == 8
    cached = vidkompy.align(pair.bg, pair.fg, gpu=False, cache_dir=cache)
    assert cached.computed == ()  # every stage is in the cache, whole
    assert cached.alignment.as_json() == {k: v for k, v in uninterrupted.items() if k not in ("version", "settings")}
    for k in range(2):
        assert_planes_within(decode_planes(tmp_path / f"o{k}.mkv"), truth, 0)


def test_two_batches_on_one_folder_share_it(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    pairs = [make_pair(src, name=f"b{k}", seconds=2.0, seed=50 + k) for k in range(3)]
    procs = [subprocess.Popen([VIDKOMPY, "batch", str(src), "-o", str(out), "--no-gpu", "--cache-dir",
                               str(tmp_path / "c")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=os.environ.copy()) for _ in range(2)]
    results = [p.communicate(timeout=600) + (p.returncode,) for p in procs]
    assert all(rc == 0 for _, _, rc in results), results
    assert sorted(p.name for p in out.iterdir()) == ["b0.mp4", "b1.mp4", "b2.mp4"]
    for k, p in enumerate(pairs):
        assert len(decode_all(out / f"b{k}.mp4", "gray")) == len(p.frames)
    composed = sum(stdout.count("composed") for stdout, _, _ in results)
    assert composed == 3, [r[0] for r in results]
