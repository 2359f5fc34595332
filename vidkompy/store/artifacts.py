"""The Zarr artifact store: content-addressed keys, chunks written as they are made, complete-or-absent results.

Layout under ROOT (a folder or any fsspec URL, e.g. ``s3://bucket/vidkompy``; the names are
:mod:`vidkompy.store.layout`'s):

- ``STAGE/KEY/`` one complete artifact: a Zarr group whose attribute
  ``complete`` is written last; its typed value (`vidkompy.models`) is the
  attribute ``value``, its arrays are the group's arrays.
- ``STAGE/KEY.partial/`` an artifact being written, chunk by chunk, with how far
  it got in the attribute ``progress``. A run killed mid-stage leaves it; the
  next run of the same key resumes from it. Nothing reads it as a result. On a
  local disk it is renamed to ``STAGE/KEY`` when complete; on an object store
  (no rename) the artifact is written in place and counts from ``complete`` on.
- ``locks/STAGE-KEY.lock`` the file lock of a run computing a key.
- ``filehash/`` memoised content hashes of input files.

Arrays are compressed with zstd *with* its checksum: a damaged chunk raises
when read (`ArtifactDamaged`), it is never silently taken as data.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import errno
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import zarr
from filelock import FileLock
from zarr.codecs import Crc32cCodec, ZstdCodec

from vidkompy.digest import file_sha256
from vidkompy.errors import VidkompyError
from vidkompy.faults import crash_point
from vidkompy.models import Stored, as_attrs, from_attrs
from vidkompy.store import layout
from vidkompy.store.layout import default_cache_dir

log = logging.getLogger("vidkompy")

T = TypeVar("T")
COMPRESSOR = ZstdCodec(level=1, checksum=True)
# Pictures (the gray working copies) are stored raw behind a CRC32C: zstd won them only 20% (camera noise
# does not compress) at 10 s of CPU to write and 7.6 s to read per pass over 30,000 1080p-derived frames,
# the CRC 4.8 s and 3.8 s (measured here). A damaged chunk is still found: its checksum fails on read.
CHECKSUM = Crc32cCodec()
# What reading a damaged Zarr chunk raises: a failed checksum or shard index (ValueError), a zstd frame
# that does not decode (RuntimeError), a chunk file that vanished or cannot be read (OSError).
_DAMAGE = (ValueError, RuntimeError, OSError)
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class ArtifactMissing(KeyError):
    """No complete artifact under this key."""


class ArtifactDamaged(Exception):
    """A complete artifact whose data no longer reads back: it must be computed again."""

    def __init__(self, stage: str, key: str, problem: object):
        super().__init__(f"{stage}/{key}: {problem}")
        self.stage, self.key = stage, key


class CacheError(VidkompyError):
    """The cache cannot be written (a full disk, a permission lost mid-run)."""

    exit_code = 3


def stage_key(stage: str, version: int, **parts: object) -> str:
    """A key that depends only on what determines a stage's output."""
    blob = json.dumps({"stage": stage, "version": version, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class CheckedArray:
    """A stored array read lazily, window by window; a damaged chunk raises `ArtifactDamaged`."""

    def __init__(self, array: zarr.Array, stage: str, key: str):
        self._array, self._stage, self._key = array, stage, key

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._array.shape)

    @property
    def dtype(self) -> np.dtype:
        return self._array.dtype

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: object) -> np.ndarray:
        try:
            return np.asarray(self._array[key])
        except _DAMAGE as exc:
            raise ArtifactDamaged(self._stage, self._key, exc) from exc


class Artifact:
    """A complete artifact: its attributes now, its arrays when read."""

    def __init__(self, stage: str, key: str, group: zarr.Group, attrs: dict, location: str, local: bool):
        self.stage, self.key, self._group, self.attrs = stage, key, group, attrs
        self._location, self._local = location, local

    def value(self, cls: type[T]) -> T:
        """The stage's value. One whose attributes lack a field ``cls`` needs (damaged, or written by something
        else) is `ArtifactDamaged`; the fields themselves are converted as they are, so a bug stays loud."""
        stored = self.attrs.get("value")
        if not isinstance(stored, dict):
            raise ArtifactDamaged(self.stage, self.key, "its value is missing")
        missing = [f.name for f in dataclasses.fields(cls)  # type: ignore[arg-type]
                   if f.name not in stored and f.default is dataclasses.MISSING
                   and f.default_factory is dataclasses.MISSING]
        if missing:
            raise ArtifactDamaged(self.stage, self.key, f"its value lacks {', '.join(missing)}")
        return from_attrs(cls, stored)

    def array(self, name: str) -> CheckedArray:
        try:
            return CheckedArray(self._group[name], self.stage, self.key)
        except (KeyError, *_DAMAGE) as exc:
            raise ArtifactDamaged(self.stage, self.key, f"array {name} is missing ({exc})") from exc

    def load(self, name: str) -> np.ndarray:
        """A whole array: only for the small ones (a value per frame, never frames)."""
        return self.array(name)[...]

    def file(self, name: str, folder: str | os.PathLike | None = None) -> Path:
        """A file stored with the artifact: its path on a local root, else a copy downloaded into ``folder``."""
        files = self.attrs.get("files", {})
        if name not in files:
            raise ArtifactDamaged(self.stage, self.key, f"file {name} is missing")
        location = f"{self._location}/{name}"
        if self._local:
            path = Path(location)
            if not path.is_file() or path.stat().st_size != files[name]:
                raise ArtifactDamaged(self.stage, self.key, f"file {name} is missing or truncated")
            return path
        import fsspec

        target = Path(folder or tempfile.mkdtemp(prefix="vidkompy-")) / name
        try:
            fsspec.open(location).fs.get(location, str(target))
        except (FileNotFoundError, OSError) as exc:
            raise ArtifactDamaged(self.stage, self.key, f"file {name}: {exc}") from exc
        return target


class Store:
    """One root of artifacts. Cheap to construct; holds no open handles."""

    @classmethod
    def open(cls, root: str | os.PathLike | None = None) -> Store:
        """The store at ``root``, or a temporary one for this process when ``root`` cannot be written.

        An unwritable cache must not stop a run: it only costs the reuse.
        """
        store = cls(root)
        if not store.local or store.writable():
            return store
        tmp = tempfile.mkdtemp(prefix="vidkompy-cache-")
        atexit.register(shutil.rmtree, tmp, True)
        log.warning("cache folder %s is not writable: running without the cache", store.root)
        return cls(tmp)

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = str(root) if root is not None else default_cache_dir()
        self.local = not layout.is_url(self.root)
        if self.local:
            self.root = str(layout.local_root(self.root))

    def writable(self) -> bool:
        try:
            Path(self.root).mkdir(parents=True, exist_ok=True)
            probe = Path(self.root) / layout.write_probe()
            probe.write_bytes(b"")
            probe.unlink()
            return True
        except OSError:
            return False

    @contextlib.contextmanager
    def lock(self, stage: str, key: str) -> Iterator[None]:
        """One process computes a key at a time; the others wait, then find it stored.

        A file lock on a local root; object stores get no lock (a race there only
        costs a second computation of the same content).
        """
        if not self.local:
            yield
            return
        folder = Path(self.root) / layout.LOCKS
        with _cache_errors(self.root, f"{stage} lock"):
            folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(folder / layout.lock_name(stage, key))):
            yield

    # -- file hashes -------------------------------------------------------------------------

    def file_digest(self, path: str | os.PathLike) -> str:
        """sha256 of a file's bytes, streamed, remembered by path + size + mtime."""
        p = Path(path).resolve()
        st = p.stat()
        ident = f"{p}|{st.st_size}|{st.st_mtime_ns}"
        memo = Path(self.root) / layout.FILEHASH / layout.filehash_name(hashlib.sha1(ident.encode()).hexdigest())
        if self.local:
            with contextlib.suppress(FileNotFoundError):  # a prune may remove it between two runs
                return memo.read_text().strip()
        digest = file_sha256(p)
        if self.local:
            try:
                memo.parent.mkdir(parents=True, exist_ok=True)
                tmp = memo.with_name(layout.filehash_temporary(memo.name))
                tmp.write_text(digest)
                os.replace(tmp, memo)
            except OSError as exc:  # the memo only saves a re-hash; a full disk shows up in the next write
                log.debug("file hash not memoised: %s", exc)
        return digest

    # -- artifacts ---------------------------------------------------------------------------

    def location(self, stage: str, key: str) -> str:
        return layout.location(self.root, stage, key)

    def _open(self, location: str, mode: str) -> zarr.Group:
        if self.local:
            return zarr.open_group(store=zarr.storage.LocalStore(location), mode=mode)
        return zarr.open_group(store=location, mode=mode)

    def _attrs(self, location: str) -> dict | None:
        """A group's attributes, None when there is no readable group (only its zarr.json is read)."""
        try:
            return dict(self._open(location, "r").attrs)
        except (FileNotFoundError, zarr.errors.GroupNotFoundError, zarr.errors.NodeTypeValidationError,
                json.JSONDecodeError, ValueError, KeyError, OSError):
            return None

    def has(self, stage: str, key: str) -> bool:
        """Complete, with every array it lists at its recorded length; no chunk is read."""
        attrs = self._attrs(self.location(stage, key))
        if not attrs or not attrs.get("complete"):
            return False
        try:
            group = self._open(self.location(stage, key), "r")
            return all(tuple(group[name].shape) == tuple(shape) for name, shape in attrs.get("arrays", {}).items())
        except (KeyError, *_DAMAGE):
            return False

    def read(self, ref: Stored[Any]) -> Artifact:
        """The complete artifact a stage's reference names; `ArtifactMissing` if it is gone."""
        return self.artifact(ref.stage, ref.key)

    def artifact(self, stage: str, key: str) -> Artifact:
        """The complete artifact under ``stage/key``; `ArtifactMissing` if there is none.

        For a caller that has a key but no reference yet (a stage looking for its own output);
        with a `Stored` in hand, `read` it.
        """
        location = self.location(stage, key)
        attrs = self._attrs(location)
        if not attrs or not attrs.pop("complete", False):
            raise ArtifactMissing(f"{stage}/{key}")
        return Artifact(stage, key, self._open(location, "r"), attrs, location, self.local)

    def discard(self, stage: str, key: str) -> None:
        """Remove a complete artifact (a damaged one): renamed aside first, so no reader sees half of it."""
        final = self.location(stage, key)
        if not self.local:
            with contextlib.suppress(FileNotFoundError):
                group = self._open(final, "r+")
                group.attrs["complete"] = False
            return
        if Path(final).exists():
            aside = layout.aside(final)
            os.rename(final, aside)
            shutil.rmtree(aside, ignore_errors=True)

    @contextlib.contextmanager
    def writer(self, stage: str, key: str) -> Iterator[ArtifactWriter]:
        """Write an artifact chunk by chunk; resumes the partial one a killed run left. Hold `lock` first."""
        w = ArtifactWriter(self, stage, key)
        try:
            yield w
        except CacheError:
            w.abandon()
            raise

    def files(self) -> dict[str, int]:
        """Every file under a local root with its mtime (ns): what a run wrote shows here."""
        root = Path(self.root)
        if not self.local or not root.exists():
            return {}
        return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")
                if p.is_file() and p.parent.name != layout.LOCKS}


@contextlib.contextmanager
def _cache_errors(root: str, what: str) -> Iterator[None]:
    """OSErrors of writing to the cache, as one line: a full disk is a full disk."""
    try:
        yield
    except OSError as exc:
        if exc.errno in _DISK_FULL:
            raise CacheError(f"{root}: the cache's disk is full (writing {what}); free space or use "
                             "--cache-dir on another disk") from exc
        raise CacheError(f"{root}: cannot write the cache ({what}: {exc.strerror or exc})") from exc


class Appendable:
    """A stored array that grows along its first axis, a block at a time."""

    def __init__(self, array: zarr.Array):
        self.array = array

    def __len__(self) -> int:
        return int(self.array.shape[0])


class ArtifactWriter:
    """Chunks in as they are made; progress recorded after each; `commit` makes the artifact count.

    ``progress`` holds what the stage recorded after its last complete block
    (empty for a fresh start); arrays are cut back to the lengths recorded with
    it, so a block half-written when the run died is written again.
    """

    def __init__(self, store: Store, stage: str, key: str):
        self.store, self.stage, self.key = store, stage, key
        final = store.location(stage, key)
        self.location = layout.partial(final) if store.local else final
        self._arrays: dict[str, Appendable] = {}
        self._files: dict[str, int] = {}
        with _cache_errors(store.root, stage):
            if store.local:
                Path(final).parent.mkdir(parents=True, exist_ok=True)
            attrs = store._attrs(self.location)
            if attrs is not None and not attrs.get("complete") and "progress" in attrs:
                self.group = store._open(self.location, "r+")
                self.progress: dict = dict(attrs["progress"])
            else:
                if store.local and Path(self.location).exists():
                    shutil.rmtree(self.location)  # unreadable leftovers: start over
                self.group = store._open(self.location, "w")
                self.progress = {}

    @property
    def resumed(self) -> bool:
        return bool(self.progress)

    def array(self, name: str, tail: tuple[int, ...], dtype: str, chunk: int, *, shard: int | None = None,
              pictures: bool = False) -> Appendable:
        """An appendable (N, *tail) array; reopened and cut to its recorded length when resuming.

        ``shard``: store ``shard`` rows per file, ``chunk`` rows per chunk inside it, so
        that a few rows (pictures) read cheaply and a long video is not a million files.
        ``pictures``: checksummed, not compressed (see CHECKSUM).
        """
        recorded = int(self.progress.get("lengths", {}).get(name, 0))
        with _cache_errors(self.store.root, self.stage):
            if name in self.group and recorded:
                arr = self.group[name]
                if arr.shape[0] != recorded:
                    arr.resize((recorded, *tail))
            else:
                if name in self.group:
                    del self.group[name]
                chunks = (chunk, *tail)
                arr = self.group.create_array(name, shape=(0, *tail), dtype=dtype, chunks=chunks,
                                              shards=(shard, *tail) if shard else None,
                                              compressors=CHECKSUM if pictures else COMPRESSOR)
        self._arrays[name] = Appendable(arr)
        return self._arrays[name]

    def append(self, **blocks: np.ndarray) -> None:
        """Append one block to each named array (then call `record`)."""
        with _cache_errors(self.store.root, self.stage):
            for name, block in blocks.items():
                a = self._arrays[name].array
                n = a.shape[0]
                a.resize((n + len(block), *a.shape[1:]))
                a[n : n + len(block)] = np.ascontiguousarray(block)

    def put(self, name: str, data: np.ndarray) -> None:
        """A whole (small) array at once."""
        with _cache_errors(self.store.root, self.stage):
            if name in self.group:
                del self.group[name]
            data = np.ascontiguousarray(data)
            chunks = (max(1, min(len(data), 1 << 16)), *data.shape[1:]) if data.ndim else ()
            arr = self.group.create_array(name, shape=data.shape, dtype=data.dtype, chunks=chunks or None,
                                          compressors=COMPRESSOR)
            arr[...] = data
        self._arrays[name] = Appendable(arr)

    def put_file(self, name: str, source: str | os.PathLike) -> None:
        """Move (local root) or upload (object store) a finished file into the artifact."""
        source = Path(source)
        size = source.stat().st_size
        target = f"{self.location}/{name}"
        with _cache_errors(self.store.root, self.stage):
            if self.store.local:
                shutil.move(str(source), target)
            else:
                import fsspec

                fsspec.open(target).fs.put(str(source), target)
        self._files[name] = size

    def record(self, **progress: object) -> None:
        """How far the stage got, after a block is fully written: a resumed run starts from here."""
        lengths = {name: len(a) for name, a in self._arrays.items()}
        self.progress = {**progress, "lengths": lengths}
        with _cache_errors(self.store.root, self.stage):
            self.group.attrs["progress"] = json.loads(json.dumps(self.progress, default=_plain))

    def commit(self, value: object) -> None:
        """Write the stage's typed value and the ``complete`` marker, last, then move the artifact into place."""
        arrays = {name: list(a.array.shape) for name, a in self._arrays.items()}
        with _cache_errors(self.store.root, self.stage):
            self.group.attrs.update({"value": as_attrs(value), "arrays": arrays, "files": self._files})
            crash_point(f"store:{self.stage}")
            self.group.attrs["complete"] = True  # written last: the group counts from here on
            if self.store.local:
                final = self.store.location(self.stage, self.key)
                if Path(final).exists():
                    self.store.discard(self.stage, self.key)  # damaged (a complete one is not recomputed)
                os.rename(self.location, final)

    def abandon(self) -> None:
        """Remove what was written (after a full disk: the space is better given back)."""
        if self.store.local:
            shutil.rmtree(self.location, ignore_errors=True)


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return dict(value)
    return str(value)
