"""Feature-length behaviour on small videos: resuming killed stages, damage mid-file, lopsided lengths, full disks.

The tests on the 800-frame pair and on lopsided lengths are `long` (`make test-long`, run by `make bench`); the
refusal and the full disks run in `make test`.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
import zarr

import vidkompy
from tests.helpers import VIDKOMPY, vidkompy_log, write_video
from vidkompy.samples import SamplePair, make_pair, source_frames


def cli(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([VIDKOMPY, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def align(bg: Path, fg: Path, cache: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return cli("align", str(bg), str(fg), "--json", "--no-gpu", "--cache-dir", str(cache), *extra, env=env)


@pytest.fixture(scope="module")
def longish(tmp_path_factory) -> SamplePair:
    """800 bg frames: more than three of the 256-frame chunks that stages write as they go."""
    return make_pair(tmp_path_factory.mktemp("longish"), name="l", bg_size=(160, 120), region=(40, 30, 80, 60),
                     seconds=32.0, bg_fps=25, fg_fps=25, trim=(0.4, 0.4), seed=60, speed=1.0)


@pytest.fixture(scope="module")
def uninterrupted(longish, tmp_path_factory) -> tuple[dict, Path]:
    """The alignment by the library in this process, from start to end, and its cache."""
    cache = tmp_path_factory.mktemp("clean") / "c"
    return vidkompy.align(longish.bg, longish.fg, gpu=False, cache_dir=cache).alignment.as_json(), cache


def _arrays(cache: Path, stage: str, name: str) -> dict[str, np.ndarray]:
    return {d.name: np.asarray(zarr.open_group(str(d), mode="r")[name][...]) for d in (cache / stage).iterdir()
            if d.is_dir() and "." not in d.name}


def plain_decode(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Times and gray pictures of every frame by PyAV alone (no loop filter, as thumbnails are documented to be
    made; both videos are under the working width, so thumbnails are full size)."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        vs.codec_context.options = {"skip_loop_filter": "all"}
        decoded = [(float(f.pts * f.time_base), f.to_ndarray(format="gray")) for f in c.decode(vs)]
    return np.array([t for t, _ in decoded]), np.stack([img for _, img in decoded])


def assert_true_alignment(doc: dict, pair: SamplePair) -> None:
    """The map is the sample's, frame for frame; the offset its whole pixels to within 0.1 px."""
    np.testing.assert_array_equal(doc["frames"], pair.frames)
    assert abs(doc["x"] - pair.x) <= 0.1 and abs(doc["y"] - pair.y) <= 0.1 and doc["scale"] == pair.scale


@pytest.mark.long
@pytest.mark.parametrize(("point", "stage", "array"), [("decode:block:1", "decode", "thumbs"),
                                                       ("embed:block:1", "embed", "emb")])
def test_a_killed_stage_resumes_from_its_last_chunk_and_gives_the_same_result(longish, uninterrupted, tmp_path,
                                                                              point, stage, array):
    """The CLI run is killed; the resumed run (the library, in this process) has arrays equal to the
    uninterrupted run's, its answer is the sample's truth, and its decoded frames (resumed or not) are a plain
    PyAV decode's. Planted faults it catches: a chunk lost or written twice on resuming; every decode one frame
    short or its clock half a frame off, in both runs alike (which comparing the runs alone would pass)."""
    cache = tmp_path / "c"
    killed = align(longish.bg, longish.fg, cache, env={"VIDKOMPY_FAULT_AT": point})
    assert killed.returncode == -signal.SIGKILL
    partial = [zarr.open_group(str(d), mode="r").attrs for d in (cache / stage).iterdir()
               if d.name.endswith(".partial")]
    done = [a["progress"]["lengths"][array] for a in partial if "progress" in a]
    assert done, "the killed stage left no chunks to resume from"
    assert max(done) >= 512  # two chunks were written before the kill
    with vidkompy_log() as records:
        again = vidkompy.align(longish.bg, longish.fg, gpu=False, cache_dir=cache)
    assert any(f"resuming {stage} " in r.getMessage() for r in records), [r.getMessage() for r in records]
    doc, clean_cache = uninterrupted
    assert again.alignment.as_json() == doc
    assert_true_alignment(doc, longish)
    resumed, clean = _arrays(cache, stage, array), _arrays(clean_cache, stage, array)
    assert resumed.keys() == clean.keys()
    for key in clean:
        assert np.array_equal(resumed[key], clean[key])
    assert not [d for d in (cache / stage).iterdir() if d.name.endswith(".partial")]
    times, pictures = _arrays(cache, "decode", "pts"), _arrays(cache, "decode", "thumbs")
    for video in (longish.bg, longish.fg):
        pts, frames = plain_decode(video)
        key = next(k for k, v in pictures.items() if v.shape == frames.shape)
        np.testing.assert_array_equal(times[key], pts)
        np.testing.assert_array_equal(pictures[key], frames)


def _damage_middle(src: Path, out: Path, first: float = 0.4, last: float = 0.45) -> Path:
    """Overwrite the payload of the video packets between 40% and 45% of the stream: they no longer decode."""
    with av.open(str(src)) as c:
        packets = [(p.pos, p.size) for p in c.demux(video=0) if p.size and p.pos is not None]
    data = bytearray(src.read_bytes())
    rng = np.random.default_rng(0)
    for pos, size in packets[int(len(packets) * first) : int(len(packets) * last)]:
        data[pos + 4 : pos + size] = bytes(rng.integers(0, 256, size - 4, dtype=np.uint8))
    out.write_bytes(bytes(data))
    return out


@pytest.mark.long
def test_a_video_damaged_in_the_middle_decodes_past_it_and_aligns_the_rest(longish, uninterrupted, tmp_path):
    """By the library, in this process, forced (most of fg matches, not all), with bg's stages from a copy of
    the uninterrupted run's cache: fg's decode is the point. It says so in one warning (the CLI prints each as
    one line)."""
    fg = _damage_middle(longish.fg, tmp_path / "damaged.fg.mp4")
    cache = shutil.copytree(uninterrupted[1], tmp_path / "c")
    with vidkompy_log(logging.WARNING) as records:
        result = vidkompy.align(longish.bg, fg, gpu=False, cache_dir=cache, force=True)
    warned = [r.getMessage() for r in records if "damaged" in r.getMessage() and "lost" in r.getMessage()]
    assert len(warned) == 1 and str(fg) in warned[0]
    assert "\n" not in warned[0]
    doc = result.alignment.as_json()
    frames = np.array(doc["frames"])
    assert np.all(np.diff(frames) >= 0)
    pts = []
    with av.open(str(fg)) as c:
        for packet in c.demux(video=0):
            try:
                pts += [float(f.pts * f.time_base) for f in packet.decode()]
            except av.error.InvalidDataError:
                continue
    # frames that decoded are matched by their timestamps: each against the truth of its own time
    truth = longish.frames[np.round(np.array(pts) * 25).astype(int)]  # the fg frame at that time
    n_lost = len(longish.frames) - len(frames)
    assert n_lost > 0 and len(frames) == len(truth)
    assert np.mean(np.abs(frames - truth) <= 1) >= 0.9


@pytest.mark.long
@pytest.mark.parametrize("longer", ["fg", "bg"])
def test_one_video_ten_times_longer_than_the_other_gives_a_correct_monotonic_map(tmp_path, longer):
    """bg (or fg) shows 2 s of a 20 s source, the other all of it; the rest is clamped, monotonic, unmatched."""
    n = 500
    src = list(source_frames(160, 120, n, seed=61, speed=1.0))
    short = range(240, 290)
    crop = [f[30:90, 40:120] for f in src]
    if longer == "fg":
        bg, fg = write_video(tmp_path / "bg.mp4", [src[k] for k in short]), write_video(tmp_path / "fg.mp4", crop)
        truth = np.clip(np.arange(n) - short[0], 0, len(short) - 1)
        inside = (np.arange(n) >= short[0]) & (np.arange(n) <= short[-1])
    else:
        bg, fg = write_video(tmp_path / "bg.mp4", src), write_video(tmp_path / "fg.mp4", [crop[k] for k in short])
        truth = np.arange(short[0], short[-1] + 1)
        inside = np.ones(len(short), bool)
    # the library in this process: the answer is the point here, not the command line
    doc = vidkompy.align(bg, fg, gpu=False, cache_dir=tmp_path / "c", force=True).alignment.as_json()
    frames = np.array(doc["frames"])
    assert len(frames) == len(truth) and np.all(np.diff(frames) >= 0)
    assert np.mean(frames[inside] == truth[inside]) >= 0.95
    assert abs(doc["x"] - 40) <= 0.5 and abs(doc["y"] - 30) <= 0.5
    if longer == "fg":
        outside = np.flatnonzero(~inside)
        before, after = outside[outside < short[0]], outside[outside > short[-1]]
        # no counterpart: they sit at bg's ends (where the pan's neighbours look alike, a frame or two in)
        assert frames[before].max() <= 3 and frames[after].min() >= len(short) - 4
        unmatched = {i for a, b in doc["unmatched"] for i in range(a, b + 1)}
        assert len(unmatched & set(outside.tolist())) >= 0.9 * len(outside)


def test_without_force_a_fg_mostly_without_counterpart_is_refused(tmp_path):
    n = 300
    src = list(source_frames(160, 120, n, seed=62, speed=1.0))
    bg = write_video(tmp_path / "bg.mp4", src[100:160])
    fg = write_video(tmp_path / "fg.mp4", [f[30:90, 40:120] for f in src])
    r = align(bg, fg, tmp_path / "c")
    assert r.returncode == 4, r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("vidkompy: error:")]
    assert len(errors) == 1 and "no counterpart" in errors[0] and "--force" in errors[0]


@pytest.fixture
def tiny_disk(tmp_path, request):
    """A small tmpfs (3 MB, or the size a test asks for), where the machine lets us mount one (root usually can)."""
    size = getattr(request, "param", "3m")
    mount = tmp_path / "tiny"
    mount.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {r.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_cache_disk_that_fills_up_is_exit_3_in_one_line_with_nothing_partial_kept(longish, tmp_path, tiny_disk):
    cache = tiny_disk / "cache"
    r = align(longish.bg, longish.fg, cache)
    assert r.returncode == 3, r.stderr
    lines = r.stderr.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("vidkompy: error:")]
    assert len(errors) == 1 and "disk is full" in errors[0] and "Traceback" not in r.stderr, r.stderr
    assert not list(cache.rglob("*.partial")), "a partial artifact was kept on the full disk"
    for stage_dir in (p for p in cache.iterdir() if p.is_dir() and p.name not in ("locks", "filehash")):
        for artifact in stage_dir.iterdir():
            assert zarr.open_group(str(artifact), mode="r").attrs.get("complete") is True


@pytest.mark.parametrize("tiny_disk", ["1m"], indirect=True)
def test_an_output_disk_that_fills_up_is_exit_3_with_no_partial_output(longish, uninterrupted, tmp_path, tiny_disk):
    """Lossless h264 of 780 frames is some 30 MB; the alignment comes from a copy of the uninterrupted run's
    cache, so only the composite runs."""
    cache = shutil.copytree(uninterrupted[1], tmp_path / "c")
    inputs = {p: p.read_bytes() for p in (longish.bg, longish.fg)}
    out = tiny_disk / "o.mp4"
    r = cli(str(longish.bg), str(longish.fg), "-o", str(out), "--no-gpu", "--cache-dir", str(cache), "--crf", "0")
    assert r.returncode == 3, r.stderr
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("vidkompy: error:")]
    assert len(errors) == 1 and "disk is full" in errors[0] and "Traceback" not in r.stderr, r.stderr
    assert list(tiny_disk.iterdir()) == []
    assert {p: p.read_bytes() for p in inputs} == inputs  # inputs untouched
