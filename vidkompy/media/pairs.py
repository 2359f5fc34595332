"""Folder batches: which files pair up, where each output goes, and which are already done.

Naming convention: ``NAME.bg.EXT`` pairs with ``NAME.fg.EXT`` (any video
extension, not necessarily the same) in one folder; the output is
``OUTPUT_DIR/NAME.mp4``. An output counts as done when it is newer than both
inputs and its container's comment records the same settings.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import av

from vidkompy.media.encoding import OutputSettings
from vidkompy.options import Options

VIDEO_EXTENSIONS = {".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mts", ".m2ts", ".ts", ".mxf", ".mpg",
                    ".mpeg", ".wmv", ".flv", ".3gp", ".ogv"}
SETTINGS_TAG = "vidkompy-settings:"


@dataclass(frozen=True)
class Pair:
    name: str
    bg: Path
    fg: Path


def find_pairs(folder: str | os.PathLike) -> tuple[list[Pair], list[str]]:
    """Pairs by the naming convention, and the names of files that match nothing."""
    folder = Path(folder)
    roles: dict[str, dict[str, list[Path]]] = {}
    skipped: list[str] = []
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.name.startswith("."):
            continue
        stem, ext = p.stem, p.suffix.lower()
        role = stem.rsplit(".", 1)[-1] if "." in stem else ""
        if ext not in VIDEO_EXTENSIONS or role not in ("bg", "fg"):
            skipped.append(p.name)
            continue
        roles.setdefault(stem[: -len(role) - 1], {}).setdefault(role, []).append(p)
    pairs = []
    for name, found in sorted(roles.items()):
        if len(found.get("bg", [])) == 1 and len(found.get("fg", [])) == 1 and name:
            pairs.append(Pair(name, found["bg"][0], found["fg"][0]))
        else:
            skipped += [p.name for paths in found.values() for p in paths]
    return pairs, sorted(skipped)


def output_for(pair: Pair, output_dir: str | os.PathLike, suffix: str = ".mp4") -> Path:
    """``OUTPUT_DIR/NAME.mp4`` (or the codec's container), never outside OUTPUT_DIR."""
    out_dir = Path(output_dir).absolute()
    out = out_dir / f"{pair.name}{suffix}"
    if out.parent != out_dir or "/" in pair.name or pair.name in ("", ".", ".."):
        raise ValueError(f"{pair.name!r} would write outside {out_dir}")
    return out


def settings_digest(options: Options) -> str:
    """What an output was made with, as the compose flow records it in the container's comment.

    Only what changes the output's pictures and sound counts (not the cache, the device or the plot), in
    the same JSON as vidkompy 2.0 wrote, so outputs made before still count as done.
    """
    settings = {"border": int(options.border), "blend": bool(options.blend), "weights": options.weights,
                **dataclasses.asdict(OutputSettings.of(options))}
    if settings["bit_depth"] is None:  # a choice 2.0 did not have: absent, the digest is 2.0's
        del settings["bit_depth"]
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def settings_comment(options: Options) -> str:
    return SETTINGS_TAG + settings_digest(options)


def is_done(pair: Pair, output: Path, comment: str) -> bool:
    """The output exists, is newer than both inputs, and was made with these settings."""
    try:
        if output.is_symlink() or not output.is_file():
            return False
        mtime = output.stat().st_mtime
        if mtime <= max(pair.bg.stat().st_mtime, pair.fg.stat().st_mtime):
            return False
        with av.open(str(output)) as c:
            return c.metadata.get("comment", "") == comment
    except (OSError, av.error.FFmpegError):
        return False
