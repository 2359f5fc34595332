"""A file's sha256, streamed: the one way vidkompy hashes bytes it did not make.

Content keys (the store's), the weights' identity (embed's model id) and a
stored segment's check all need it. Prefect's own ``file_hash`` reads the
whole file into memory, which a two-hour master does not fit.
"""

from __future__ import annotations

import hashlib
import os

BLOCK = 1 << 22  # 4 MiB reads: past about 1 MiB the hash, not the read calls, sets the pace


def file_sha256(path: str | os.PathLike) -> str:
    """The hex sha256 of the file's bytes, read a block at a time."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            h.update(block)
    return h.hexdigest()
