"""What the artifact store holds (`cache_info`), and making it smaller (`prune`): ``vidkompy cache info|prune``.

Scanning, pruning and their reports only; the command line that prints them is :mod:`vidkompy._cli.cache`.
Every name this module recognises on disk is :mod:`vidkompy.store.layout`'s, the same the store writes.

Decisions, and why:

- Classification is by name only and sizes come from ``os.scandir`` (apparent sizes, ``st_size``):
  no file of an artifact is ever opened, so a scan is cheap and does not itself look like a use.
- An artifact's last use is the newest ``max(atime, mtime)`` of its files. A cache hit only reads, so
  mtime alone is the creation time and would evict the artifacts used most; on Linux's default
  ``relatime`` a read moves atime at least once a day, which is what ``--older-than DAYS`` needs, and on a
  ``noatime`` mount atime stays at the write, so this falls back to mtime. Anything else that reads the
  files (a backup) can only make an artifact look used: prune keeps too much, never too little.
- Nothing keyed is removed unless this process holds ``locks/STAGE-KEY.lock`` (taken non-blocking,
  created as :meth:`Store.lock <vidkompy.store.artifacts.Store.lock>` would), and it is held through the removal:
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
- Hidden ``.NAME.xxxxxxxx.part.EXT`` files (:func:`vidkompy.media.paths.atomic_output`) are swept only in
  the folders given, only when untouched for the grace period: a live encoder moves the mtime with
  every packet it writes, a killed one stops.
- ``--max-size`` is in GB of 10**9 bytes, measured over every file under the root.
- The default cache folder of a machine where vidkompy never stored anything (it does not exist yet, or
  ``Store.open``'s write test left it empty) is an empty cache, not an error (``unused_ok``). A folder the
  user names stays an error unless it holds a store: a typo must not look like an empty cache.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from vidkompy.errors import InputError, SettingsError
from vidkompy.store import layout
from vidkompy.store.layout import EntryKind

PART_GRACE_SECONDS = 3600.0
DAY = 86400.0


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
    unused: bool = False  # no run stored anything here yet: the (default) folder is missing or empty

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
    unused: bool = False  # no run stored anything here yet: the (default) folder is missing or empty


# -- scanning -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    stage: str
    key: str
    kind: EntryKind
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


def _store_root(root: str | os.PathLike[str], *, unused_ok: bool) -> tuple[Path, bool]:
    """``root`` as a local folder, and whether no run has used it yet; InputError when it is not a vidkompy cache.

    ``unused_ok``: a folder that does not exist, or is empty, is a cache nothing was stored in yet.
    """
    text = os.fspath(root)
    if layout.is_url(text):
        raise InputError(text, "is not a local folder: cache info and prune work on a local cache only")
    path = layout.local_root(text)
    if not path.exists():
        if unused_ok:
            return path, True
        raise InputError(path, "is not a vidkompy cache (no such folder)")
    if not path.is_dir():
        raise InputError(path, "is not a vidkompy cache (not a folder)")
    if not any((path / name).is_dir() for name in layout.FOLDERS):
        if unused_ok and not any(path.iterdir()):
            return path, True
        raise InputError(path, f"is not a vidkompy cache (none of {', '.join(layout.FOLDERS)} in it)")
    return path, False


def _scan(root: Path) -> _Scan:
    scan = _Scan()
    for top in sorted(os.scandir(root), key=lambda e: e.name):
        if not top.is_dir(follow_symlinks=False):
            scan.other += _file_usage(top)
            continue
        if top.name in (layout.LOCKS, layout.FILEHASH):
            files, size, _ = _walk(top.path)
            usage = Usage(files, size)
            if top.name == layout.LOCKS:
                scan.locks += usage
            else:
                scan.filehash += usage
            continue
        children = sorted(os.scandir(top.path), key=lambda e: e.name)
        matches = [(c, e) for c in children if c.is_dir(follow_symlinks=False) and (e := layout.parse_entry(c.name))]
        if top.name not in layout.STAGES and not matches:
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
        for child, (key, kind) in matches:
            files, size, newest = _walk(child.path)
            if files == 0:
                with contextlib.suppress(FileNotFoundError):
                    newest = child.stat(follow_symlinks=False).st_mtime
            scan.entries.append(_Entry(top.name, key, kind, Path(child.path), size, newest))
    return scan


def _file_usage(entry: os.DirEntry[str]) -> Usage:
    try:
        return Usage(1, entry.stat(follow_symlinks=False).st_size)
    except FileNotFoundError:
        return Usage()


def cache_info(root: str | os.PathLike[str], *, unused_ok: bool = False) -> CacheInfo:
    """Count and size per stage of complete artifacts, partial artifacts and leftovers of killed runs.

    Parameters
    ----------
    root
        The cache folder (``--cache-dir``).
    unused_ok
        A ``root`` that does not exist, or is an empty folder, is an empty cache (``unused``):
        for the default cache folder, which no run may have made yet.

    Raises
    ------
    InputError
        ``root`` is missing, not a folder, or holds none of the store's folders (but see ``unused_ok``).
    """
    path, unused = _store_root(root, unused_ok=unused_ok)
    if unused:
        return CacheInfo(path, (), unused=True)
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
        doomed = entry.path.with_name(layout.aside(entry.key))
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
        if not layout.PART_FILE.match(entry.name) or not entry.is_file(follow_symlinks=False):
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
    unused_ok: bool = False,
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
    unused_ok
        A ``root`` that does not exist, or is an empty folder, is an empty cache (``unused``): nothing in
        it to remove, and it is not created. ``output_dirs`` are swept all the same.

    Raises
    ------
    InputError
        ``root`` is not a vidkompy cache (but see ``unused_ok``), or an output folder is not a folder;
        nothing is removed.
    SettingsError
        A negative limit.
    """
    path, unused = _store_root(root, unused_ok=unused_ok)
    if older_than_days is not None and not older_than_days >= 0:
        raise SettingsError(f"--older-than must be a number of days >= 0, not {older_than_days}")
    if max_size_bytes is not None and not max_size_bytes >= 0:
        raise SettingsError(f"--max-size must be >= 0, not {max_size_bytes}")
    folders = [Path(d) for d in output_dirs]
    for folder in folders:
        if not folder.is_dir():
            raise InputError(folder, "is not a folder (where to sweep .part files)")
    now = time.time() if now is None else now

    scan = _Scan() if unused else _scan(path)
    before = sum(e.bytes for e in scan.entries) + scan.locks.bytes + scan.filehash.bytes + scan.other.bytes
    size = before
    removed: list[Removal] = []
    locked: list[Path] = []
    failed: list[Failure] = []

    def attempt(entry: _Entry, reason: str) -> bool:
        nonlocal size
        kind = "artifact" if entry.kind == "complete" else entry.kind
        try:
            with _holding(path / layout.LOCKS / layout.lock_name(entry.stage, entry.key), create=not dry_run) as mine:
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

    return PruneReport(path, dry_run, before, size, tuple(removed), tuple(locked), tuple(failed), unused)
