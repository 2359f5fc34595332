"""`vidkompy cache info|prune`: what the artifact store holds, and making it smaller.

The store's layout (see :mod:`vidkompy.store`)::

    ROOT/STAGE/KEY/               a complete artifact (a Zarr group)
    ROOT/STAGE/KEY.partial/       an artifact being written, resumable, never a result
    ROOT/STAGE/KEY.tmp-<32 hex>/  what a killed run left behind, never a result
    ROOT/locks/STAGE-KEY.lock     held by the run that computes STAGE/KEY
    ROOT/filehash/*.txt           memoised file hashes

Decisions, and why:

- Classification is by name only and sizes come from ``os.scandir`` (apparent sizes, ``st_size``):
  no file of an artifact is ever opened, so a scan is cheap and does not itself look like a use.
- An artifact's last use is the newest ``max(atime, mtime)`` of its files. A cache hit only reads, so
  mtime alone is the creation time and would evict the artifacts used most; on Linux's default
  ``relatime`` a read moves atime at least once a day, which is what ``--older-than DAYS`` needs, and on a
  ``noatime`` mount atime stays at the write, so this falls back to mtime. Anything else that reads the
  files (a backup) can only make an artifact look used: prune keeps too much, never too little.
- Nothing keyed is removed unless this process holds ``locks/STAGE-KEY.lock`` (taken non-blocking,
  created as :meth:`Store.lock <vidkompy.store.Store.lock>` would), and it is held through the removal:
  a run that wants the key waits for the removal to end, then computes it afresh. A lock another
  process holds means: leave it alone, report it.
- An artifact (or partial) is removed by renaming it to ``KEY.tmp-<hex>`` first, then deleting that
  folder: the rename is atomic, so a reader sees the whole group or no group, never half of one, and a
  prune killed mid-delete leaves an ordinary leftover that the next prune sweeps. (Deleting the
  ``complete`` marker first would need a rewrite of ``zarr.json``, and a killed prune would leave a
  markerless folder under the key.)
- Lock files are never removed: they are empty, and unlinking a lock file a waiter has already opened
  lets two runs hold "the" lock at once with lock libraries that do not re-check the inode.
- ``filehash/`` is reported, not pruned: a memo deleted between the store's ``is_file()`` and its read
  would crash a run, for a few bytes saved.
- Hidden ``.NAME.xxxxxxxx.part.EXT`` files (:func:`vidkompy.composite.atomic_output`) are swept only in
  the folders given, only when untouched for the grace period: a live encoder moves the mtime with
  every packet it writes, a killed one stops.
- ``--max-size`` is in GB of 10**9 bytes, measured over every file under the root.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from vidkompy.errors import InputError, SettingsError, VidkompyError
from vidkompy.store import default_cache_dir

KNOWN_STAGES = ("decode", "locate", "embed", "index", "dtw", "spatial", "segment")
LOCKS, FILEHASH = "locks", "filehash"
STORE_FOLDERS = (*KNOWN_STAGES, LOCKS, FILEHASH)
PART_GRACE_SECONDS = 3600.0
DAY = 86400.0
GB = 10**9

_ENTRY = re.compile(r"^(?P<key>[0-9a-f]{32})(?:(?P<partial>\.partial)|\.tmp-(?P<tmp>[0-9a-f]{32}))?$")
# tempfile.mkstemp(prefix=f".{stem}.", suffix=".part" + ext): 8 characters from its own alphabet.
_PART_FILE = re.compile(r"^\..+\.[a-z0-9_]{8}\.part(\.[^.]+)?$")


# -- reports --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """How many things, and their size in bytes."""

    count: int = 0
    bytes: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.count + other.count, self.bytes + other.bytes)


@dataclass(frozen=True)
class StageInfo:
    """One stage folder: complete artifacts, artifacts being written, leftovers of killed runs."""

    stage: str
    complete: Usage = Usage()
    partial: Usage = Usage()
    tmp: Usage = Usage()

    @property
    def total(self) -> Usage:
        return self.complete + self.partial + self.tmp


@dataclass(frozen=True)
class CacheInfo:
    """What :func:`cache_info` found under ``root``."""

    root: Path
    stages: tuple[StageInfo, ...]  # sorted by name
    locks: Usage = Usage()  # lock files (empty)
    filehash: Usage = Usage()  # memoised file hashes
    other: Usage = Usage()  # any other file under the root

    @property
    def leftovers(self) -> Usage:
        """Partial artifacts and tmp folders: what killed (or running) runs left."""
        return sum((s.partial + s.tmp for s in self.stages), Usage())

    @property
    def total_bytes(self) -> int:
        return sum(s.total.bytes for s in self.stages) + self.locks.bytes + self.filehash.bytes + self.other.bytes

    def stage(self, name: str) -> StageInfo:
        """The stage called ``name``; an empty one when the store has none."""
        return next((s for s in self.stages if s.stage == name), StageInfo(name))


@dataclass(frozen=True)
class Removal:
    """One thing prune removed (or, on a dry run, would remove)."""

    path: Path
    kind: str  # "artifact" | "partial" | "tmp" | "part-file"
    reason: str  # "older-than" | "max-size" | "leftover"
    bytes: int


@dataclass(frozen=True)
class Failure:
    path: Path
    problem: str


@dataclass(frozen=True)
class PruneReport:
    """What :func:`prune` did. Byte counts are the store's; ``.part`` files are outside it."""

    root: Path
    dry_run: bool
    bytes_before: int
    bytes_after: int
    removed: tuple[Removal, ...] = ()
    locked: tuple[Path, ...] = ()  # left alone: another process holds its lock
    failed: tuple[Failure, ...] = ()


# -- scanning -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    stage: str
    key: str
    kind: str  # "complete" | "partial" | "tmp"
    path: Path
    bytes: int
    last_use: float


@dataclass
class _Scan:
    entries: list[_Entry] = field(default_factory=list)
    stages: set[str] = field(default_factory=set)
    locks: Usage = Usage()
    filehash: Usage = Usage()
    other: Usage = Usage()


def _walk(path: str) -> tuple[int, int, float]:
    """(files, bytes, newest max(atime, mtime) of a file) under ``path``; symlinks are not followed."""
    files = size = 0
    newest = -math.inf
    try:
        entries = list(os.scandir(path))
    except (FileNotFoundError, NotADirectoryError):
        return 0, 0, newest
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):
                f, b, t = _walk(entry.path)
                files, size, newest = files + f, size + b, max(newest, t)
            else:
                st = entry.stat(follow_symlinks=False)
                files, size = files + 1, size + st.st_size
                newest = max(newest, st.st_atime, st.st_mtime)
        except FileNotFoundError:
            continue  # removed while we looked: a run finishing or another prune
    return files, size, newest


def _store_root(root: str | os.PathLike[str]) -> Path:
    """``root`` as a local folder, or InputError when it is not a vidkompy cache."""
    text = os.fspath(root)
    if "://" in text and not text.startswith("file://"):
        raise InputError(text, "is not a local folder: cache info and prune work on a local cache only")
    path = Path(text.removeprefix("file://")).expanduser()
    if not path.exists():
        raise InputError(path, "is not a vidkompy cache (no such folder)")
    if not path.is_dir():
        raise InputError(path, "is not a vidkompy cache (not a folder)")
    if not any((path / name).is_dir() for name in STORE_FOLDERS):
        raise InputError(path, f"is not a vidkompy cache (none of {', '.join(STORE_FOLDERS)} in it)")
    return path


def _scan(root: Path) -> _Scan:
    scan = _Scan()
    for top in sorted(os.scandir(root), key=lambda e: e.name):
        if not top.is_dir(follow_symlinks=False):
            scan.other += _file_usage(top)
            continue
        if top.name in (LOCKS, FILEHASH):
            files, size, _ = _walk(top.path)
            usage = Usage(files, size)
            if top.name == LOCKS:
                scan.locks += usage
            else:
                scan.filehash += usage
            continue
        children = sorted(os.scandir(top.path), key=lambda e: e.name)
        matches = [(c, m) for c in children if c.is_dir(follow_symlinks=False) and (m := _ENTRY.match(c.name))]
        if top.name not in KNOWN_STAGES and not matches:
            files, size, _ = _walk(top.path)
            scan.other += Usage(files, size)
            continue
        scan.stages.add(top.name)
        matched = {c.name for c, _ in matches}
        for child in children:
            if child.name in matched:
                continue
            if child.is_dir(follow_symlinks=False):
                files, size, _ = _walk(child.path)
                scan.other += Usage(files, size)
            else:
                scan.other += _file_usage(child)
        for child, m in matches:
            files, size, newest = _walk(child.path)
            if files == 0:
                with contextlib.suppress(FileNotFoundError):
                    newest = child.stat(follow_symlinks=False).st_mtime
            kind = "partial" if m["partial"] else "tmp" if m["tmp"] else "complete"
            scan.entries.append(_Entry(top.name, m["key"], kind, Path(child.path), size, newest))
    return scan


def _file_usage(entry: os.DirEntry[str]) -> Usage:
    try:
        return Usage(1, entry.stat(follow_symlinks=False).st_size)
    except FileNotFoundError:
        return Usage()


def cache_info(root: str | os.PathLike[str]) -> CacheInfo:
    """Count and size per stage of complete artifacts, partial artifacts and leftovers of killed runs.

    Parameters
    ----------
    root
        The cache folder (``--cache-dir``).

    Raises
    ------
    InputError
        ``root`` is missing, not a folder, or holds none of the store's folders.
    """
    path = _store_root(root)
    scan = _scan(path)
    usage: dict[tuple[str, str], Usage] = {}
    for e in scan.entries:
        usage[e.stage, e.kind] = usage.get((e.stage, e.kind), Usage()) + Usage(1, e.bytes)
    stages = tuple(
        StageInfo(name, *(usage.get((name, kind), Usage()) for kind in ("complete", "partial", "tmp")))
        for name in sorted(scan.stages)
    )
    return CacheInfo(path, stages, scan.locks, scan.filehash, scan.other)


# -- pruning --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _holding(lock_path: Path, *, create: bool) -> Iterator[bool]:
    """True while this process holds ``lock_path``; False when another process does.

    ``create=False`` (a dry run) only probes: a missing lock file is one nobody holds.
    """
    if not create and not lock_path.exists():
        yield True
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def _delete(entry: _Entry) -> bool:
    """Remove one store entry; False when it was already gone."""
    if entry.kind == "tmp":
        doomed = entry.path
    else:
        doomed = entry.path.with_name(f"{entry.key}.tmp-{uuid.uuid4().hex}")
        try:
            os.rename(entry.path, doomed)
        except FileNotFoundError:
            return False  # finished or removed since the scan
    try:
        shutil.rmtree(doomed)
    except FileNotFoundError:
        return entry.kind != "tmp"
    return True


def _part_files(folder: Path, cutoff: float) -> list[tuple[Path, int]]:
    found = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if not _PART_FILE.match(entry.name) or not entry.is_file(follow_symlinks=False):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if st.st_mtime < cutoff:
            found.append((Path(entry.path), st.st_size))
    return found


def prune(
    root: str | os.PathLike[str],
    *,
    older_than_days: float | None = None,
    max_size_bytes: int | None = None,
    output_dirs: Iterable[str | os.PathLike[str]] = (),
    now: float | None = None,
    dry_run: bool = False,
    part_grace_seconds: float = PART_GRACE_SECONDS,
) -> PruneReport:
    """Sweep leftovers of killed runs, then drop artifacts unused for a while or over a size.

    In order: every ``KEY.partial`` and ``KEY.tmp-*`` folder; complete artifacts last used more than
    ``older_than_days`` ago; then, least recently used first, complete artifacts until the store is at
    most ``max_size_bytes``; then hidden ``.part`` outputs untouched for ``part_grace_seconds`` directly
    in each of ``output_dirs``. Anything whose ``locks/STAGE-KEY.lock`` another process holds is kept.

    Parameters
    ----------
    root
        The cache folder.
    older_than_days, max_size_bytes
        Limits; None means no limit of that kind.
    output_dirs
        Folders to sweep for ``atomic_output`` temporaries.
    now
        Seconds since the epoch to measure ages from (default: the clock).
    dry_run
        Report what would go; change nothing.

    Raises
    ------
    InputError
        ``root`` is not a vidkompy cache, or an output folder is not a folder; nothing is removed.
    SettingsError
        A negative limit.
    """
    path = _store_root(root)
    if older_than_days is not None and not older_than_days >= 0:
        raise SettingsError(f"--older-than must be a number of days >= 0, not {older_than_days}")
    if max_size_bytes is not None and not max_size_bytes >= 0:
        raise SettingsError(f"--max-size must be >= 0, not {max_size_bytes}")
    folders = [Path(d) for d in output_dirs]
    for folder in folders:
        if not folder.is_dir():
            raise InputError(folder, "is not a folder (where to sweep .part files)")
    now = time.time() if now is None else now

    scan = _scan(path)
    before = sum(e.bytes for e in scan.entries) + scan.locks.bytes + scan.filehash.bytes + scan.other.bytes
    size = before
    removed: list[Removal] = []
    locked: list[Path] = []
    failed: list[Failure] = []

    def attempt(entry: _Entry, reason: str) -> bool:
        nonlocal size
        kind = "artifact" if entry.kind == "complete" else entry.kind
        try:
            with _holding(path / LOCKS / f"{entry.stage}-{entry.key}.lock", create=not dry_run) as mine:
                if not mine:
                    locked.append(entry.path)
                    return False
                if not dry_run and not _delete(entry):
                    return False
        except OSError as exc:
            failed.append(Failure(entry.path, exc.strerror or str(exc)))
            return False
        removed.append(Removal(entry.path, kind, reason, entry.bytes))
        size -= entry.bytes
        return True

    complete = [e for e in scan.entries if e.kind == "complete"]
    for entry in scan.entries:
        if entry.kind != "complete":
            attempt(entry, "leftover")
    tried: set[Path] = set()
    if older_than_days is not None:
        cutoff = now - older_than_days * DAY
        for entry in complete:
            if entry.last_use < cutoff:
                tried.add(entry.path)
                attempt(entry, "older-than")
    if max_size_bytes is not None:
        for entry in sorted(complete, key=lambda e: (e.last_use, e.stage, e.key)):
            if size <= max_size_bytes:
                break
            if entry.path not in tried:
                attempt(entry, "max-size")

    for folder in folders:
        for part, nbytes in _part_files(folder, now - part_grace_seconds):
            try:
                if not dry_run:
                    part.unlink()
            except FileNotFoundError:
                continue
            except OSError as exc:
                failed.append(Failure(part, exc.strerror or str(exc)))
                continue
            removed.append(Removal(part, "part-file", "leftover", nbytes))

    return PruneReport(path, dry_run, before, size, tuple(removed), tuple(locked), tuple(failed))


# -- printing -------------------------------------------------------------------------------------


def format_size(n: int) -> str:
    """Decimal units, as ``--max-size`` counts them: 1 GB = 10**9 bytes."""
    for unit, scale in (("GB", GB), ("MB", 10**6), ("kB", 10**3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def format_info(info: CacheInfo) -> str:
    """A plain-text table: one row per stage, then leftovers and the total."""
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


def cache_main(argv: Sequence[str]) -> int:
    """``vidkompy cache info|prune ...``: print a report, return the exit code (0, 1 or 2)."""
    try:
        args = _parser().parse_args(list(argv))
    except _UsageError as exc:
        print(f"vidkompy: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else 0
    root = args.cache_dir or default_cache_dir()
    try:
        if args.action == "info":
            print(format_info(cache_info(root)))
            return 0
        report = prune(root, older_than_days=args.older_than, max_size_bytes=args.max_size,
                       output_dirs=args.output_dir or [os.getcwd()], dry_run=args.dry_run)
    except VidkompyError as exc:
        print(f"vidkompy: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(format_prune(report))
    if report.failed:
        print(f"vidkompy: error: could not remove {len(report.failed)} item(s)", file=sys.stderr)
        return 1
    return 0
