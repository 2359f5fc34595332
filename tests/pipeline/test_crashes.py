"""Crashes, Ctrl-C and concurrent runs: nothing lost, nothing half-written, no poisoned cache.

Split from `tests/pipeline/test_reliability.py` (bad and unusual inputs) so that the two halves run on two
workers at once; the pair is the same sample.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

import vidkompy
from tests.helpers import VIDKOMPY
from tests.pipeline.test_reliability import assert_true_alignment, cli
from tests.reference import assert_planes_within, decode_planes, pasted, worst_luma_psnr
from vidkompy.faults import ENV as FAULT_ENV
from vidkompy.faults import PAUSE_ENV
from vidkompy.samples import SamplePair, make_pair

# Store commits in the DAG's order, then the composite's writer: each later point lies past the stages before
# it, so a run killed at one point first computes again what the kill before it left half-stored. Every stage
# commits through the one `Store.writer`; these are its two kinds (a stage stored in chunks as it goes: decode,
# embed; one stored whole: dtw, spatial, the last) and the output's writer. locate and index commit whole, as dtw.
KILL_POINTS = [f"store:{s}" for s in ("decode", "embed", "dtw", "spatial")] + ["composite"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> SamplePair:
    return make_pair(tmp_path_factory.mktemp("crash"), name="r", seconds=2.0, seed=40)


@pytest.fixture(scope="module")
def truth(pair) -> list[list[np.ndarray]]:
    """The true overlay: fg pasted with NumPy at the true offset over the true bg frames."""
    return pasted(pair.bg, pair.fg, pair.frames, int(pair.x), int(pair.y))


@pytest.fixture(scope="module")
def uninterrupted(pair, truth, tmp_path_factory) -> tuple[dict, Path]:
    """A run from start to end, by the library in this process: its alignment, which is the sample's truth (the
    lossless overlay too), and its cache."""
    folder = tmp_path_factory.mktemp("ref")
    result = vidkompy.compose(pair.bg, pair.fg, folder / "o.mkv", codec="ffv1", gpu=False, cache_dir=folder / "c")
    doc = result.alignment.as_json()
    assert_true_alignment(doc, pair)
    assert_planes_within(decode_planes(folder / "o.mkv"), truth, 0)
    return doc, folder / "c"


def test_a_run_killed_inside_a_stage_leaves_nothing_trusted(pair, truth, uninterrupted, tmp_path):
    """One cache, a CLI run killed at each point in turn (`KILL_POINTS`); the run after the last kill gives the
    uninterrupted run's alignment, and both are the truth: the sample's map and offset, and the true overlay to
    the bit. Each killed run died where it was told (SIGKILL, no output), so each ran through what the kill
    before it left half-stored. Planted faults it catches: a half-stored stage trusted by a later run; fg pasted
    a pixel off in every run alike, which comparing the runs with each other (as this test once did) passes."""
    cache, out = tmp_path / "c", tmp_path / "o.mkv"
    for point in KILL_POINTS:
        killed = cli(str(pair.bg), str(pair.fg), "-o", str(out), "--codec", "ffv1", "--no-gpu", "--cache-dir",
                     str(cache), env={FAULT_ENV: point})
        assert killed.returncode == -signal.SIGKILL, (point, killed.stderr)
        assert not out.exists(), point
    again = vidkompy.compose(pair.bg, pair.fg, out, codec="ffv1", gpu=False, cache_dir=cache)
    assert again.alignment.as_json() == uninterrupted[0]
    assert_planes_within(decode_planes(out), truth, 0)


def _sigint_default() -> None:
    """SIGINT as a terminal gives it: a suite started in the background (``make test &``) passes its
    children SIGINT ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_removes_temporary_files_and_exits_130(pair, uninterrupted, tmp_path):
    """SIGINT, sent by the test while the composite is half written: the fault hook holds the run at that point
    (its temporary file open) until the signal comes, so no race with the encoder decides what is tested. The
    alignment comes from a copy of the uninterrupted run's cache: only the composite is the point. Planted
    fault it catches: the writer's temporary file kept when it is interrupted."""
    cache = shutil.copytree(uninterrupted[1], tmp_path / "c")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    paused = tmp_path / "paused"
    proc = subprocess.Popen([VIDKOMPY, str(pair.bg), str(pair.fg), "-o", str(out_dir / "o.mp4"), "--no-gpu",
                             "--cache-dir", str(cache)],
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
    assert cached.alignment.as_json() == uninterrupted[0]
    for k in range(2):
        assert_planes_within(decode_planes(tmp_path / f"o{k}.mkv"), truth, 0)


@pytest.mark.long  # two batch processes sharing a folder: several workers (make test-long)
def test_two_batches_on_one_folder_share_it(tmp_path):
    """Two pairs, two batch processes at once: each pair composed once, by one of them, and composed right."""
    src, out = tmp_path / "in", tmp_path / "out"
    pairs = [make_pair(src, name=f"b{k}", seconds=2.0, seed=50 + k) for k in range(2)]
    procs = [subprocess.Popen([VIDKOMPY, "batch", str(src), "-o", str(out), "--no-gpu", "--cache-dir",
                               str(tmp_path / "c")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=os.environ.copy()) for _ in range(2)]
    results = [p.communicate(timeout=600) + (p.returncode,) for p in procs]
    assert all(rc == 0 for _, _, rc in results), results
    assert sorted(p.name for p in out.iterdir()) == ["b0.mp4", "b1.mp4"]
    for k, p in enumerate(pairs):  # each the true overlay, within h264's loss (43 dB; fg a pixel off: 34.5)
        overlay = pasted(p.bg, p.fg, p.frames, int(p.x), int(p.y))
        assert worst_luma_psnr(decode_planes(out / f"b{k}.mp4"), overlay, (int(p.x), int(p.y), 160, 120)) >= 40.0
    composed = sum(stdout.count("composed") for stdout, _, _ in results)
    assert composed == 2, [r[0] for r in results]
