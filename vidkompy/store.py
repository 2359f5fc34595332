"""The Zarr artifact store: content-addressed keys, complete-or-absent writes, reads.

Layout: ``ROOT/STAGE/KEY/`` is one Zarr group (arrays with default chunk keys,
small values in its attributes). A group counts only when its attribute
``complete`` is set, and that is written last; on a local disk the whole group
is also written under a temporary name and renamed into place, so a crash never
leaves a half-written group under a key. ROOT is a folder or any fsspec URL
(``s3://bucket/vidkompy``), so workers on several machines share stages.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import zarr
from filelock import FileLock

from vidkompy.faults import crash_point

log = logging.getLogger("vidkompy")

HASH_BLOCK = 1 << 20


def default_cache_dir() -> str:
    """``$VIDKOMPY_CACHE_DIR``, else the user's cache folder (XDG)."""
    if os.environ.get("VIDKOMPY_CACHE_DIR"):
        return os.environ["VIDKOMPY_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "vidkompy")


def stage_key(stage: str, version: int, **parts: object) -> str:
    """A key that depends only on what determines a stage's output."""
    blob = json.dumps({"stage": stage, "version": version, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Artifact:
    """A reference to one stored stage output, small enough to pass through Prefect."""

    stage: str
    key: str
    computed: bool  # False when it was found in the store
    seconds: float = 0.0
    attrs: Mapping[str, object] | None = None


def _is_url(root: str) -> bool:
    return "://" in root and not root.startswith("file://")


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

    def writable(self) -> bool:
        try:
            Path(self.root).mkdir(parents=True, exist_ok=True)
            probe = Path(self.root) / f".write-test-{uuid.uuid4().hex}"
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
        folder = Path(self.root) / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(folder / f"{stage}-{key}.lock")):
            yield

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = str(root) if root is not None else default_cache_dir()
        self.local = not _is_url(self.root)
        if self.local:
            self.root = str(Path(self.root.removeprefix("file://")).expanduser())

    # -- file hashes -------------------------------------------------------------------------

    def file_digest(self, path: str | os.PathLike) -> str:
        """sha256 of a file's bytes, streamed, remembered by path + size + mtime."""
        p = Path(path).resolve()
        st = p.stat()
        ident = f"{p}|{st.st_size}|{st.st_mtime_ns}"
        memo = Path(self.root) / "filehash" / (hashlib.sha1(ident.encode()).hexdigest() + ".txt")
        if self.local and memo.is_file():
            return memo.read_text().strip()
        h = hashlib.sha256()
        with p.open("rb") as f:
            while block := f.read(HASH_BLOCK):
                h.update(block)
        digest = h.hexdigest()
        if self.local:
            try:
                memo.parent.mkdir(parents=True, exist_ok=True)
                tmp = memo.with_suffix(f".{uuid.uuid4().hex}.tmp")
                tmp.write_text(digest)
                os.replace(tmp, memo)
            except OSError:
                pass  # an unwritable cache only costs a re-hash
        return digest

    # -- artifacts ---------------------------------------------------------------------------

    def _path(self, stage: str, key: str) -> str:
        return f"{self.root.rstrip('/')}/{stage}/{key}"

    def _open(self, location: str, mode: str) -> zarr.Group:
        if self.local:
            return zarr.open_group(store=zarr.storage.LocalStore(location), mode=mode)
        return zarr.open_group(store=location, mode=mode)

    def has(self, stage: str, key: str) -> bool:
        try:
            return bool(self._open(self._path(stage, key), "r").attrs.get("complete"))
        except (FileNotFoundError, KeyError, ValueError, zarr.errors.GroupNotFoundError, OSError):
            return False

    def read(self, stage: str, key: str) -> tuple[dict[str, np.ndarray], dict]:
        """Arrays and attributes of a complete artifact; KeyError if absent or damaged."""
        try:
            group = self._open(self._path(stage, key), "r")
            attrs = dict(group.attrs)
            if not attrs.pop("complete", False):
                raise KeyError(f"{stage}/{key} is incomplete")
            arrays = {name: np.asarray(arr[...]) for name, arr in group.arrays()}
        except KeyError:
            raise
        except Exception as exc:  # any damage means: not there, compute again
            raise KeyError(f"{stage}/{key} is unreadable: {exc}") from exc
        return arrays, attrs

    def write(self, stage: str, key: str, arrays: Mapping[str, np.ndarray], attrs: Mapping[str, object]) -> None:
        """Store an artifact so that it is either complete or absent."""
        final = self._path(stage, key)
        location = final
        if self.local:
            Path(final).parent.mkdir(parents=True, exist_ok=True)
            location = f"{final}.tmp-{uuid.uuid4().hex}"
        group = self._open(location, "w")
        for name, data in arrays.items():
            group.create_array(name, data=np.ascontiguousarray(data))
        group.attrs.update(json.loads(json.dumps(dict(attrs), default=_jsonable)))
        crash_point(f"store:{stage}")
        group.attrs["complete"] = True  # written last: the group counts from here on
        if self.local:
            try:
                if Path(final).exists():
                    shutil.rmtree(final)  # a damaged copy (a complete one would not be rewritten)
                os.rename(location, final)
            except OSError:
                # another run stored the same key first: its content is the same
                shutil.rmtree(location, ignore_errors=True)

    def files(self) -> dict[str, int]:
        """Every file under a local root with its mtime (ns): what a run wrote shows here."""
        root = Path(self.root)
        if not self.local or not root.exists():
            return {}
        return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")
                if p.is_file() and p.parent.name != "locks"}


def _jsonable(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
