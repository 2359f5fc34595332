"""The targets, the printed tables and the JSON file.

Targets are printed as met or missed, never asserted: a benchmark that fails a
build on a slow day teaches people to ignore it. The JSON keeps one fixed shape
(every key present, null when not measured) so that two runs diff cleanly.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks.cases import LENGTH_PAIR


def ratio(seconds: float | None, floor: float | None) -> float | None:
    """``seconds`` as a multiple of the floor."""
    return None if seconds is None or not floor else round(seconds / floor, 3)

STAGES = ("decode-bg", "decode-fg", "locate", "embed-bg", "embed-fg", "index", "dtw", "spatial", "composite")

MIN_EXACT = 0.99
MAX_OFFSET_PX = 0.5
MAX_SCALE_ERR = 0.01
MAX_LONG_RATIO = 1.3
MAX_CACHED_RATIO = 1.1
MAX_RSS_MB = 1536
MAX_RSS_GROWTH = 1.15  # "flat": the doubled case may use at most 15% more
MAX_OVERHEAD_EPHEMERAL = 4.5
MAX_OVERHEAD_SERVER = 2.5


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "MISSED")


def targets(cases: list[dict], cli: dict | None) -> list[dict]:
    """Each target with the value it was judged on and its verdict (None: not measured in this run)."""
    rows: list[dict] = []

    def add(name: str, value: object, ok: bool | None) -> None:
        rows.append({"target": name, "value": value, "verdict": _met(ok)})

    scored = [c for c in cases if c["accuracy"]["exact"] is not None]
    failed = [c["name"] for c in cases if c["error"]]
    if failed:
        add("every case runs", ", ".join(failed) + " failed", False)
    if scored:
        worst = min(scored, key=lambda c: c["accuracy"]["exact"])
        add(f"every case exact >= {MIN_EXACT:.0%}", f"lowest {worst['accuracy']['exact']:.2%} ({worst['name']})",
            all(c["accuracy"]["exact"] >= MIN_EXACT for c in scored))
        off = [c for c in scored if c["accuracy"]["within_one"] < 1]
        add("all frames within one", "all" if not off else ", ".join(c["name"] for c in off), not off)
        w = max(scored, key=lambda c: c["accuracy"]["offset_px"])
        add(f"offset error <= {MAX_OFFSET_PX} px", f"largest {w['accuracy']['offset_px']:.3f} px ({w['name']})",
            w["accuracy"]["offset_px"] <= MAX_OFFSET_PX)
        s = max(scored, key=lambda c: c["accuracy"]["scale_err"])
        add(f"scale within {MAX_SCALE_ERR:.0%}", f"largest {s['accuracy']['scale_err']:.3%} ({s['name']})",
            s["accuracy"]["scale_err"] <= MAX_SCALE_ERR)
    for c in cases:
        if not c["long"] or c["error"]:
            continue
        v, k = c["vidkompy"], c["cached"]
        add(f"{c['name']}: end-to-end <= {MAX_LONG_RATIO}x floor", _ratio_text(v["seconds"], v["ratio"]),
            None if v["ratio"] is None else v["ratio"] <= MAX_LONG_RATIO)
        add(f"{c['name']}: cached re-run <= {MAX_CACHED_RATIO}x floor", _ratio_text(k["seconds"], k["ratio"]),
            None if k["ratio"] is None else k["ratio"] <= MAX_CACHED_RATIO)
        add(f"{c['name']}: peak RSS <= {MAX_RSS_MB / 1024:.1f} GB", f"{v['max_rss_mb']:.0f} MB",
            v["max_rss_mb"] <= MAX_RSS_MB)
    by_name = {c["name"]: c for c in cases if not c["error"]}
    if all(n in by_name for n in LENGTH_PAIR):
        a, b = (by_name[n]["vidkompy"]["max_rss_mb"] for n in LENGTH_PAIR)
        add(f"peak RSS flat when length doubles (<= {MAX_RSS_GROWTH}x)", f"{a:.0f} -> {b:.0f} MB ({b / a:.2f}x)",
            b / a <= MAX_RSS_GROWTH)
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


def write_json(result: dict, path: Path) -> None:
    """Written beside the target and renamed: a killed run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    os.replace(tmp, path)
