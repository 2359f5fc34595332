"""``vidkompy cache info|prune``: its arguments, and its reports as text.

The scanning and pruning are :mod:`vidkompy.store.admin`'s; this module parses, prints, and turns
errors into one line and an exit code (0, 1 or 2).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence

from vidkompy.errors import VidkompyError
from vidkompy.store.admin import CacheInfo, PruneReport, Usage, cache_info, prune
from vidkompy.store.layout import default_cache_dir

GB = 10**9  # --max-size counts decimal gigabytes


# -- printing -------------------------------------------------------------------------------------


def format_size(n: int) -> str:
    """Decimal units, as ``--max-size`` counts them: 1 GB = 10**9 bytes."""
    for unit, scale in (("GB", GB), ("MB", 10**6), ("kB", 10**3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _unused(root: object) -> str:
    return f"cache {root}: empty (no run has stored anything in it yet)"


def format_info(info: CacheInfo) -> str:
    """A plain-text table: one row per stage, then leftovers and the total; one line for an unused cache."""
    if info.unused:
        return _unused(info.root)
    rows = [("stage", "artifacts", "size", "partial", "size", "tmp", "size")]
    for s in info.stages:
        cells = [s.stage]
        for u in (s.complete, s.partial, s.tmp):
            cells += [str(u.count), format_size(u.bytes)]
        rows.append(tuple(cells))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"cache {info.root}"]
    for r in rows:
        lines.append("  ".join([r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]))
    left = info.leftovers
    lines.append(f"partial artifacts and leftovers of killed runs: {left.count} ({format_size(left.bytes)})")
    lines.append(f"locks: {info.locks.count}, file hashes: {info.filehash.count}, other files: {info.other.count}")
    lines.append(f"total: {format_size(info.total_bytes)}")
    return "\n".join(lines)


_REASONS = {"older-than": "not used within --older-than", "max-size": "for --max-size", "leftover": "leftover"}


def format_prune(report: PruneReport) -> str:
    """A summary of what went (every path on a dry run), what a live run kept, and what failed."""
    verb = "would remove" if report.dry_run else "removed"
    lines = []
    if report.dry_run:
        lines += [f"{verb} {r.path} ({r.kind}, {_REASONS[r.reason]}, {format_size(r.bytes)})" for r in report.removed]
    groups: dict[tuple[str, str], Usage] = {}
    for r in report.removed:
        groups[r.kind, r.reason] = groups.get((r.kind, r.reason), Usage()) + Usage(1, r.bytes)
    names = {"artifact": "artifact(s)", "partial": "partial artifact(s)", "tmp": "tmp folder(s) of killed runs",
             "part-file": ".part output file(s) of killed runs"}
    for (kind, reason), u in sorted(groups.items()):
        why = f" {_REASONS[reason]}" if kind == "artifact" else ""
        lines.append(f"{verb} {u.count} {names[kind]}{why}: {format_size(u.bytes)}")
    if not report.removed:
        lines.append(f"{verb} nothing")
    lines += [f"kept {p}: a running vidkompy holds its lock" for p in report.locked]
    lines += [f"could not remove {f.path}: {f.problem}" for f in report.failed]
    if report.unused:
        lines.append(_unused(report.root))
    else:
        lines.append(f"cache {report.root}: {format_size(report.bytes_before)} -> {format_size(report.bytes_after)}")
    return "\n".join(lines)


# -- command line ---------------------------------------------------------------------------------


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(message)


def _non_negative(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"expected {what} >= 0, not {text!r}")
    return value


def _days(text: str) -> float:
    return _non_negative(text, "a number of days")


def _gigabytes(text: str) -> int:
    return int(_non_negative(text, "a size in GB") * GB)


def _parser() -> _Parser:
    parser = _Parser(prog="vidkompy cache", description="Inspect or shrink the artifact cache.")
    actions = parser.add_subparsers(dest="action", metavar="{info,prune}", required=True, parser_class=_Parser)
    info = actions.add_parser("info", help="size and count per stage, and leftovers of killed runs")
    prune_p = actions.add_parser("prune", help="remove old artifacts and leftovers of killed runs")
    for p in (info, prune_p):
        p.add_argument("--cache-dir", metavar="DIR", help="the cache folder (default: $VIDKOMPY_CACHE_DIR or "
                       "the user's cache folder)")
    prune_p.add_argument("--older-than", metavar="DAYS", type=_days, help="remove artifacts unused for DAYS days")
    prune_p.add_argument("--max-size", metavar="GB", type=_gigabytes,
                         help="then remove least recently used artifacts until the cache is at most GB (10^9 bytes)")
    prune_p.add_argument("--output-dir", metavar="DIR", action="append",
                         help="sweep hidden .part files of killed runs here (repeatable; default: the working folder)")
    prune_p.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")
    return parser


def main(argv: Sequence[str]) -> int:
    """``vidkompy cache info|prune ...``: print a report, return the exit code (0, 1 or 2)."""
    try:
        args = _parser().parse_args(list(argv))
    except _UsageError as exc:
        print(f"vidkompy: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    # Issue 20: the default folder of a machine that never ran vidkompy is an empty cache; a folder the
    # user names must hold a store, or a typo would look like an empty cache.
    unused_ok = not args.cache_dir
    root = args.cache_dir or default_cache_dir()
    try:
        if args.action == "info":
            print(format_info(cache_info(root, unused_ok=unused_ok)))
            return 0
        report = prune(root, older_than_days=args.older_than, max_size_bytes=args.max_size,
                       output_dirs=args.output_dir or [os.getcwd()], dry_run=args.dry_run, unused_ok=unused_ok)
    except VidkompyError as exc:
        print(f"vidkompy: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(format_prune(report))
    if report.failed:
        print(f"vidkompy: error: could not remove {len(report.failed)} item(s)", file=sys.stderr)
        return 1
    return 0
