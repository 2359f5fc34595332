"""The README's performance summary, written from the committed results JSON so it cannot drift from it.

``python -m benchmarks`` re-renders it after every full run (and ``--length``
run) into ``benchmarks/results/``; ``python -m benchmarks --readme`` re-renders
it from the JSON already there without running anything. Only the text between
the two markers in the top-level README.md is replaced. The verdicts are
recomputed from the JSON's numbers with the current targets (`report.targets`),
so a results file written before a target existed is still judged on it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from benchmarks import REPO
from benchmarks.report import MAX_RSS_MB, alignment_seconds, hms, length_summary, mb, ratio, targets

START, END = "<!-- bench:summary:start -->", "<!-- bench:summary:end -->"
README = REPO / "README.md"
RESULTS = REPO / "benchmarks" / "results"
# not full runs: the others have shapes of their own (segments_bench, bitdepth, mutation, moving)
_SUFFIXES = (".quick", ".partial", ".length", ".segments", ".bitdepth", ".mutation", ".moving")


def latest_results(folder: Path = RESULTS) -> Path:
    """The newest full-run results file (by the date inside it), not a --quick, --cases or --length one."""
    found = [p for p in folder.glob("*.json") if not any(p.stem.endswith(s) for s in _SUFFIXES)]
    if not found:
        raise SystemExit(f"no results JSON in {folder}: run `make bench` first")
    return max(found, key=lambda p: json.loads(p.read_text())["run"]["date"])


def _rel(path: Path) -> str:
    try:
        return path.resolve().relative_to(REPO).as_posix()
    except ValueError:
        return str(path)


def _x(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}x"


def _cases_line(cases: list[dict]) -> str:
    scored = [c for c in cases if c["accuracy"]["exact"] is not None]
    if not scored:
        return "- Accuracy: no case was scored."
    exact = sum(c["accuracy"]["exact"] >= 1 for c in scored)
    within = sum(c["accuracy"]["within_one"] >= 1 for c in scored)
    worst = max(scored, key=lambda c: (c["accuracy"]["worst"] is None, c["accuracy"]["worst"] or 0))
    offsets = [c["accuracy"]["offset_px"] for c in scored]
    scale = max(c["accuracy"]["scale_err"] for c in scored)
    failed = [c["name"] for c in cases if c["error"]]
    worst_text = ("a map of the wrong length" if worst["accuracy"]["worst"] is None
                  else f"{worst['accuracy']['worst']} frame{'' if worst['accuracy']['worst'] == 1 else 's'}")
    return (f"- Accuracy: {exact} of {len(cases)} cases 100% frame-exact, {within} of {len(cases)} with every frame "
            f"within one (worst error {worst_text}, {worst['name']}); offsets within "
            f"{min(offsets):.3f}-{max(offsets):.3f} px, scale within {100 * scale:.3f}%"
            + (f"; failed: {', '.join(failed)}." if failed else "."))


def _long_line(cases: list[dict]) -> str | None:
    parts = []
    for c in cases:
        if not c["long"] or c.get("length") or c["vidkompy"]["seconds"] is None:
            continue
        fs = c["floor"]["seconds"]
        parts.append(f"{c['name']} end to end {_x(c['vidkompy']['ratio'])} the floor ({fs:.0f} s), alignment "
                     f"{_x(ratio(alignment_seconds(c), fs))}, cached re-run with other --border/--blend "
                     f"{_x(c['cached']['ratio'])}")
    return ("- Long cases (1080p25 bg, 720p30 fg): " + "; ".join(parts) + ".") if parts else None


def _rss_line(cases: list[dict]) -> str | None:
    parts = []
    for c in cases:
        rss = c["vidkompy"]["max_rss_mb"]
        if not c["long"] or rss is None:
            continue
        size = c["footage"]["bg_size"]
        note = "" if size[1] >= 1080 else f" at {size[0]}x{size[1]}"
        parts.append(f"{c['name']}{note} {rss:.0f} MB" + (" (killed)" if c["error"] else ""))
    return (f"- Peak RSS (target {MAX_RSS_MB / 1024:.1f} GB at 1080p): " + ", ".join(parts) + ".") if parts else None


def _length_lines(cases: list[dict]) -> list[str]:
    ls = length_summary(cases)
    lines = []
    if ls["per_frame_ratio"]:
        for name, row in ls["per_frame_ratio"].items():
            stages = {k: v for k, v in row.items() if v is not None and k not in ("end_to_end", "floor", "alignment")}
            worst = max(stages, key=stages.get) if stages else None
            lines.append(f"- {name} against {ls['rate_base']}, seconds per fg frame: end to end "
                         f"{_x(row['end_to_end'])}, alignment {_x(row['alignment'])}, floor {_x(row['floor'])}"
                         + (f"; the stage that grew most: {worst} {_x(stages[worst])}." if worst else "."))
    p = ls["projection"]
    if p:
        comp = p["stages_s"].get("composite")
        rss = p["peak_rss"]
        lines.append(f"- A 2-hour 1080p pair (216,000 fg frames at 30 fps over 180,000 bg frames), projected from "
                     f"{p['from']}'s per-frame rates: end to end {hms(p['end_to_end_s'])} "
                     f"({_x(p['end_to_end_ratio'])} the floor's {hms(p['floor_s'])}), alignment "
                     f"{hms(p['alignment_s'])}, composite {hms(comp)}"
                     + (f"; peak RSS {mb(rss['max_rss_mb'])} if it keeps growing as from {rss['from'][0]} to "
                        f"{rss['from'][1]}." if rss else "."))
    return lines


def _cli_line(cli: dict | None) -> str | None:
    if cli is None:
        return None
    first = cli["no_server"]["first"]

    def s(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f} s"

    return (f"- Prefect's fixed cost per CLI run (end to end minus stages): {s(first['overhead_s'])} for the first run "
            f"with no server configured (it boots the local server), {s(cli['no_server']['overhead_s'])} after "
            f"that, {s(cli['server']['overhead_s'])} with a running server.")


RATE_ROW = "seconds per fg frame at 20 min"


def _one_rate_row(rows: list[dict]) -> list[dict]:
    """The per-stage rate targets as one row (the console and the JSON keep one a stage)."""
    rate = [r for r in rows if RATE_ROW in r["target"]]
    if not rate:
        return rows
    name = rate[0]["target"].split(": ", 1)[1]
    verdict = "MISSED" if any(r["verdict"] == "MISSED" for r in rate) else "met"
    value = ", ".join(f"{r['target'].split(':', 1)[0]} {r['value'].rsplit('(', 1)[-1].rstrip(')')}" for r in rate)
    at = rows.index(rate[0])
    rest = [r for r in rows if r not in rate]
    return rest[:at] + [{"target": f"each stage's {name}", "value": value, "verdict": verdict}] + rest[at:]


def render(main: dict, main_path: Path, length: dict | None = None, length_path: Path | None = None) -> str:
    """The markdown between the markers: a few lines of numbers, then every target, met or MISSED."""
    m = main["machine"]
    gpu = m["gpu"]["name"] if m["gpu"] else "no GPU"
    run = main["run"]
    src = f"[`{_rel(main_path)}`]({_rel(main_path)})"
    if length_path is not None:
        src += f" and [`{_rel(length_path)}`]({_rel(length_path)})"
    lines = [f"<!-- written by `python -m benchmarks` from {_rel(main_path)}; edits here are overwritten -->",
             f"On `{main['machine_slug']}` ({m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB, {gpu}), "
             f"{run['date'][:10]}, commit {run['commit']}; from {src}.", ""]
    cases = main["cases"]
    lines.append(_cases_line(cases))
    for line in (_long_line(cases), _cli_line(main["cli"])):
        if line:
            lines.append(line)
    all_cases = cases + (length["cases"] if length else [])
    rss = _rss_line(all_cases)
    if rss:
        lines.append(rss)
    if length:
        lines.append(f"- Length cases ({length['run']['date'][:10]}, commit {length['run']['commit']}): "
                     + ", ".join(f"{c['name']} {hms(c['vidkompy']['seconds'])}"
                                 + (f" (failed: {c['error'][:80]})" if c["error"] else "")
                                 for c in length["cases"]) + " end to end.")
        lines += _length_lines(length["cases"])
    else:
        lines += _length_lines(cases)
        lines.append("- The length cases (1 to 20 minutes of 1080p, 2 hours small) have not been run on this "
                     "machine: `make bench LENGTH=1`.")
    rows = targets(cases, main["cli"])
    if length:
        rows += [r if r["target"].startswith("length-") or RATE_ROW in r["target"]
                 else {**r, "target": f"length cases: {r['target']}"} for r in targets(length["cases"], None)]
    rows = _one_rate_row(rows)
    met = sum(r["verdict"] == "met" for r in rows)
    lines += ["", f"Targets: {met} of {len(rows)} met.", "", "| target | value | verdict |", "|---|---|---|"]
    lines += [f"| {r['target']} | {r['value']} | {'**MISSED**' if r['verdict'] == 'MISSED' else r['verdict']} |"
              for r in rows]
    return "\n".join(lines)


def write_readme(main_path: Path | None = None, readme: Path = README) -> Path:
    """Replace the text between the markers in ``readme`` with the summary of ``main_path`` (default: the
    newest full results file) and its ``.length.json`` beside it, when there is one."""
    main_path = main_path or latest_results()
    main = json.loads(main_path.read_text())
    length_path = main_path.with_name(f"{main['machine_slug']}.length.json")
    length = json.loads(length_path.read_text()) if length_path.exists() else None
    text = readme.read_text()
    start, end = text.find(START), text.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{readme}: no {START} ... {END} markers to write the summary between")
    body = render(main, main_path, length, length_path if length else None)
    new = text[: start + len(START)] + "\n" + body + "\n" + text[end:]
    if new != text:
        tmp = readme.with_suffix(".md.tmp")
        tmp.write_text(new)
        os.replace(tmp, readme)
    return main_path
