"""The store alone, without Prefect: what is written reads back, what is damaged or unfinished does not."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from vidkompy.models import Geometry, Stored
from vidkompy.store import layout
from vidkompy.store.artifacts import ArtifactDamaged, ArtifactMissing, Store, stage_key


def write(store: Store, stage: str, key: str, frames: np.ndarray, *, commit: bool = True) -> Stored[Geometry]:
    value = Geometry(0.0, 0.0, 1.0)
    with store.writer(stage, key) as w:
        w.array("thumbs", frames.shape[1:], "uint8", 8, shard=16, pictures=True)
        w.append(thumbs=frames)
        w.record()
        if commit:
            w.commit(value)
    return Stored(stage, key, value, computed=True)


def test_a_damaged_picture_chunk_is_found_on_read(tmp_path: Path) -> None:
    """Pictures are stored raw behind a CRC32C, not compressed: a flipped byte must still be caught."""
    store = Store(tmp_path / "cache")
    frames = np.random.default_rng(1).integers(0, 256, (24, 18, 32), dtype=np.uint8)
    ref = write(store, "decode", "k", frames)
    assert np.array_equal(store.read(ref).array("thumbs")[...], frames)
    shard = next(p for p in (tmp_path / "cache" / "decode" / "k" / "thumbs" / "c" / "1").rglob("*") if p.is_file())
    raw = bytearray(shard.read_bytes())
    raw[100] ^= 0xFF  # inside the first picture of the second shard
    shard.write_bytes(bytes(raw))
    artifact = store.read(ref)
    assert np.array_equal(artifact.array("thumbs")[:16], frames[:16])  # the other shard is intact
    with pytest.raises(ArtifactDamaged):
        artifact.array("thumbs")[16:]


def test_read_takes_the_reference_and_artifact_the_stage_and_key(tmp_path: Path) -> None:
    store = Store(tmp_path / "cache")
    frames = np.arange(2 * 18 * 32, dtype=np.uint8).reshape(2, 18, 32)
    ref = write(store, "decode", "k", frames)
    by_ref, by_name = store.read(ref), store.artifact("decode", "k")
    assert (by_ref.stage, by_ref.key) == (by_name.stage, by_name.key) == ("decode", "k")
    assert by_ref.value(Geometry) == by_name.value(Geometry) == ref.value
    assert np.array_equal(by_ref.load("thumbs"), frames)


def test_an_unfinished_or_removed_artifact_is_missing(tmp_path: Path) -> None:
    store = Store(tmp_path / "cache")
    frames = np.zeros((2, 4, 4), np.uint8)
    unfinished = write(store, "decode", "partial", frames, commit=False)
    assert (tmp_path / "cache" / "decode" / f"partial{layout.PARTIAL}").is_dir()
    done = write(store, "decode", "done", frames)
    store.discard("decode", "done")
    for ref in (unfinished, done, Stored("decode", "never", None, computed=False)):
        with pytest.raises(ArtifactMissing):
            store.read(ref)
    assert sorted(p.name for p in (tmp_path / "cache" / "decode").iterdir()) == [f"partial{layout.PARTIAL}"]


def test_store_keys_do_not_change() -> None:
    """A changed key is a silent cache miss for every store already on disk: keys are pinned."""
    assert stage_key("decode", 4, file="0" * 64, width=320) == "440c3958cae26b1bee3bdbb8aabd9e8f"


def test_a_file_hash_is_remembered_under_its_identity(tmp_path: Path) -> None:
    source = tmp_path / "in.bin"
    source.write_bytes(b"vidkompy")
    store = Store(tmp_path / "cache")
    digest = store.file_digest(source)
    assert digest == hashlib.sha256(b"vidkompy").hexdigest()
    st = source.resolve().stat()
    ident = f"{source.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    memo = tmp_path / "cache" / "filehash" / f"{hashlib.sha1(ident.encode()).hexdigest()}.txt"
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == [memo]
    assert memo.read_text() == digest
