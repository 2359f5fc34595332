"""`vidkompy cache info|prune` on stores built by hand: exact counts, exactly what goes and what stays.

The scan and the prune are `vidkompy.store.admin`'s; the text and the exit codes `vidkompy._cli.cache`'s.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zarr

from vidkompy._cli.cache import format_info, format_prune
from vidkompy._cli.cache import main as cache_main
from vidkompy.errors import InputError
from vidkompy.store.admin import CacheInfo, PruneReport, Removal, StageInfo, Usage, cache_info, prune
from vidkompy.store.artifacts import Store

DAY = 86400.0
NOW = time.time()


def key(name: str) -> str:
    return hashlib.md5(name.encode()).hexdigest()


def set_age(path: Path, days: float, *, atime_days: float | None = None) -> None:
    """Every file and folder under ``path`` last modified ``days`` ago (read ``atime_days`` ago)."""
    mtime = NOW - days * DAY
    atime = mtime if atime_days is None else NOW - atime_days * DAY
    for p in [*path.rglob("*"), path] if path.is_dir() else [path]:
        os.utime(p, (atime, mtime))


def artifact(root: Path, stage: str, name: str, *, n: int = 1000, days: float = 0.0, suffix: str = "",
             atime_days: float | None = None) -> Path:
    """A real Zarr group at ROOT/STAGE/KEY{suffix}, marked complete, aged ``days``."""
    path = root / stage / f"{key(name)}{suffix}"
    group = zarr.open_group(store=zarr.storage.LocalStore(str(path)), mode="w")
    group.create_array("values", data=np.arange(n, dtype=np.uint8) % 251)
    group.attrs.update({"stage": stage, "complete": True} if not suffix else {"stage": stage})
    set_age(path, days, atime_days=atime_days)
    return path


def tmp_suffix(name: str) -> str:
    return f".tmp-{key('tmp' + name)}"


def size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def snapshot(*folders: Path) -> set[Path]:
    return {p for f in folders for p in f.rglob("*")}


def lock_file(root: Path, stage: str, name: str) -> Path:
    path = root / "locks" / f"{stage}-{key(name)}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


@contextlib.contextmanager
def held_by_another_process(*locks: Path) -> Iterator[None]:
    """filelock is re-entrant within a process: only another process shows a live run."""
    code = ("import sys, filelock\n"
            "held = [filelock.FileLock(p) for p in sys.argv[1:]]\n"
            "for lock in held: lock.acquire()\n"
            "print('held', flush=True)\n"
            "sys.stdin.read()\n")
    proc = subprocess.Popen([sys.executable, "-c", code, *map(str, locks)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        yield
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def part_file(folder: Path, output: str, *, hours: float) -> Path:
    """What vidkompy.media.paths.atomic_output leaves when its process is killed."""
    stem, ext = os.path.splitext(output)
    fd, name = tempfile.mkstemp(prefix=f".{stem}.", suffix=".part" + ext, dir=folder)
    os.write(fd, b"x" * 100)
    os.close(fd)
    t = NOW - hours * 3600
    os.utime(name, (t, t))
    return Path(name)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """decode: 2 complete + 1 partial; locate: 1 complete + 1 tmp; a future stage; locks; a file hash."""
    root = tmp_path / "cache"
    artifact(root, "decode", "d1", n=1000)
    artifact(root, "decode", "d2", n=3000)
    artifact(root, "decode", "d3", n=500, suffix=".partial")
    artifact(root, "locate", "l1", n=200)
    artifact(root, "locate", "l1", n=700, suffix=tmp_suffix("l1"))
    artifact(root, "warp", "w1", n=50)  # a stage this version does not know yet
    lock_file(root, "decode", "d1")
    (root / "filehash").mkdir()
    (root / "filehash" / "abc.txt").write_text("f" * 64)
    return root


# -- info -------------------------------------------------------------------------------------------


def test_info_counts_and_sizes_every_stage(store: Path) -> None:
    info = cache_info(store)
    d = lambda name, suffix="": size(store / "decode" / f"{key(name)}{suffix}")  # noqa: E731
    lo = lambda name, suffix="": size(store / "locate" / f"{key(name)}{suffix}")  # noqa: E731
    assert info.root == store
    assert info.stages == (
        StageInfo("decode", complete=Usage(2, d("d1") + d("d2")), partial=Usage(1, d("d3", ".partial"))),
        StageInfo("locate", complete=Usage(1, lo("l1")), tmp=Usage(1, lo("l1", tmp_suffix("l1")))),
        StageInfo("warp", complete=Usage(1, size(store / "warp" / key("w1")))),
    )
    assert info.locks == Usage(1, 0)
    assert info.filehash == Usage(1, 64)
    assert info.other == Usage()
    assert info.leftovers == Usage(2, d("d3", ".partial") + lo("l1", tmp_suffix("l1")))
    assert info.total_bytes == size(store)
    assert info.stage("dtw") == StageInfo("dtw")


def test_info_counts_stray_files_as_other_and_ignores_unrelated_folders(store: Path) -> None:
    (store / "decode" / "notes.txt").write_text("12345")
    (store / "photos").mkdir()
    (store / "photos" / "cat.jpg").write_bytes(b"j" * 10)
    info = cache_info(store)
    assert [s.stage for s in info.stages] == ["decode", "locate", "warp"]
    assert info.other == Usage(2, 15)
    assert info.total_bytes == size(store)


@pytest.mark.parametrize("folders", [["decode"], ["locks"], ["filehash"], ["segment"]])
def test_one_store_folder_makes_a_store(tmp_path: Path, folders: list[str]) -> None:
    for name in folders:
        (tmp_path / name).mkdir()
    assert cache_info(tmp_path).total_bytes == 0


def not_a_store(tmp_path: Path, kind: str) -> Path:
    if kind == "missing":
        return tmp_path / "nowhere"
    if kind == "file":
        path = tmp_path / "file.bin"
        path.write_bytes(b"data")
        return path
    path = tmp_path / "videos"
    path.mkdir()
    if kind == "folder":
        artifact(path, "clips", "c1")  # KEY groups, but under no store folder name at the root
    return path


@pytest.mark.parametrize("kind", ["missing", "file", "empty", "folder"])
def test_info_on_a_non_store_is_an_input_error(tmp_path: Path, kind: str) -> None:
    with pytest.raises(InputError, match="is not a vidkompy cache") as err:
        cache_info(not_a_store(tmp_path, kind))
    assert err.value.exit_code == 2


# -- prune ------------------------------------------------------------------------------------------


def test_prune_without_limits_sweeps_only_leftovers(store: Path) -> None:
    report = prune(store)
    assert [(r.path, r.kind, r.reason) for r in report.removed] == [
        (store / "decode" / f"{key('d3')}.partial", "partial", "leftover"),
        (store / "locate" / f"{key('l1')}{tmp_suffix('l1')}", "tmp", "leftover"),
    ]
    assert sorted(p.name for p in (store / "decode").iterdir()) == sorted([key("d1"), key("d2")])
    assert [p.name for p in (store / "locate").iterdir()] == [key("l1")]
    assert report.locked == report.failed == ()
    assert report.bytes_after == size(store)
    assert report.bytes_before == report.bytes_after + sum(r.bytes for r in report.removed)


def test_older_than_removes_exactly_the_artifacts_unused_that_long(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    old = artifact(root, "embed", "old", days=40)
    recent = artifact(root, "embed", "recent", days=10)
    read_lately = artifact(root, "embed", "read", days=40, atime_days=2)  # written long ago, a cache hit since
    report = prune(root, older_than_days=30)
    assert [(r.path, r.kind, r.reason) for r in report.removed] == [(old, "artifact", "older-than")]
    assert not old.exists() and recent.exists() and read_lately.exists()
    assert sorted(p.name for p in (root / "embed").iterdir()) == sorted([key("recent"), key("read")])


def test_max_size_removes_least_recently_used_first_until_it_fits(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    a = artifact(root, "dtw", "a", n=4000, days=5)
    b = artifact(root, "index", "b", n=4000, days=3)
    c = artifact(root, "dtw", "c", n=4000, days=1)
    limit = size(c) + size(b) - 1  # b and c no longer fit together
    report = prune(root, max_size_bytes=limit)
    assert [(r.path, r.reason) for r in report.removed] == [(a, "max-size"), (b, "max-size")]
    assert c.exists() and not a.exists() and not b.exists()
    assert report.bytes_after == size(root) <= limit


def test_older_than_then_max_size(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    a = artifact(root, "dtw", "a", n=4000, days=50)
    b = artifact(root, "dtw", "b", n=4000, days=3)
    c = artifact(root, "dtw", "c", n=4000, days=1)
    report = prune(root, older_than_days=30, max_size_bytes=size(c))
    assert [(r.path, r.reason) for r in report.removed] == [(a, "older-than"), (b, "max-size")]
    assert c.exists()


def test_nothing_a_live_run_holds_a_lock_on_is_touched(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    partial = artifact(root, "spatial", "p", suffix=".partial")
    tmp = artifact(root, "spatial", "t", suffix=tmp_suffix("t"))
    old = artifact(root, "spatial", "o", days=100)
    lru = artifact(root, "spatial", "lru", n=5000, days=20)
    free = artifact(root, "spatial", "free", n=5000, days=10)
    kept = artifact(root, "spatial", "kept", n=100, days=1)
    locks = [lock_file(root, "spatial", n) for n in ("p", "t", "o", "lru")]
    limit = size(root) - size(free)  # fits once free goes: kept must stay
    with held_by_another_process(*locks):
        report = prune(root, older_than_days=30, max_size_bytes=limit)
        assert set(report.locked) == {partial, tmp, old, lru}
        assert [(r.path, r.reason) for r in report.removed] == [(free, "max-size")]
        assert all(p.exists() for p in (partial, tmp, old, lru, kept)) and not free.exists()
        assert all(lock.exists() for lock in locks)
    after = prune(root, older_than_days=30)  # the run is gone: its partial and tmp are leftovers now
    assert {r.path for r in after.removed} == {partial, tmp, old}
    assert after.locked == ()


def test_prune_keeps_what_a_run_computes_under_the_stores_own_lock(tmp_path: Path) -> None:
    """The lock prune takes is the very file `Store.lock` holds: a run and a prune never both hold a key."""
    root = tmp_path / "cache"
    busy = artifact(root, "embed", "busy", days=100)
    code = ("import sys\n"
            "from vidkompy.store.artifacts import Store\n"
            "with Store(sys.argv[1]).lock(sys.argv[2], sys.argv[3]):\n"
            "    print('held', flush=True)\n"
            "    sys.stdin.read()\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(root), "embed", key("busy")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert proc.stdout.readline().strip() == "held"
        report = prune(root, older_than_days=30)
        assert report.locked == (busy,) and report.removed == ()
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
    assert [r.path for r in prune(root, older_than_days=30).removed] == [busy]


def test_lock_files_are_kept_and_made_for_what_prune_removes(store: Path) -> None:
    prune(store, older_than_days=0)
    names = ["decode-d1", "decode-d2", "decode-d3", "locate-l1", "warp-w1"]
    expected = {f"{n.split('-')[0]}-{key(n.split('-')[1])}.lock" for n in names}
    assert {p.name for p in (store / "locks").iterdir()} == expected


def test_prune_removes_whole_groups_and_leaves_no_tmp_folder(store: Path) -> None:
    prune(store, older_than_days=0)
    for stage in ("decode", "locate", "warp"):
        assert list((store / stage).iterdir()) == []
    # an unknown folder is a stage only while it holds artifacts
    assert cache_info(store).stages == (StageInfo("decode"), StageInfo("locate"))


def test_part_files_of_killed_runs_are_swept_only_when_old(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    killed = part_file(out, "a.mp4", hours=2)
    killed_no_ext = part_file(out, "b", hours=2)
    running = part_file(out, "c.mp4", hours=0.1)
    finished = out / "a.mp4"
    finished.write_bytes(b"v")
    lookalikes = [out / ".a.part.mp4", out / "a.abcdefgh.part.mp4", out / ".notes.txt"]
    for p in [finished, *lookalikes]:
        p.write_bytes(b"v")
        set_age(p, 1)
    report = prune(store, output_dirs=[out])
    parts = [(r.path, r.kind, r.bytes) for r in report.removed if r.kind == "part-file"]
    assert sorted(parts) == sorted([(killed, "part-file", 100), (killed_no_ext, "part-file", 100)])
    assert sorted(out.iterdir()) == sorted([running, finished, *lookalikes])
    assert report.bytes_after == size(store)  # .part files are not the store's bytes


def test_dry_run_reports_what_prune_would_do_and_changes_nothing(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    part_file(out, "a.mp4", hours=2)
    set_age(store / "decode" / key("d1"), 60)
    before = snapshot(store, out)
    dry = prune(store, older_than_days=30, max_size_bytes=0, output_dirs=[out], dry_run=True)
    assert snapshot(store, out) == before
    real = prune(store, older_than_days=30, max_size_bytes=0, output_dirs=[out])
    assert dry.dry_run and not real.dry_run
    assert dry.removed == real.removed
    assert (dry.bytes_before, dry.bytes_after) == (real.bytes_before, real.bytes_after)


@pytest.mark.parametrize("kind", ["missing", "file", "empty", "folder"])
def test_prune_on_a_non_store_removes_nothing(tmp_path: Path, kind: str) -> None:
    out = tmp_path / "out"
    out.mkdir()
    part_file(out, "a.mp4", hours=5)
    path = not_a_store(tmp_path, kind)
    before = snapshot(tmp_path)
    with pytest.raises(InputError, match="is not a vidkompy cache"):
        prune(path, older_than_days=0, max_size_bytes=0, output_dirs=[out])
    assert snapshot(tmp_path) == before


def test_prune_with_a_missing_output_dir_removes_nothing(store: Path, tmp_path: Path) -> None:
    before = snapshot(store)
    with pytest.raises(InputError, match="is not a folder"):
        prune(store, older_than_days=0, output_dirs=[tmp_path / "no-such-dir"])
    assert snapshot(store) == before


# -- printing ---------------------------------------------------------------------------------------


def test_format_info() -> None:
    info = CacheInfo(Path("/c"), (StageInfo("decode", Usage(2, 1_500_000), Usage(1, 800)),
                                  StageInfo("dtw", Usage(10, 2_000_000_000), tmp=Usage(3, 12_000))),
                     locks=Usage(4, 0), filehash=Usage(2, 128))
    assert format_info(info).splitlines() == [
        "cache /c",
        "stage   artifacts    size  partial   size  tmp     size",
        "decode          2  1.5 MB        1  800 B    0      0 B",
        "dtw            10  2.0 GB        0    0 B    3  12.0 kB",
        "partial artifacts and leftovers of killed runs: 4 (12.8 kB)",
        "locks: 4, file hashes: 2, other files: 0",
        "total: 2.0 GB",
    ]


def test_format_prune() -> None:
    removed = (Removal(Path("/c/decode/k1"), "artifact", "older-than", 2_000_000),
               Removal(Path("/c/decode/k2"), "artifact", "older-than", 1_000_000),
               Removal(Path("/c/dtw/k3.partial"), "partial", "leftover", 500),
               Removal(Path("/o/.a.x.part.mp4"), "part-file", "leftover", 100))
    report = PruneReport(Path("/c"), False, 5_000_000, 2_000_000, removed, locked=(Path("/c/dtw/k4"),))
    assert format_prune(report).splitlines() == [
        "removed 2 artifact(s) not used within --older-than: 3.0 MB",
        "removed 1 .part output file(s) of killed runs: 100 B",
        "removed 1 partial artifact(s): 500 B",
        "kept /c/dtw/k4: a running vidkompy holds its lock",
        "cache /c: 5.0 MB -> 2.0 MB",
    ]
    dry = format_prune(PruneReport(Path("/c"), True, 10, 10, removed[2:3]))
    assert dry.splitlines() == [
        "would remove /c/dtw/k3.partial (partial, leftover, 500 B)",
        "would remove 1 partial artifact(s): 500 B",
        "cache /c: 10 B -> 10 B",
    ]


# -- command line -----------------------------------------------------------------------------------


def test_cache_main_info(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cache_main(["info", "--cache-dir", str(store)]) == 0
    out = capsys.readouterr().out
    assert out == format_info(cache_info(store)) + "\n"


def test_cache_main_info_uses_the_default_cache_dir(store: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VIDKOMPY_CACHE_DIR", str(store))
    assert cache_main(["info"]) == 0
    assert capsys.readouterr().out.startswith(f"cache {store}\n")


def test_cache_main_prune(store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    killed = part_file(tmp_path, "x.mp4", hours=3)
    set_age(store / "decode" / key("d1"), 9)
    assert cache_main(["prune", "--cache-dir", str(store), "--older-than", "7", "--dry-run"]) == 0
    assert killed.exists() and (store / "decode" / key("d1")).exists()
    assert cache_main(["prune", "--cache-dir", str(store), "--older-than", "7", "--max-size", "1e-9"]) == 0
    out = capsys.readouterr().out
    assert "removed 1 artifact(s) not used within --older-than" in out
    assert not killed.exists()  # the working folder is swept by default
    assert sum(s.complete.count for s in cache_info(store).stages) == 0  # 1 byte: no artifact fits


@pytest.mark.parametrize("argv, message", [
    ([], "the following arguments are required: {info,prune}"),
    (["purge"], "invalid choice: 'purge'"),
    (["prune", "--older-than", "-1"], "argument --older-than: expected a number of days >= 0, not '-1'"),
    (["prune", "--older-than", "nan"], "argument --older-than: expected a number of days >= 0, not 'nan'"),
    (["prune", "--max-size", "lots"], "argument --max-size: expected a size in GB >= 0, not 'lots'"),
    (["info", "--older-than", "3"], "unrecognized arguments: --older-than 3"),
])
def test_bad_arguments_exit_2_with_one_line(store: Path, argv: list[str], message: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot(store)
    assert cache_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("vidkompy: error: ") and message in err and err.count("\n") == 1
    assert snapshot(store) == before


@pytest.mark.parametrize("kind", ["missing", "file", "empty", "folder"])
@pytest.mark.parametrize("action", ["info", "prune"])
def test_cache_main_on_a_non_store_exits_2_and_removes_nothing(tmp_path: Path, kind: str, action: str,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    part_file(tmp_path, "a.mp4", hours=5)
    path = not_a_store(tmp_path, kind)
    before = snapshot(tmp_path)
    extra = ["--older-than", "0", "--max-size", "0"] if action == "prune" else []
    assert cache_main([action, "--cache-dir", str(path), *extra]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"vidkompy: error: {path}: is not a vidkompy cache")
    assert captured.err.count("\n") == 1
    assert snapshot(tmp_path) == before


# -- a machine where vidkompy never ran (issue 20) --------------------------------------------------


def _default_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str) -> Path:
    """A fresh HOME, and the default cache folder as `default_cache_dir` finds it from ``source``."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("VIDKOMPY_CACHE_DIR", raising=False)
    monkeypatch.chdir(tmp_path)  # prune sweeps the working folder
    if source == "xdg":
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        return tmp_path / "xdg" / "vidkompy"
    if source == "env":
        monkeypatch.setenv("VIDKOMPY_CACHE_DIR", str(tmp_path / "env-cache"))
        return tmp_path / "env-cache"
    return home / ".cache" / "vidkompy"


SOURCES = ["home", "xdg", "env"]
EMPTY = "cache {}: empty (no run has stored anything in it yet)"


@pytest.mark.parametrize("source", SOURCES)
def test_info_on_the_default_cache_before_any_run_says_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str], source: str) -> None:
    default = _default_cache(tmp_path, monkeypatch, source)
    assert cache_main(["info"]) == 0
    assert capsys.readouterr() == (EMPTY.format(default) + "\n", "")
    assert not default.exists()


@pytest.mark.parametrize("dry_run", [False, True])
@pytest.mark.parametrize("source", SOURCES)
def test_prune_on_the_default_cache_before_any_run_has_nothing_to_do(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], source: str,
        dry_run: bool) -> None:
    default = _default_cache(tmp_path, monkeypatch, source)
    before = snapshot(tmp_path)
    assert cache_main(["prune", "--older-than", "0", "--max-size", "0", *(["--dry-run"] if dry_run else [])]) == 0
    verb = "would remove" if dry_run else "removed"
    assert capsys.readouterr() == (f"{verb} nothing\n{EMPTY.format(default)}\n", "")
    assert snapshot(tmp_path) == before  # the cache folder is not made, nor anything else


def test_the_default_cache_a_run_left_empty_is_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A run that stops before its first stage (no GPU for --gpu) leaves only what Store.open's write test made."""
    default = _default_cache(tmp_path, monkeypatch, "home")
    Store.open()
    assert default.is_dir() and not any(default.iterdir())
    assert cache_main(["info"]) == 0
    assert cache_main(["prune"]) == 0
    assert capsys.readouterr().out.splitlines() == [EMPTY.format(default), "removed nothing", EMPTY.format(default)]


@pytest.mark.parametrize("action", ["info", "prune"])
def test_a_default_cache_folder_holding_something_else_is_still_an_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], action: str) -> None:
    default = _default_cache(tmp_path, monkeypatch, "home")
    default.mkdir(parents=True)
    (default / "notes.txt").write_text("mine")
    assert cache_main([action]) == 2
    assert capsys.readouterr().err.startswith(f"vidkompy: error: {default}: is not a vidkompy cache (none of ")


@pytest.mark.parametrize("kind", ["missing", "empty"])
@pytest.mark.parametrize("action", ["info", "prune"])
def test_a_cache_dir_given_must_hold_a_store_even_where_the_default_is(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], action: str,
        kind: str) -> None:
    """Naming the folder says it should be there: a typo must not look like an empty cache."""
    default = _default_cache(tmp_path, monkeypatch, "home")
    if kind == "empty":
        default.mkdir(parents=True)
    assert cache_main([action, "--cache-dir", str(default)]) == 2
    reason = "no such folder" if kind == "missing" else "none of "
    assert capsys.readouterr().err.startswith(f"vidkompy: error: {default}: is not a vidkompy cache ({reason}")


def test_an_unused_cache_is_empty_and_prune_still_sweeps_the_output_folders(tmp_path: Path) -> None:
    root = tmp_path / "never"
    out = tmp_path / "out"
    out.mkdir()
    killed = part_file(out, "a.mp4", hours=2)
    assert cache_info(root, unused_ok=True) == CacheInfo(root, (), unused=True)
    report = prune(root, older_than_days=0, max_size_bytes=0, output_dirs=[out], unused_ok=True)
    assert report == PruneReport(root, False, 0, 0, (Removal(killed, "part-file", "leftover", 100),), unused=True)
    assert not killed.exists() and not root.exists()
