"""Folder batches run embedded: pairing by name, idempotence, failing alone, staying in the output folder."""

from __future__ import annotations

import os
import subprocess

import pytest

import vidkompy
from tests.helpers import VIDKOMPY, decode_all
from vidkompy.media.pairs import Pair, find_pairs, output_for
from vidkompy.samples import make_pair


def batch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([VIDKOMPY, "batch", *args, "--no-gpu"], capture_output=True, text=True, timeout=600,
                          env=os.environ.copy())


def test_pairs_follow_the_naming_convention(tmp_path):
    for name in ("a.bg.mp4", "a.fg.mov", "b.bg.mkv", "c.fg.mp4", "notes.txt", "d.mp4", "e.bg.txt"):
        (tmp_path / name).write_bytes(b"")
    pairs, skipped = find_pairs(tmp_path)
    assert pairs == [Pair("a", tmp_path / "a.bg.mp4", tmp_path / "a.fg.mov")]
    assert skipped == ["b.bg.mkv", "c.fg.mp4", "d.mp4", "e.bg.txt", "notes.txt"]


@pytest.mark.parametrize("name", ["..", ".", ""])
def test_an_output_never_lands_outside_the_output_folder(tmp_path, name):
    with pytest.raises(ValueError):
        output_for(Pair(name, tmp_path / "x", tmp_path / "y"), tmp_path / "out")


def test_batch_composes_skips_what_is_done_and_fails_bad_pairs_alone(tmp_path):
    """The first batch by the command line (exit 1, the bad pair named); the re-runs by the library, in this
    process: what they skip and compose is the point, not the command line."""
    src, out, cache = tmp_path / "in", tmp_path / "out", str(tmp_path / "cache")
    good = [make_pair(src, name=f"g{k}", seconds=2.0, seed=20 + k) for k in range(2)]
    (src / "bad.bg.mp4").write_text("not a video")
    (src / "bad.fg.mp4").write_bytes(good[0].fg.read_bytes())

    first = batch(str(src), "-o", str(out), "--cache-dir", cache)
    assert first.returncode == 1
    assert "bad" in first.stderr and "Traceback" not in first.stderr
    assert sorted(p.name for p in out.iterdir()) == ["g0.mp4", "g1.mp4"]
    for pair in good:
        assert len(decode_all(out / f"{pair.bg.name.split('.')[0]}.mp4", "gray")) == len(pair.frames)
    made = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}

    (src / "bad.bg.mp4").unlink()
    (src / "bad.fg.mp4").unlink()
    again = vidkompy.batch(src, out, cache_dir=cache, gpu=False)
    assert [p.status for p in again.pairs] == ["up to date"] * 2 and not again.skipped_files
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == made

    other = vidkompy.batch(src, out, cache_dir=cache, gpu=False, border=3, blend=True)
    assert [p.status for p in other.pairs] == ["composed"] * 2


def test_a_symlinked_output_is_replaced_not_followed(tmp_path):
    """By the library, in this process: the output's handling is the point, not the command line."""
    src, out = tmp_path / "in", tmp_path / "out"
    make_pair(src, name="s", seconds=2.0, seed=30)
    out.mkdir()
    outside = tmp_path / "precious.mp4"
    outside.write_bytes(b"keep me")
    (out / "s.mp4").symlink_to(outside)
    result = vidkompy.batch(src, out, cache_dir=tmp_path / "cache", gpu=False)
    assert [p.status for p in result.pairs] == ["composed"]
    assert outside.read_bytes() == b"keep me"
    assert not (out / "s.mp4").is_symlink()
