"""Two benchmark runs' answers, case by case: the same frames, the same offsets, the same verdicts?

    .venv/bin/python -m benchmarks.compare BEFORE.json AFTER.json [--px 0.001]

For a change that must not move any result (a refactor), this is the check: per case the exact and
within-one shares, the wrong frames (each with the frame chosen), x, y and scale to ``--px``, the
unmatched ranges found, the active picture, the confidence to 1e-4 and whether the case failed. Timings
are not compared (they belong to the machine and its load). Exit 1 when any case differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SAME = ("exact", "within_one", "worst", "monotonic", "wrong", "n_unmatched_found", "unmatched_found", "active",
        "active_ok")


def differences(before: dict, after: dict, px: float) -> list[str]:
    """What differs between one case's two records (empty: the same answer)."""
    out = []
    if bool(before["error"]) != bool(after["error"]):
        out.append(f"error: {before['error']!r} -> {after['error']!r}")
    a, b = before["accuracy"], after["accuracy"]
    for key in SAME:
        if a.get(key) != b.get(key):
            out.append(f"{key}: {a.get(key)!r} -> {b.get(key)!r}")
    for key in ("x", "y", "scale"):
        if (a[key] is None) != (b[key] is None) or (a[key] is not None and abs(a[key] - b[key]) > px):
            out.append(f"{key}: {a[key]} -> {b[key]}")
    if a["confidence"] is not None and b["confidence"] is not None and abs(a["confidence"] - b["confidence"]) > 1e-4:
        out.append(f"confidence: {a['confidence']} -> {b['confidence']}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--px", type=float, default=1e-3, help="offset tolerance in px (default 0.001)")
    args = parser.parse_args()
    before = {c["name"]: c for c in json.loads(args.before.read_text())["cases"]}
    after = {c["name"]: c for c in json.loads(args.after.read_text())["cases"]}
    changed = 0
    for name in sorted(set(before) | set(after)):
        if name not in before or name not in after:
            print(f"{name}: only in {'after' if name in after else 'before'}")
            changed += 1
            continue
        diff = differences(before[name], after[name], args.px)
        a = after[name]["accuracy"]
        state = "same" if not diff else "DIFFERS: " + "; ".join(diff)
        print(f"{name:24s} exact {a['exact']!s:8s} x {a['x']!s:10s} y {a['y']!s:10s} scale {a['scale']!s:8s} {state}")
        changed += bool(diff)
    print(f"{len(set(before) & set(after)) - changed} of {len(set(before) | set(after))} cases give the same answer")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
