"""One case from footage to scores: the floor, vidkompy, its cached re-run, and the output's PSNR.

Every timed run is a fresh process (imports, Prefect's start and peak memory
are part of what a user pays), with a fresh cache folder for the first run and
the same folder for the re-run with ``--border 3 --blend``, which should only
recompose.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks import REPO
from benchmarks.cases import Case
from benchmarks.footage import Truth
from benchmarks.metrics import offset_error, scale_error, score_frames, score_video
from benchmarks.process import Measured, run_measured
from benchmarks.report import STAGES, ratio


def _last_json(m: Measured) -> dict:
    """The worker's one JSON line (anything else on stdout is ignored)."""
    for line in reversed(m.stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError(f"no result (exit {m.rc}): {m.tail()}")


def empty_result(case: Case) -> dict:
    """A case's record with every key present: failures leave nulls, never a different shape."""
    return {
        "name": case.name, "source": case.source, "covers": case.covers, "long": case.long, "error": None,
        "load_1m": None,  # the machine's load average when the case started: other work skews the times
        "footage": {k: None for k in ("bg_size", "bg_fps", "fg_size", "fg_fps", "n_bg", "n_fg", "x", "y", "scale",
                                      "audio")},
        "accuracy": {k: None for k in ("exact", "within_one", "worst", "monotonic", "n_found", "offset_px",
                                       "scale_err", "x", "y", "scale", "confidence", "wrong")},
        "floor": {"seconds": None, "process_s": None, "max_rss_mb": None},
        "vidkompy": {"seconds": None, "ratio": None, "import_s": None, "call_s": None, "stages_s": None,
                     "critical_path_s": None, "overhead_s": None, "overhead_ratio": None, "overhead_path_s": None,
                     "max_rss_mb": None, "computed": None,
                     "embedding": None, "stages": {s: {"seconds": None, "ratio": None} for s in STAGES}},
        "cached": {"seconds": None, "ratio": None, "composite_s": None, "composite_ratio": None, "computed": None,
                   "only_composite": None, "max_rss_mb": None},
        "output": {"psnr": None, "worst_frame_psnr": None, "n_frames": None},
        "peer": None,
    }


def describe_footage(truth: Truth) -> dict:
    return {"bg_size": list(truth.bg_size), "bg_fps": truth.bg_fps, "fg_size": list(truth.fg_size),
            "fg_fps": truth.fg_fps, "n_bg": int(len(truth.labels)), "n_fg": int(len(truth.frames)), "x": truth.x,
            "y": truth.y, "scale": truth.scale, "audio": truth.has_audio}


def critical_path(t: dict[str, float]) -> float:
    """Seconds the computed stages take along the flow's longest chain (cached ones count 0).

    The two decodes run at once (and fg's embed beside bg's decode and locate),
    so their sum overstates the wall time they occupy; this is what they cannot overlap.
    """
    g = t.get
    front = max(max(g("decode-bg", 0.0), g("decode-fg", 0.0)) + g("locate", 0.0) + g("embed-bg", 0.0),
                g("decode-fg", 0.0) + g("embed-fg", 0.0))
    return front + sum(g(s, 0.0) for s in ("index", "dtw", "spatial", "composite"))


def run_floor(truth: Truth, work: Path, env: dict[str, str], timeout: float) -> dict:
    out = work / "floor.mp4"
    m = run_measured([sys.executable, "-m", "benchmarks.floor", str(truth.bg.parent), str(out)], env=env, cwd=REPO,
                     timeout=timeout)
    out.unlink(missing_ok=True)
    if m.rc != 0:
        raise RuntimeError(f"floor failed: {m.tail()}")
    return {"seconds": round(_last_json(m)["seconds"], 3), "process_s": round(m.seconds, 3),
            "max_rss_mb": round(m.max_rss / 2**20, 1)}


def _compose(truth: Truth, output: Path, cache: Path, env: dict[str, str], timeout: float, gpu: bool,
             *extra: str) -> tuple[Measured, dict]:
    cmd = [sys.executable, "-m", "benchmarks.worker", str(truth.bg), str(truth.fg), str(output),
           "--cache-dir", str(cache), *extra, *(["--gpu"] if gpu else [])]
    m = run_measured(cmd, env=env, cwd=REPO, timeout=timeout)
    if m.rc != 0:
        raise RuntimeError(f"vidkompy failed (exit {m.rc}{', timed out' if m.timed_out else ''}): {m.tail()}")
    return m, _last_json(m)


def run_case(case: Case, truth: Truth, work: Path, env: dict[str, str], *, timeout: float, gpu: bool,
             log: Callable[[str], None]) -> dict:
    """Floor, first run, cached re-run and scores for one pair; raises on a failed run (the caller records it)."""
    r = empty_result(case)
    r["footage"] = describe_footage(truth)
    r["load_1m"] = round(os.getloadavg()[0], 2)
    folder = Path(tempfile.mkdtemp(prefix=f"{case.name}-", dir=work))
    try:
        r["floor"] = floor = run_floor(truth, folder, env, timeout)
        log(f"floor {floor['seconds']:.2f} s")
        cache, output = folder / "cache", folder / "out.mp4"
        m, got = _compose(truth, output, cache, env, timeout, gpu)
        fs = floor["seconds"]
        stages_s = sum(got["timings"].values())
        path_s = critical_path(got["timings"])
        r["vidkompy"] = {
            "seconds": round(m.seconds, 3), "ratio": ratio(m.seconds, fs), "import_s": round(got["import_s"], 3),
            "call_s": round(got["call_s"], 3), "stages_s": round(stages_s, 3),
            "critical_path_s": round(path_s, 3), "overhead_s": round(m.seconds - stages_s, 3),
            "overhead_ratio": ratio(m.seconds - stages_s, fs), "overhead_path_s": round(m.seconds - path_s, 3),
            "max_rss_mb": round(m.max_rss / 2**20, 1), "computed": got["computed"],
            "embedding": got["embedding"],
            "stages": {s: {"seconds": None if s not in got["timings"] else round(got["timings"][s], 3),
                           "ratio": ratio(got["timings"].get(s), fs)} for s in STAGES},
        }
        log(f"vidkompy {m.seconds:.2f} s (stages {stages_s:.2f} s)")
        frames = np.asarray(got["frames"], np.int64)
        fsc = score_frames(frames, truth)
        r["accuracy"] = {"exact": round(fsc.exact, 5), "within_one": round(fsc.within_one, 5), "worst": fsc.worst,
                         "monotonic": fsc.monotonic, "n_found": fsc.n_found,
                         "offset_px": round(offset_error(got["x"], got["y"], truth), 4),
                         "scale_err": round(scale_error(got["scale"], truth), 6), "x": round(got["x"], 4),
                         "y": round(got["y"], 4), "scale": round(got["scale"], 6),
                         "confidence": round(got["confidence"], 4), "wrong": fsc.wrong}
        vs = score_video(output, truth)
        r["output"] = {"psnr": vs.psnr, "worst_frame_psnr": vs.worst_frame_psnr, "n_frames": vs.n_frames}
        output.unlink(missing_ok=True)
        m2, again = _compose(truth, folder / "out-blend.mp4", cache, env, timeout, gpu, "--border", "3", "--blend")
        comp = again["timings"].get("composite")
        r["cached"] = {"seconds": round(m2.seconds, 3), "ratio": ratio(m2.seconds, fs),
                       "composite_s": None if comp is None else round(comp, 3), "composite_ratio": ratio(comp, fs),
                       "computed": again["computed"], "only_composite": again["computed"] == ["composite"],
                       "max_rss_mb": round(m2.max_rss / 2**20, 1)}
        log(f"cached re-run {m2.seconds:.2f} s (computed {', '.join(again['computed']) or 'nothing'})")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return r
