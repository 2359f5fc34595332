"""One case from footage to scores: the floor, vidkompy, its cached re-run, and the output's PSNR.

Length cases skip the re-run (the cached target is judged on long-30s and
long-60s) and keep its keys, null; an align-only case writes no video and has
no PSNR. Every stage's seconds are also given per fg frame, the rate the length
cases compare.

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
from benchmarks.conform_bench import timeline_metrics
from benchmarks.footage import Truth, build_info
from benchmarks.metrics import (
    active_error,
    nearest_pictures,
    offset_error,
    scale_error,
    score_frames,
    score_unmatched,
    score_video,
    wrong_but_closer,
)
from benchmarks.process import Measured, run_measured, total_memory
from benchmarks.report import STAGES, ratio


def _last_json(m: Measured) -> dict:
    """The worker's one JSON line (anything else on stdout is ignored)."""
    for line in reversed(m.stdout.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError(f"no result (exit {m.rc}): {m.tail()}")


# A run whose process group holds more than this share of the machine's memory is killed: a long case
# that grows with length must end as a failed row, not take the machine (and its other users) down.
RSS_LIMIT_SHARE = 0.4


def _stage_block() -> dict:
    return {"seconds": None, "ratio": None, "per_frame_s": None}


def empty_result(case: Case) -> dict:
    """A case's record with every key present: failures leave nulls, never a different shape."""
    return {
        "name": case.name, "source": case.source, "covers": case.covers, "long": case.long, "length": case.length,
        "error": None,
        "load_1m": None,  # the machine's load average when the case started: other work skews the times
        "footage": {k: None for k in ("bg_size", "bg_fps", "fg_size", "fg_fps", "n_bg", "n_fg", "x", "y", "scale",
                                      "audio", "minutes", "generation_s", "generation_fps", "active",
                                      "n_unmatched")},
        # exact and within_one are on the fg frames with a counterpart in bg (n_matched); unmatched_* score the
        # others; wrong_but_closer: share of wrong frames whose chosen bg frame is nearer fg's pixels
        "accuracy": {k: None for k in ("exact", "within_one", "worst", "monotonic", "n_found", "offset_px",
                                       "scale_err", "x", "y", "scale", "confidence", "wrong", "n_matched",
                                       "unmatched_recall", "unmatched_precision", "n_unmatched_true",
                                       "n_unmatched_found", "unmatched_true", "unmatched_found", "active",
                                       "active_true", "active_ok", "active_err_px", "wrong_but_closer",
                                       "wrong_closer", "visual_nearest")},
        "floor": {"seconds": None, "process_s": None, "max_rss_mb": None, "per_frame_s": None},
        "vidkompy": {"seconds": None, "ratio": None, "import_s": None, "call_s": None, "stages_s": None,
                     "critical_path_s": None, "overhead_s": None, "overhead_ratio": None, "overhead_path_s": None,
                     "max_rss_mb": None, "computed": None, "embedding": None,
                     "align_only": not case.compose, "per_frame_s": None, "alignment_s": None,
                     "alignment_ratio": None, "alignment_per_frame_s": None, "group_rss_mb": None,
                     "stages": {s: _stage_block() for s in STAGES}},
        "cached": {"seconds": None, "ratio": None, "composite_s": None, "composite_ratio": None, "computed": None,
                   "only_composite": None, "max_rss_mb": None, "skipped": None},
        "output": {"psnr": None, "worst_frame_psnr": None, "n_frames": None, "skipped": None},
        # the conform timeline built from the map (benchmarks/conform_bench.py)
        "timeline": {k: None for k in ("clips", "clips_per_minute", "reproduced", "build_s",
                                       "build_share_of_alignment")},
        "peer": None,
    }


def describe_footage(truth: Truth) -> dict:
    return {"bg_size": list(truth.bg_size), "bg_fps": truth.bg_fps, "fg_size": list(truth.fg_size),
            "fg_fps": truth.fg_fps, "n_bg": int(len(truth.labels)), "n_fg": int(len(truth.frames)), "x": truth.x,
            "y": truth.y, "scale": truth.scale, "audio": truth.has_audio,
            "minutes": round(len(truth.labels) / truth.bg_fps / 60, 3), **build_info(truth),
            "active": None if truth.active is None else list(truth.active),
            "n_unmatched": int((~truth.matched).sum())}


# The stages of the flow's front, which overlap (see critical_path); every other stage runs after them, in turn.
FRONT = ("decode-bg", "decode-fg", "locate", "embed-bg", "embed-fg")


def critical_path(t: dict[str, float]) -> float:
    """Seconds the computed stages take along the flow's longest chain (cached ones count 0).

    The two decodes run at once (and fg's embed beside bg's decode and locate),
    so their sum overstates the wall time they occupy; this is what they cannot
    overlap. A stage this does not know is counted as running after the front.
    """
    g = t.get
    front = max(max(g("decode-bg", 0.0), g("decode-fg", 0.0)) + g("locate", 0.0) + g("embed-bg", 0.0),
                g("decode-fg", 0.0) + g("embed-fg", 0.0))
    return front + sum(v for k, v in t.items() if k not in FRONT)


def alignment_path(t: dict[str, float]) -> float:
    """The alignment's share of the critical path: every computed stage before the composite."""
    return critical_path({k: v for k, v in t.items() if k != "composite"})


def per_frame(seconds: float | None, n_fg: int) -> float | None:
    """Seconds per fg frame (a rate that should not grow with length)."""
    return None if seconds is None or not n_fg else round(seconds / n_fg, 7)


def _floor_timeout(n_fg: int, minimum: float) -> float:
    """The floor's limit: 0.2 s a fg frame, about ten times what it takes at 1080p here."""
    return max(minimum, 0.2 * n_fg)


def run_floor(truth: Truth, work: Path, env: dict[str, str], timeout: float) -> dict:
    out = work / "floor.mp4"
    m = run_measured([sys.executable, "-m", "benchmarks.floor", str(truth.bg.parent), str(out)], env=env, cwd=REPO,
                     timeout=timeout, rss_limit=int(RSS_LIMIT_SHARE * total_memory()))
    out.unlink(missing_ok=True)
    if m.rc != 0:
        raise RuntimeError(f"floor failed: {m.tail()}")
    seconds = _last_json(m)["seconds"]
    return {"seconds": round(seconds, 3), "process_s": round(m.seconds, 3), "max_rss_mb": round(m.max_rss / 2**20, 1),
            "per_frame_s": per_frame(seconds, len(truth.frames))}


def _compose(truth: Truth, output: Path, cache: Path, env: dict[str, str], timeout: float, gpu: bool,
             *extra: str) -> tuple[Measured, dict | None, str | None]:
    """One measured worker run: the process, its JSON, and why it failed (None when it did not)."""
    cmd = [sys.executable, "-m", "benchmarks.worker", str(truth.bg), str(truth.fg), str(output),
           "--cache-dir", str(cache), *extra, *(["--gpu"] if gpu else [])]
    limit = int(RSS_LIMIT_SHARE * total_memory())
    m = run_measured(cmd, env=env, cwd=REPO, timeout=timeout, rss_limit=limit)
    if m.over_memory:
        return m, None, f"vidkompy killed: its processes held more than {limit / 2**30:.1f} GB"
    if m.rc != 0:
        return m, None, f"vidkompy failed (exit {m.rc}{', timed out' if m.timed_out else ''}): {m.tail()}"
    return m, _last_json(m), None


def run_case(case: Case, truth: Truth, work: Path, env: dict[str, str], *, timeout: float, gpu: bool,
             log: Callable[[str], None]) -> dict:
    """Floor, first run, cached re-run and scores for one pair.

    A failure is recorded in ``error`` with what was measured before it (a
    length case killed for its memory still shows its floor and peak RSS).
    ``timeout`` is the least any run gets; long pairs get more, by their length.
    """
    r = empty_result(case)
    r["footage"] = describe_footage(truth)
    r["load_1m"] = round(os.getloadavg()[0], 2)
    n_fg = len(truth.frames)
    folder = Path(tempfile.mkdtemp(prefix=f"{case.name}-", dir=work))
    try:
        r["floor"] = floor = run_floor(truth, folder, env, _floor_timeout(n_fg, timeout))
        fs = floor["seconds"]
        log(f"floor {fs:.2f} s")
        cache, output = folder / "cache", folder / "out.mp4"
        # vidkompy may take a few times the floor; ten times plus ten minutes before it counts as hung
        limit = max(timeout, 10 * fs + 600)
        m, got, failed = _compose(truth, output, cache, env, limit, gpu, *([] if case.compose else ["--align-only"]))
        v = r["vidkompy"]
        v.update(seconds=round(m.seconds, 3), ratio=ratio(m.seconds, fs), max_rss_mb=round(m.max_rss / 2**20, 1),
                 group_rss_mb=round(m.group_rss / 2**20, 1), per_frame_s=per_frame(m.seconds, n_fg))
        if failed or got is None:
            raise RuntimeError(failed)
        t = got["timings"]
        stages_s, path_s, align_s = sum(t.values()), critical_path(t), alignment_path(t)
        v.update({
            "import_s": round(got["import_s"], 3), "call_s": round(got["call_s"], 3), "stages_s": round(stages_s, 3),
            "critical_path_s": round(path_s, 3), "overhead_s": round(m.seconds - stages_s, 3),
            "overhead_ratio": ratio(m.seconds - stages_s, fs), "overhead_path_s": round(m.seconds - path_s, 3),
            "computed": got["computed"], "embedding": got["embedding"], "alignment_s": round(align_s, 3),
            "alignment_ratio": ratio(align_s, fs), "alignment_per_frame_s": per_frame(align_s, n_fg),
            "stages": {s: {"seconds": None if s not in t else round(t[s], 3), "ratio": ratio(t.get(s), fs),
                           "per_frame_s": per_frame(t.get(s), n_fg)} for s in (*STAGES, *(k for k in t
                                                                                        if k not in STAGES))},
        })
        log(f"vidkompy {m.seconds:.2f} s (stages {stages_s:.2f} s, alignment {align_s:.2f} s), "
            f"peak RSS {m.max_rss / 2**20:.0f} MB")
        frames = np.asarray(got["frames"], np.int64)
        fsc = score_frames(frames, truth)
        r["accuracy"] = {"exact": round(fsc.exact, 5), "within_one": round(fsc.within_one, 5), "worst": fsc.worst,
                         "monotonic": fsc.monotonic, "n_found": fsc.n_found,
                         "offset_px": round(offset_error(got["x"], got["y"], truth), 4),
                         "scale_err": round(scale_error(got["scale"], truth), 6), "x": round(got["x"], 4),
                         "y": round(got["y"], 4), "scale": round(got["scale"], 6),
                         "confidence": round(got["confidence"], 4), "wrong": fsc.wrong}
        un = score_unmatched(got.get("unmatched"), truth)
        active_ok, active_err = active_error(got.get("active"), truth)
        r["accuracy"].update({
            "n_matched": fsc.n_matched, "n_unmatched_true": un.n_true, "n_unmatched_found": un.n_reported,
            "unmatched_recall": None if un.recall is None else round(un.recall, 5),
            "unmatched_precision": None if un.precision is None else round(un.precision, 5),
            "unmatched_true": un.true_ranges, "unmatched_found": un.reported_ranges, "active": got.get("active"),
            "active_true": None if truth.active is None else list(truth.active), "active_ok": active_ok,
            "active_err_px": active_err})
        closer = wrong_but_closer(frames, truth)
        r["accuracy"].update(wrong_but_closer=closer.closer, wrong_closer=closer.as_dict())
        if closer.n_wrong:
            log(f"{closer.n_wrong} wrong frame(s): {100 * closer.closer:.0f}% closer to fg than the true one "
                f"({closer.psnr_chosen} against {closer.psnr_true} dB)")
            if not case.long:  # every frame against its neighbours: bg's regions in memory, short cases only
                near = nearest_pictures(frames, truth)
                r["accuracy"]["visual_nearest"] = near.as_dict()
                log(f"the true picture is the nearest to fg's pixels in {100 * (near.truth_nearest or 0):.1f}% "
                    f"of matched frames, vidkompy's in {100 * (near.found_nearest or 0):.1f}%")
        r["timeline"] = timeline_metrics(got, truth.bg, truth.fg, align_s)
        tl = r["timeline"]
        log(f"timeline: {tl['clips']} clip(s), {tl['clips_per_minute']:.2f} a minute, "
            f"{100 * tl['reproduced']:.2f}% of matched frames reproduced, built in {1000 * tl['build_s']:.1f} ms")
        if case.compose:
            vs = score_video(output, truth, frames)
            r["output"].update(psnr=vs.psnr, worst_frame_psnr=vs.worst_frame_psnr, n_frames=vs.n_frames)
            log(f"output PSNR {vs.psnr} dB")
        else:
            r["output"]["skipped"] = "align only: no video written"
        output.unlink(missing_ok=True)
        if not case.rerun:
            r["cached"]["skipped"] = "not run for this case"
            return r
        m2, again, failed = _compose(truth, folder / "out-blend.mp4", cache, env, limit, gpu, "--border", "3",
                                     "--blend")
        if failed or again is None:
            raise RuntimeError(f"cached re-run: {failed}")
        comp = again["timings"].get("composite")
        r["cached"].update({"seconds": round(m2.seconds, 3), "ratio": ratio(m2.seconds, fs),
                            "composite_s": None if comp is None else round(comp, 3),
                            "composite_ratio": ratio(comp, fs), "computed": again["computed"],
                            "only_composite": again["computed"] == ["composite"],
                            "max_rss_mb": round(m2.max_rss / 2**20, 1)})
        log(f"cached re-run {m2.seconds:.2f} s (computed {', '.join(again['computed']) or 'nothing'})")
    except Exception as exc:  # noqa: BLE001 - one broken case is a row, not the end of the run
        r["error"] = f"{type(exc).__name__}: {exc}"[:600]
        log(f"FAILED {r['error']}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return r
