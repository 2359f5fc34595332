"""The targets, the printed tables and the JSON file.

Targets are printed as met or missed, never asserted: a benchmark that fails a
build on a slow day teaches people to ignore it. The JSON keeps one fixed shape
(every key present, null when not measured) so that two runs diff cleanly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks.cases import (
    LENGTH_PAIR,
    PROJECTION_BG_FRAMES,
    PROJECTION_CASE,
    PROJECTION_FG_FRAMES,
    RATE_PAIR,
    RSS_PAIR,
)


def ratio(seconds: float | None, floor: float | None) -> float | None:
    """``seconds`` as a multiple of the floor."""
    return None if seconds is None or not floor else round(seconds / floor, 3)

STAGES = ("decode-bg", "decode-fg", "locate", "embed-bg", "embed-fg", "index", "dtw", "spatial", "composite")

MIN_EXACT = 0.99  # on the fg frames with a counterpart in bg
MIN_UNMATCHED_RECALL = 0.95  # of the fg frames with none, the share vidkompy reports unmatched
MIN_UNMATCHED_PRECISION = 0.95  # of the fg frames it reports unmatched, the share that truly are
MAX_OFFSET_PX = 0.5
MAX_SCALE_ERR = 0.01
MAX_LONG_RATIO = 1.3
MAX_CACHED_RATIO = 1.1
MAX_RSS_MB = 1536
MAX_RSS_GROWTH = 1.15  # "flat": the doubled (or ten times longer) case may use at most 15% more
MAX_ALIGN_RATIO = 0.3  # the alignment (every stage before composite, along the critical path) at 1080p
MAX_RATE_GROWTH = 1.2  # a stage's seconds per fg frame at 20 minutes against 1 minute
MAX_OVERHEAD_EPHEMERAL = 4.5
MAX_OVERHEAD_SERVER = 2.5


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def is_1080(c: dict) -> bool:
    size = c["footage"].get("bg_size")
    return bool(size) and size[1] >= 1080


def n_fg(c: dict) -> int:
    return c["footage"].get("n_fg") or 0


def alignment_seconds(c: dict) -> float | None:
    """The alignment's seconds (critical path without the composite); computed from the stages for results
    written before the JSON kept it."""
    v = c["vidkompy"]
    if v.get("alignment_s") is not None:
        return v["alignment_s"]
    t = {s: b["seconds"] for s, b in v["stages"].items() if b.get("seconds") is not None}
    if not t:
        return None
    from benchmarks.runner import alignment_path  # runner imports this module

    return round(alignment_path(t), 3)


def stage_rate(c: dict, stage: str) -> float | None:
    """A stage's seconds per fg frame (or "alignment", "end_to_end", "floor")."""
    if stage == "alignment":
        seconds = alignment_seconds(c)
    elif stage == "end_to_end":
        seconds = c["vidkompy"]["seconds"]
    elif stage == "floor":
        seconds = c["floor"]["seconds"]
    else:
        seconds = (c["vidkompy"]["stages"].get(stage) or {}).get("seconds")
    return None if seconds is None or not n_fg(c) else seconds / n_fg(c)


RATE_KEYS = (*STAGES, "alignment", "end_to_end", "floor")


def _ok(c: dict | None) -> bool:
    return c is not None and not c["error"]


def length_summary(cases: list[dict]) -> dict:
    """Per-frame rates of the length cases against the shortest, peak RSS per length, the 2-hour projection."""
    by_name = {c["name"]: c for c in cases}
    lengths = sorted((c for c in cases if c.get("length") and c["vidkompy"]["seconds"] is not None),
                     key=lambda c: (not is_1080(c), n_fg(c)))
    base = by_name.get(RATE_PAIR[0])
    rates = {c["name"]: {k: None if stage_rate(c, k) is None else round(stage_rate(c, k), 7) for k in RATE_KEYS}
             for c in lengths}
    ratios = None
    if base is not None and base["vidkompy"]["seconds"] is not None:
        ratios = {c["name"]: {k: ratio(stage_rate(c, k), stage_rate(base, k)) for k in RATE_KEYS}
                  for c in lengths if c is not base and is_1080(c)}
    rss = {c["name"]: {"minutes": c["footage"].get("minutes"), "bg_size": c["footage"]["bg_size"],
                       "max_rss_mb": c["vidkompy"]["max_rss_mb"]}
           for c in cases if c["long"] and c["vidkompy"]["max_rss_mb"] is not None}
    return {"rate_base": None if ratios is None else RATE_PAIR[0], "per_frame_s": rates or None,
            "per_frame_ratio": ratios, "rss": rss or None, "projection": projection(cases)}


def projection(cases: list[dict]) -> dict | None:
    """What a 2-hour 1080p pair would take, from the measured per-frame rates of the longest 1080p case.

    Every stage is taken to cost the same per fg frame as measured (the bg/fg
    frame ratio is the same: 25 fps bg under a 30 fps fg): 2 h of fg at 30 fps
    is 216,000 fg frames over 2 h of bg at 25 fps, 180,000 bg frames. Peak RSS
    does not follow a rate; it is extrapolated linearly from the two lengths
    it was measured at, when it grew.
    """
    by_name = {c["name"]: c for c in cases}
    chosen = by_name.get(PROJECTION_CASE)
    if not (_ok(chosen) and chosen["vidkompy"]["seconds"] is not None):
        full = [c for c in cases if _ok(c) and c["long"] and is_1080(c) and c["vidkompy"]["stages_s"] is not None]
        if not full:
            return None
        chosen = max(full, key=n_fg)
    n = PROJECTION_FG_FRAMES

    def projected(stage: str) -> float | None:
        r = stage_rate(chosen, stage)
        return None if r is None else round(r * n, 1)

    rss = None
    for a_name, b_name in (RSS_PAIR, LENGTH_PAIR):
        a, b = by_name.get(a_name), by_name.get(b_name)
        if _ok(a) and _ok(b) and n_fg(b) > n_fg(a):
            ra, rb = a["vidkompy"]["max_rss_mb"], b["vidkompy"]["max_rss_mb"]
            slope = max(0.0, (rb - ra) / (n_fg(b) - n_fg(a)))
            rss = {"from": [a_name, b_name], "max_rss_mb": round(rb + slope * (n - n_fg(b)), 0),
                   "mb_per_hour": round(slope * 3600 * 30, 1)}
            break
    floor_s = projected("floor")
    return {
        "from": chosen["name"], "from_n_fg": n_fg(chosen), "fg_frames": n, "bg_frames": PROJECTION_BG_FRAMES,
        "assumption": "each stage costs what it measured per fg frame; 2 h of a 720p30 fg over 2 h of 1080p25 bg",
        "stages_s": {s: projected(s) for s in STAGES if stage_rate(chosen, s) is not None},
        "alignment_s": projected("alignment"), "end_to_end_s": projected("end_to_end"), "floor_s": floor_s,
        "alignment_ratio": ratio(projected("alignment"), floor_s),
        "end_to_end_ratio": ratio(projected("end_to_end"), floor_s),
        "peak_rss": rss,
    }


def targets(cases: list[dict], cli: dict | None) -> list[dict]:
    """Each target with the value it was judged on and its verdict (None: not measured in this run).

    Works on results written before the per-frame and alignment keys existed
    (it derives them from the stage seconds), so the README summary can be
    re-rendered from any committed JSON.
    """
    rows: list[dict] = []

    def add(name: str, value: object, ok: bool | None) -> None:
        rows.append({"target": name, "value": value, "verdict": _met(ok)})

    scored = [c for c in cases if c["accuracy"]["exact"] is not None]
    failed = [c["name"] for c in cases if c["error"]]
    if failed:
        add("every case runs", ", ".join(failed) + " failed", False)
    if scored:
        worst = min(scored, key=lambda c: c["accuracy"]["exact"])
        add(f"every case exact >= {MIN_EXACT:.0%} (of the fg frames with a counterpart in bg)",
            f"lowest {worst['accuracy']['exact']:.2%} ({worst['name']})",
            all(c["accuracy"]["exact"] >= MIN_EXACT for c in scored))
        off = [c for c in scored if c["accuracy"]["within_one"] < 1]
        add("all frames within one", "all" if not off else ", ".join(c["name"] for c in off), not off)
        w = max(scored, key=lambda c: c["accuracy"]["offset_px"])
        add(f"offset error <= {MAX_OFFSET_PX} px", f"largest {w['accuracy']['offset_px']:.3f} px ({w['name']})",
            w["accuracy"]["offset_px"] <= MAX_OFFSET_PX)
        s = max(scored, key=lambda c: c["accuracy"]["scale_err"])
        add(f"scale within {MAX_SCALE_ERR:.0%}", f"largest {s['accuracy']['scale_err']:.3%} ({s['name']})",
            s["accuracy"]["scale_err"] <= MAX_SCALE_ERR)
        _material_targets(scored, add)
    timed = [c for c in cases if (c.get("timeline") or {}).get("reproduced") is not None]
    if timed:
        low = min(timed, key=lambda c: c["timeline"]["reproduced"])
        add("the conform timeline reproduces every matched frame",
            f"lowest {low['timeline']['reproduced']:.2%} ({low['name']})",
            all(c["timeline"]["reproduced"] == 1.0 for c in timed))
        costly = [c for c in timed if c["timeline"]["build_share_of_alignment"] is not None]
        if costly:
            worst = max(costly, key=lambda c: c["timeline"]["build_share_of_alignment"])
            add("the timeline builds in under 1% of the alignment's time",
                f"largest {100 * worst['timeline']['build_share_of_alignment']:.3f}% ({worst['name']})",
                worst["timeline"]["build_share_of_alignment"] < 0.01)
    for c in cases:
        if not c["long"]:
            continue
        v, k, fs = c["vidkompy"], c["cached"], c["floor"]["seconds"]
        if not c.get("length") and not c["error"]:
            add(f"{c['name']}: end-to-end <= {MAX_LONG_RATIO}x floor", _ratio_text(v["seconds"], v["ratio"]),
                None if v["ratio"] is None else v["ratio"] <= MAX_LONG_RATIO)
            add(f"{c['name']}: cached re-run <= {MAX_CACHED_RATIO}x floor", _ratio_text(k["seconds"], k["ratio"]),
                None if k["ratio"] is None else k["ratio"] <= MAX_CACHED_RATIO)
        if is_1080(c):
            al = alignment_seconds(c)
            if al is not None:
                r = ratio(al, fs)
                add(f"{c['name']}: alignment <= {MAX_ALIGN_RATIO}x floor", _ratio_text(al, r),
                    None if r is None else r <= MAX_ALIGN_RATIO)
            if v["max_rss_mb"] is not None:
                killed = bool(c["error"]) and "held more than" in c["error"]
                add(f"{c['name']}: peak RSS <= {MAX_RSS_MB / 1024:.1f} GB",
                    f"{v['max_rss_mb']:.0f} MB" + (" (killed for its memory)" if killed else ""),
                    v["max_rss_mb"] <= MAX_RSS_MB and not killed)
    by_name = {c["name"]: c for c in cases if not c["error"]}
    for pair, what in ((LENGTH_PAIR, "when length doubles"), (RSS_PAIR, "from 2 to 20 minutes")):
        if all(n in by_name for n in pair):
            a, b = (by_name[n]["vidkompy"]["max_rss_mb"] for n in pair)
            add(f"peak RSS flat {what} (<= {MAX_RSS_GROWTH}x)", f"{a:.0f} -> {b:.0f} MB ({b / a:.2f}x)",
                b / a <= MAX_RSS_GROWTH)
    if all(n in by_name for n in RATE_PAIR):
        a, b = (by_name[n] for n in RATE_PAIR)
        for stage in STAGES:
            ra, rb = stage_rate(a, stage), stage_rate(b, stage)
            if ra is None or rb is None:
                continue
            add(f"{stage}: seconds per fg frame at 20 min <= {MAX_RATE_GROWTH}x 1 min",
                f"{1000 * ra:.2f} -> {1000 * rb:.2f} ms ({rb / ra:.2f}x)", rb / ra <= MAX_RATE_GROWTH)
    if cli is not None:
        e, s = cli["no_server"]["overhead_s"], cli["server"]["overhead_s"]
        first = cli["no_server"]["first"]["overhead_s"] if cli["no_server"]["first"]["rc"] == 0 else None
        if cli["local_server"]:
            add(f"Prefect fixed cost, no server, first run (boots the local server) <= {MAX_OVERHEAD_EPHEMERAL} s",
                _seconds(first), None if first is None else first <= MAX_OVERHEAD_EPHEMERAL)
        add(f"Prefect fixed cost, no server <= {MAX_OVERHEAD_EPHEMERAL} s", _seconds(e),
            None if e is None else e <= MAX_OVERHEAD_EPHEMERAL)
        add(f"Prefect fixed cost, with a server <= {MAX_OVERHEAD_SERVER} s", _seconds(s),
            None if s is None else s <= MAX_OVERHEAD_SERVER)
    return rows


def _material_targets(scored: list[dict], add: Callable[[str, object, bool | None], None]) -> None:
    """Unmatched fg frames found (recall) and not invented (precision: judged on every case, so a false alarm
    on a case without an inserted shot counts), and fg's bars found to the pixel (and none where it has none).
    Results written before these were measured lack the keys and are not judged on them."""
    a = [c for c in scored if c["accuracy"].get("n_unmatched_true") is not None]
    rec = [c for c in a if c["accuracy"]["unmatched_recall"] is not None]
    if rec:
        w = min(rec, key=lambda c: c["accuracy"]["unmatched_recall"])
        add(f"unmatched fg frames reported (recall >= {MIN_UNMATCHED_RECALL:.0%})",
            f"lowest {w['accuracy']['unmatched_recall']:.2%} ({w['name']})",
            w["accuracy"]["unmatched_recall"] >= MIN_UNMATCHED_RECALL)
    if a:
        pre = [c for c in a if c["accuracy"]["unmatched_precision"] is not None]
        w = min(pre, key=lambda c: c["accuracy"]["unmatched_precision"]) if pre else None
        add(f"reported unmatched frames truly unmatched (precision >= {MIN_UNMATCHED_PRECISION:.0%})",
            "nothing reported" if w is None else f"lowest {w['accuracy']['unmatched_precision']:.2%} ({w['name']})",
            w is None or w["accuracy"]["unmatched_precision"] >= MIN_UNMATCHED_PRECISION)
    act = [c for c in scored if c["accuracy"].get("active_ok") is not None]
    if act:
        bad = [c for c in act if not c["accuracy"]["active_ok"]]
        boxed = sum(c["accuracy"]["active_true"] is not None for c in act)
        add(f"fg's active box to the pixel ({boxed} case(s) with bars), none where fg has no bars",
            "all right" if not bad else ", ".join(f"{c['name']} {c['accuracy']['active']} (true "
                                                  f"{c['accuracy']['active_true']})" for c in bad), not bad)


def _seconds(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f} s"


def _ratio_text(seconds: float | None, ratio: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.2f} s" if ratio is None else f"{seconds:.2f} s ({ratio:.2f}x)"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}"


def _num(v: float | None, fmt: str = ".2f") -> str:
    return "-" if v is None else format(v, fmt)


def _print_timelines(cases: list[dict], console: Console) -> None:
    rows = [c for c in cases if (c.get("timeline") or {}).get("clips") is not None]
    if not rows:
        return
    t = Table(title="Conform timeline (--timeline): clips, the share of the map it reproduces, build time")
    for col in ("case", "clips", "clips / min", "reproduced %", "build ms", "% of alignment"):
        t.add_column(col, justify="left" if col == "case" else "right")
    for c in rows:
        tl = c["timeline"]
        share = tl["build_share_of_alignment"]
        t.add_row(c["name"], str(tl["clips"]), _num(tl["clips_per_minute"], ".2f"), _pct(tl["reproduced"]),
                  _num(1000 * tl["build_s"], ".1f"), _num(None if share is None else 100 * share, ".3f"))
    console.print(t)


def print_tables(result: dict, console: Console | None = None) -> None:
    console = console or Console(width=max(170, Console().width))
    m = result["machine"]
    gpu = m["gpu"]["name"] if m["gpu"] else "no GPU"
    v = m["versions"]
    console.print(f"[bold]{result['machine_slug']}[/]: {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB, {gpu}; "
                  f"vidkompy {v['vidkompy']}, av {v['av']} (FFmpeg {v['ffmpeg']}), torch {v['torch']}, "
                  f"prefect {v['prefect']}")
    cases = result["cases"]

    acc = Table(title="Accuracy against exact truth")
    for col in ("case", "covers", "fg frames", "exact %", "within 1 %", "worst", "monotonic", "offset px",
                "scale err %", "confidence", "output PSNR dB"):
        acc.add_column(col, justify="left" if col in ("case", "covers") else "right")
    for c in cases:
        a, o = c["accuracy"], c["output"]
        acc.add_row(c["name"], c["covers"], str(c["footage"]["n_fg"]), _pct(a["exact"]), _pct(a["within_one"]),
                    "-" if a["worst"] is None else str(a["worst"]),
                    "-" if a["monotonic"] is None else ("yes" if a["monotonic"] else "NO"),
                    _num(a["offset_px"], ".3f"), _num(None if a["scale_err"] is None else 100 * a["scale_err"], ".3f"),
                    _num(a["confidence"], ".3f"), _num(o["psnr"], ".1f"))
    console.print(acc)
    _print_material(cases, console)
    _print_timelines(cases, console)

    t = Table(title="Time (seconds; x = multiple of the floor measured for the same case; "
                    "overhead = end-to-end minus critical path)")
    cols = ["case", "load", "floor", "end-to-end", "stages", "critical path", "imports", "overhead",
            "cached re-run", "composite", "peak RSS MB"]
    if result["run"]["peer"]:
        cols += ["peer 1.2.5", "peer PSNR dB"]
    for col in cols:
        t.add_column(col, justify="left" if col == "case" else "right")
    for c in cases:
        f, vk, k = c["floor"], c["vidkompy"], c["cached"]
        row = [c["name"], _num(c["load_1m"], ".1f"), _num(f["seconds"]), _ratio_text(vk["seconds"], vk["ratio"]),
               _num(vk["stages_s"]), _num(vk["critical_path_s"]), _num(vk["import_s"]),
               _ratio_text(vk["overhead_path_s"], ratio(vk["overhead_path_s"], f["seconds"])),
               _ratio_text(k["seconds"], k["ratio"]), _ratio_text(k["composite_s"], k["composite_ratio"]),
               _num(vk["max_rss_mb"], ".0f")]
        if result["run"]["peer"]:
            p = c["peer"] or {}
            cell = "skipped" if p.get("skipped") else ("failed" if p.get("error") else
                                                       _ratio_text(p.get("seconds"), p.get("ratio")))
            row += [cell, _num(p.get("psnr"), ".1f")]
        t.add_row(*row)
    console.print(t)

    st = Table(title="Seconds per stage (computed on the first run; x floor)")
    st.add_column("case")
    for s in STAGES:
        st.add_column(s, justify="right")
    for c in cases:
        stages = c["vidkompy"]["stages"]
        st.add_row(c["name"], *(_ratio_text(stages[s]["seconds"], stages[s]["ratio"]) if stages[s]["seconds"]
                                is not None else "-" for s in STAGES))
    console.print(st)

    _print_length(result, console)

    if result["prefect_db_init_s"] is not None:
        console.print(f"Prefect database created in a fresh PREFECT_HOME in {result['prefect_db_init_s']:.1f} s "
                      "(a user's very first run pays this once; no case here does)")
    if result["local_server_boot_s"] is not None:
        console.print(f"vidkompy's local Prefect server booted before the cases in "
                      f"{result['local_server_boot_s']:.1f} s (every case reuses it, as a user's second run does)")
    cli = result["cli"]
    if cli is not None:
        ct = Table(title=f"CLI end to end on {cli['case']} (fresh cache each run; median of {cli['runs']}; "
                         "fixed cost = end-to-end minus stages)")
        for col in ("Prefect", "end-to-end s", "stages s", "fixed cost s", "runs s"):
            ct.add_column(col, justify="left" if col == "Prefect" else "right")
        first = cli["no_server"]["first"]
        ct.add_row("no server configured: first run" + (" (boots the local server)" if cli["local_server"] else ""),
                   _num(first["seconds"]), _num(first["stages_s"]), _num(first["overhead_s"]), "")
        rows = [("no server configured" + (" (local server reused)" if cli["local_server"] else ""), "no_server"),
                ("VIDKOMPY_LOCAL_SERVER=0: temporary server per run", "temporary"),
                ("running `prefect server start`", "server")]
        for label, key in rows:
            block = cli[key]
            runs = block["runs"]
            if not runs:
                continue
            ok = [r for r in runs if r["rc"] == 0]
            ct.add_row(label, _num(block["seconds"]),
                       _num(sorted(r["stages_s"] for r in ok)[len(ok) // 2] if ok else None),
                       _num(block["overhead_s"]), ", ".join(f"{r['seconds']:.1f}" for r in runs))
        console.print(ct)
        if cli["server"].get("error"):
            console.print(f"server: {cli['server']['error']}")
        al = cli["align_json"]
        console.print(f"`vidkompy align --json` on the warm cache: {al['seconds']:.2f} s, "
                      + (al["error"] or f"exact {_pct(al['exact'])} %, offset {al['offset_px']:.3f} px"))

    tt = Table(title="Targets")
    for col in ("target", "value", "verdict"):
        tt.add_column(col)
    for row in result["targets"]:
        style = "green" if row["verdict"] == "met" else ("red" if row["verdict"] == "MISSED" else "")
        tt.add_row(row["target"], str(row["value"]), f"[{style}]{row['verdict']}[/]" if style else row["verdict"])
    console.print(tt)
    if result["peer_note"]:
        console.print(result["peer_note"])


def _box(v: list[int] | None) -> str:
    return "none" if v is None else ",".join(str(n) for n in v)


def _print_material(cases: list[dict], console: Console) -> None:
    """Real-world material (inserted shots, bars) and the wrong frames looked at closely, for every case scored
    on them (results written before they existed have none)."""
    rows = [c for c in cases if c["accuracy"].get("n_unmatched_true") is not None]
    if not rows:
        return
    t = Table(title="Real-world material and misses (exact: of the fg frames with a counterpart in bg; "
                    "unmatched: fg frames with none, true / reported; active: fg's box x,y,w,h, to the pixel; "
                    "closer: wrong frames whose chosen bg frame is nearer fg's pixels than the true one; "
                    "nearest: frames whose true / chosen picture is the nearest of the true +-3)")
    for col in ("case", "matched", "exact %", "unmatched", "recall %", "precision %", "active", "wrong",
                "closer %", "dB true/chosen", "nearest % true/chosen"):
        t.add_column(col, justify="left" if col == "case" else "right", no_wrap=col == "case")
    for c in rows:
        a = c["accuracy"]
        wc, vn = a.get("wrong_closer") or {}, a.get("visual_nearest") or {}
        ok = a.get("active_ok")
        active = "-" if ok is None else (_box(a.get("active")) + ("" if ok else f" (true {_box(a['active_true'])})"))
        t.add_row(c["name"], str(a.get("n_matched")), _pct(a["exact"]),
                  f"{a.get('n_unmatched_true')} / {a.get('n_unmatched_found')}", _pct(a.get("unmatched_recall")),
                  _pct(a.get("unmatched_precision")), active if ok in (None, True) else f"[red]{active}[/]",
                  str(wc.get("n_wrong", "-")), _pct(a.get("wrong_but_closer")),
                  "-" if wc.get("psnr_true") is None else f"{wc['psnr_true']:.1f}/{wc['psnr_chosen']:.1f}",
                  "-" if not vn else f"{_pct(vn['truth_nearest'])}/{_pct(vn['found_nearest'])}")
    console.print(t)


def hms(seconds: float | None) -> str:
    """1 h 02 min, 3 min 05 s, 42 s."""
    if seconds is None:
        return "-"
    m, sec = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min" if h else (f"{m} min {sec:02d} s" if m else f"{sec} s")


def mb(v: float | None) -> str:
    """900 MB, 2.1 GB."""
    return "-" if v is None else (f"{v:.0f} MB" if v < 1024 else f"{v / 1024:.1f} GB")


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{1000 * v:.2f}"


def _print_length(result: dict, console: Console) -> None:
    """Per-frame rates of the long cases, their ratios to the 1-minute case, and the 2-hour projection."""
    longs = [c for c in result["cases"] if c["long"] and c["vidkompy"]["seconds"] is not None]
    if longs:
        t = Table(title="Milliseconds per fg frame (long cases; alignment = critical path without composite)")
        for col in ("case", "minutes", "fg frames", "floor", "end-to-end", "alignment", *STAGES, "peak RSS MB",
                    "footage made in"):
            t.add_column(col, justify="left" if col == "case" else "right", no_wrap=col == "case")
        for c in longs:
            gen = c["footage"].get("generation_s")
            t.add_row(c["name"], _num(c["footage"].get("minutes"), ".1f"), str(n_fg(c)),
                      *(_ms(stage_rate(c, k)) for k in ("floor", "end_to_end", "alignment", *STAGES)),
                      _num(c["vidkompy"]["max_rss_mb"], ".0f"),
                      "-" if gen is None else f"{hms(gen)} ({c['footage']['generation_fps']:.0f}/s)")
        console.print(t)
    ls = result.get("length") or {}
    if ls.get("per_frame_ratio"):
        t = Table(title=f"Seconds per fg frame against {ls['rate_base']} (x; target <= {MAX_RATE_GROWTH}x at 20 min)")
        t.add_column("case")
        for k in RATE_KEYS:
            t.add_column(k, justify="right")
        for name, row in ls["per_frame_ratio"].items():
            t.add_row(name, *(_num(row[k]) for k in RATE_KEYS))
        console.print(t)
    p = ls.get("projection")
    if p:
        t = Table(title=f"A 2-hour 1080p pair, projected from {p['from']}'s per-frame rates "
                        f"({p['fg_frames']} fg frames at 30 fps over {p['bg_frames']} bg frames at 25 fps)")
        for col in ("", "projected", "x floor"):
            t.add_column(col, justify="left" if not col else "right")
        for label, sec in (("floor", p["floor_s"]), ("end-to-end", p["end_to_end_s"]),
                           ("alignment", p["alignment_s"]), *p["stages_s"].items()):
            t.add_row(label, hms(sec), _num(ratio(sec, p["floor_s"])))
        console.print(t)
        if p["peak_rss"]:
            r = p["peak_rss"]
            console.print(f"peak RSS at 2 h, if it keeps growing as from {r['from'][0]} to {r['from'][1]} "
                          f"({mb(r['mb_per_hour'])} an hour of fg): {mb(r['max_rss_mb'])}")


def write_json(result: dict, path: Path) -> None:
    """Written beside the target and renamed: a killed run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp, path)
