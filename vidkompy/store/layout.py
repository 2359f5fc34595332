"""Every name the store gives a file or folder, and the patterns that recognise them: the on-disk format.

Under a cache ROOT (a folder, or any fsspec URL such as ``s3://bucket/vidkompy``)::

    ROOT/STAGE/KEY/               a complete artifact (a Zarr group)
    ROOT/STAGE/KEY.partial/       an artifact being written, resumable, never a result
    ROOT/STAGE/KEY.tmp-<32 hex>/  set aside for removal (a damaged artifact, a prune, a killed run's leftover)
    ROOT/locks/STAGE-KEY.lock     held by the run that computes STAGE/KEY
    ROOT/filehash/<sha1>.txt      memoised file hashes
    ROOT/.write-test-<32 hex>     for an instant, while a run checks that ROOT can be written

and beside an output being written, by :func:`vidkompy.media.paths.atomic_output`::

    FOLDER/.NAME.xxxxxxxx.part.EXT

The store (:mod:`vidkompy.store.artifacts`) writes these names and the cache administration
(:mod:`vidkompy.store.admin`) recognises them: both take them from here, so the two cannot disagree.
Changing any of them changes the on-disk format: old stores would be misread or never cleaned.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Literal

# The stages that keep artifacts, each a folder under the root.
STAGES = ("decode", "locate", "embed", "index", "dtw", "spatial", "placement", "segment")
LOCKS, FILEHASH = "locks", "filehash"
# Any one of these at a root makes it a store.
FOLDERS = (*STAGES, LOCKS, FILEHASH)

PARTIAL = ".partial"
TMP = ".tmp-"
WRITE_PROBE = ".write-test-"

EntryKind = Literal["complete", "partial", "tmp"]

# A stage folder's entries: KEY, KEY.partial, KEY.tmp-<hex>, with KEY as stage_key makes it.
ENTRY = re.compile(
    rf"^(?P<key>[0-9a-f]{{32}})(?:(?P<partial>{re.escape(PARTIAL)})|{re.escape(TMP)}(?P<tmp>[0-9a-f]{{32}}))?$"
)
# atomic_output's temporaries: tempfile.mkstemp(prefix=f".{stem}.", suffix=".part" + ext), which puts 8
# characters of its own alphabet between the two.
PART_FILE = re.compile(r"^\..+\.[a-z0-9_]{8}\.part(\.[^.]+)?$")


def default_cache_dir() -> str:
    """``$VIDKOMPY_CACHE_DIR``, else the user's cache folder (XDG)."""
    if os.environ.get("VIDKOMPY_CACHE_DIR"):
        return os.environ["VIDKOMPY_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "vidkompy")


def is_url(root: str) -> bool:
    """True for a root on an object store (fsspec URL); ``file://`` and plain paths are local."""
    return "://" in root and not root.startswith("file://")


def local_root(root: str) -> Path:
    """A local root as a path: ``file://`` dropped, ``~`` expanded."""
    return Path(root.removeprefix("file://")).expanduser()


def location(root: str, stage: str, key: str) -> str:
    """Where the complete artifact ``stage/key`` lives (a path or a URL)."""
    return f"{root.rstrip('/')}/{stage}/{key}"


def partial(location: str) -> str:
    """Where the artifact at ``location`` is written until it is complete."""
    return f"{location}{PARTIAL}"


def aside(name: str) -> str:
    """A fresh name to rename ``name`` (a key or a whole location) to before deleting it."""
    return f"{name}{TMP}{uuid.uuid4().hex}"


def lock_name(stage: str, key: str) -> str:
    """The lock file, under `LOCKS`, of whoever computes (or removes) ``stage/key``."""
    return f"{stage}-{key}.lock"


def filehash_name(digest: str) -> str:
    """The memo, under `FILEHASH`, of the file whose identity hashes to ``digest``."""
    return f"{digest}.txt"


def filehash_temporary(name: str) -> str:
    """A fresh name to write the memo ``name`` under before it is renamed into place."""
    return f"{name.removesuffix('.txt')}.{uuid.uuid4().hex}.tmp"


def write_probe() -> str:
    """A fresh name for the empty file that shows a root can be written."""
    return f"{WRITE_PROBE}{uuid.uuid4().hex}"


def parse_entry(name: str) -> tuple[str, EntryKind] | None:
    """(key, kind) of a stage folder's entry called ``name``; None when the name is not the store's."""
    m = ENTRY.match(name)
    if m is None:
        return None
    return m["key"], "partial" if m["partial"] else "tmp" if m["tmp"] else "complete"
