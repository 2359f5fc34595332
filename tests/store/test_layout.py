"""The store's names on disk: what the store and `atomic_output` make is what the cache administration recognises."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vidkompy.media.paths import atomic_output
from vidkompy.store import layout
from vidkompy.store.artifacts import Store

KEY = "0123456789abcdef" * 2
HEX = "fedcba9876543210" * 2


@pytest.mark.parametrize("name, parsed", [
    (KEY, (KEY, "complete")),
    (f"{KEY}.partial", (KEY, "partial")),
    (f"{KEY}.tmp-{HEX}", (KEY, "tmp")),
    (f"{KEY}.tmp-{HEX[:-1]}", None),
    (f"{KEY}.partial.tmp-{HEX}", None),
    (KEY[:-1], None),
    (KEY.upper(), None),
    ("zarr.json", None),
])
def test_entry_names(name: str, parsed: tuple[str, str] | None) -> None:
    assert layout.parse_entry(name) == parsed


def test_the_names_the_store_makes_are_the_ones_it_recognises() -> None:
    location = layout.location("/c/", "dtw", KEY)
    assert location == f"/c/dtw/{KEY}"
    assert layout.parse_entry(Path(layout.partial(location)).name) == (KEY, "partial")
    assert layout.parse_entry(Path(layout.aside(location)).name) == (KEY, "tmp")
    assert layout.parse_entry(layout.aside(KEY)) == (KEY, "tmp")


def test_a_run_locks_the_file_the_layout_names(tmp_path: Path) -> None:
    with Store(tmp_path).lock("spatial", KEY):
        assert [p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file()] == [
            Path(layout.LOCKS) / layout.lock_name("spatial", KEY)]
    assert layout.lock_name("spatial", KEY) == f"spatial-{KEY}.lock"


@pytest.mark.parametrize("output", ["a.mp4", "b", "name.with.dots.mkv", ".hidden.mov"])
def test_atomic_outputs_temporaries_match_the_part_file_pattern(tmp_path: Path, output: str) -> None:
    with atomic_output(tmp_path / output) as tmp:
        assert tmp.parent == tmp_path
        assert layout.PART_FILE.match(tmp.name)
        tmp.write_bytes(b"x")
    assert not layout.PART_FILE.match(output)
    assert os.listdir(tmp_path) == [output]


@pytest.mark.parametrize("root, url", [("s3://bucket/vidkompy", True), ("gcs://b/c", True),
                                       ("file:///tmp/c", False), ("/tmp/c", False), ("~/c", False)])
def test_urls_and_local_roots(root: str, url: bool) -> None:
    assert layout.is_url(root) is url
    if not url:
        assert layout.local_root(root) == Path(root.removeprefix("file://")).expanduser()
        assert Store(root).local and Store(root).root == str(layout.local_root(root))


def test_the_default_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.delenv("VIDKOMPY_CACHE_DIR", raising=False)
    assert layout.default_cache_dir() == str(tmp_path / ".cache" / "vidkompy")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert layout.default_cache_dir() == str(tmp_path / "xdg" / "vidkompy")
    monkeypatch.setenv("VIDKOMPY_CACHE_DIR", str(tmp_path / "mine"))
    assert layout.default_cache_dir() == str(tmp_path / "mine")
