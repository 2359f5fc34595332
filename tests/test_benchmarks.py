"""`make bench` is not run here (it takes many minutes), but what it scores with is: its metrics on maps and
videos whose scores are known by hand, and its true composite against this suite's own NumPy paste."""

from __future__ import annotations

import importlib
import pkgutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

import benchmarks
from benchmarks.footage import Truth
from benchmarks.metrics import (
    active_error,
    offset_error,
    ranges,
    scale_error,
    score_frames,
    score_unmatched,
    score_video,
)
from tests.reference import pasted
from vidkompy.samples import SamplePair, make_pair


def test_every_benchmark_module_imports():
    names = [m.name for m in pkgutil.iter_modules(benchmarks.__path__)]
    assert {"floor", "metrics", "runner"} <= set(names)
    for name in names:
        importlib.import_module(f"benchmarks.{name}")


# -- the frame map -------------------------------------------------------------------------------

# bg frames 3 and 4 show one picture (a static shot); fg frame 5 is an inserted shot (no counterpart)
LABELS = np.array([0, 1, 2, 3, 3, 4, 5, 6, 7, 8])
TRUE = np.array([0, 1, 2, 3, 5, -1, 8])


@pytest.fixture
def known(tmp_path) -> Truth:
    return Truth(tmp_path / "bg", tmp_path / "fg", 10.0, 20.0, 1.5, TRUE, LABELS, 25.0, 25.0, (0, 0), (0, 0), False,
                 active=(0, 4, 64, 40))


def test_frame_scores_on_a_map_whose_errors_are_known(known):
    """fg 3 on bg 4 is right (bg 3's twin); fg 4 on bg 6 is one frame late; fg 5 is not scored.
    Planted faults it catches: a twin counted as a miss, the inserted shot scored, an error off by one."""
    s = score_frames(np.array([0, 1, 2, 4, 6, 6, 8]), known)
    assert (s.n_expected, s.n_found, s.n_matched) == (7, 7, 6)
    assert s.exact == pytest.approx(5 / 6) and s.within_one == 1.0 and s.worst == 1
    assert s.monotonic and s.wrong == [[4, 6, 5]]
    late = score_frames(np.array([0, 1, 2, 3, 8, 8, 9]), known)  # fg 4 three frames late, fg 6 one
    assert late.worst == 3 and late.exact == pytest.approx(4 / 6) and late.within_one == pytest.approx(5 / 6)
    backwards = score_frames(np.array([0, 1, 2, 3, 5, 4, 8]), known)
    assert backwards.exact == 1.0 and not backwards.monotonic
    short = score_frames(np.array([0, 1, 2]), known)
    assert short.n_found == 3 and short.worst is None


@pytest.mark.parametrize(("reported", "recall", "precision"), [
    ([[5, 5]], 1.0, 1.0), ([[4, 6]], 1.0, 1 / 3), ([], 0.0, None), ([[0, 1]], 0.0, 0.0)])
def test_unmatched_scores_are_recall_and_precision_over_frames(known, reported, recall, precision):
    s = score_unmatched(reported, known)
    assert (s.n_true, s.true_ranges) == (1, [[5, 5]])
    assert s.recall == pytest.approx(recall)
    assert s.precision == (None if precision is None else pytest.approx(precision))


def test_geometry_errors_are_distances_to_the_truth(known):
    assert ranges(np.array([1, 1, 0, 0, 1, 0, 1, 1, 1], bool)) == [[0, 1], [4, 4], [6, 8]]
    assert offset_error(10.25, 19.5, known) == pytest.approx(0.5)
    assert scale_error(1.53, known) == pytest.approx(0.02)
    assert active_error([0, 4, 64, 40], known) == (True, 0)
    assert active_error([0, 5, 64, 40], known) == (False, 1)  # a pixel off is wrong: bars must be found exactly
    assert active_error(None, known) == (False, None)


# -- the true composite and the video score ---------------------------------------------------------


@pytest.fixture(scope="module")
def odd(tmp_path_factory) -> SamplePair:
    """An odd offset: chroma placement is where two pastes would part first."""
    return make_pair(tmp_path_factory.mktemp("bench"), name="b", region=(51, 33, 160, 120), seconds=1.2,
                     trim=(0.2, 0.2), seed=8, audio=False)


def truth_of(pair: SamplePair) -> Truth:
    """Every bg frame its own picture (the samples pan: no two alike)."""
    sizes, counts = [], []
    for path in (pair.bg, pair.fg):
        with av.open(str(path)) as c:
            vs = c.streams.video[0]
            sizes.append((vs.width, vs.height))
            counts.append(vs.frames)
    return Truth(pair.bg, pair.fg, pair.x, pair.y, pair.scale, pair.frames, np.arange(counts[0]), pair.bg_fps,
                 pair.fg_fps, sizes[0], sizes[1], False)


def lossless(frames: list[list[np.ndarray]], path: Path) -> Path:
    h, w = frames[0][0].shape
    with av.open(str(path), "w") as out:
        vs = out.add_stream("ffv1", rate=Fraction(30))
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        for k, (y, u, v) in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.concatenate([y, u.reshape(-1, w), v.reshape(-1, w)]), "yuv420p")
            frame.pts = k
            for p in vs.encode(frame):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    return path


def test_the_benchmarks_true_composite_is_the_numpy_paste(odd, tmp_path):
    """score_video against the NumPy paste itself: identical (99 dB, its cap). Planted faults it catches: the
    benchmark's composite pasting a pixel off or its chroma half a sample the other way."""
    truth = truth_of(odd)
    paste = pasted(odd.bg, odd.fg, odd.frames, 51, 33)
    s = score_video(lossless(paste, tmp_path / "paste.mkv"), truth)
    assert (s.n_frames, s.n_expected, s.same_size) == (len(odd.frames), len(odd.frames), True)
    assert s.psnr == 99.0 and s.worst_frame_psnr == 99.0


def test_a_frame_one_late_is_the_worst_frames_score(odd, tmp_path):
    """One output frame over the next bg frame: the mean barely moves, the worst frame falls far."""
    late = odd.frames.copy()
    late[5] += 1
    s = score_video(lossless(pasted(odd.bg, odd.fg, late, 51, 33), tmp_path / "late.mkv"), truth_of(odd))
    assert s.worst_frame_psnr < 35.0 and 40.0 < s.psnr < 99.0  # measured: 29.8 and 43.6 dB


def test_the_readme_summary_reads_only_full_runs(tmp_path):
    """`latest_results` picks the newest full run among files of other shapes (mutation, bit depth, moving
    placement: no ``run`` block). Planted fault it catches: a KeyError on the first such file."""
    import json

    from benchmarks.summary import latest_results

    (tmp_path / "m.json").write_text(json.dumps({"run": {"date": "2026-12-01T00:00:00"}}))
    (tmp_path / "n.json").write_text(json.dumps({"run": {"date": "2026-12-02T00:00:00"}}))
    for suffix in ("mutation", "bitdepth", "moving", "segments"):
        (tmp_path / f"m.{suffix}.json").write_text(json.dumps({"modules": {}}))
    assert latest_results(tmp_path).name == "n.json"
