"""Where the output goes, and the checks that keep inputs safe from it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from vidkompy.encoding import OutputSettings, default_suffix, validate_output
from vidkompy.errors import InputError, OutputError
from vidkompy.models import VideoInfo
from vidkompy.video_io import probe


def default_output(bg: str | os.PathLike, fg: str | os.PathLike, suffix: str = ".mp4") -> Path:
    """``{bg_stem}_overlay_{fg_stem}.mp4`` in the working directory (.mov for ProRes, .mkv for FFV1)."""
    return Path.cwd() / f"{Path(bg).stem}_overlay_{Path(fg).stem}{suffix}"


def plan_output(bg: str | os.PathLike, fg: str | os.PathLike, output: str | os.PathLike | None,
                settings: OutputSettings | None = None) -> Path:
    """The output path, refused when it would overwrite an input, cannot be written or cannot hold the codec."""
    settings = settings or OutputSettings()
    out = Path(output) if output else default_output(bg, fg, default_suffix(settings.codec))
    out = out.expanduser().absolute()
    for src in (bg, fg):
        s = Path(src).expanduser().absolute()
        if out == s or (out.exists() and s.exists() and out.samefile(s)):
            raise OutputError(out, "output path is an input file; refusing to overwrite it")
    if out.is_dir():
        raise OutputError(out, "output path is a directory")
    if not out.parent.is_dir():
        raise OutputError(out, "output folder does not exist")
    if not _can_create_in(out.parent):
        raise OutputError(out, "output folder is not writable")
    validate_output(settings, out)
    return out


def _can_create_in(folder: Path) -> bool:
    """Try it: permission bits do not tell for root, read-only mounts or special file systems."""
    try:
        fd, name = tempfile.mkstemp(prefix=".vidkompy-write-test-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True


def check_inputs(bg: str | os.PathLike, fg: str | os.PathLike, output: str | os.PathLike | None,
                 write_video: bool = True, settings: OutputSettings | None = None
                 ) -> tuple[VideoInfo, VideoInfo, Path | None]:
    """Every check that can fail before any work is done: both inputs readable, the output writable."""
    bg_info, fg_info = probe(bg), probe(fg)
    if bg_info.rotation != fg_info.rotation:
        # frames are compared as stored; a quarter turn between them is not a crop
        raise InputError(fg, f"is displayed rotated {fg_info.rotation} deg but bg {bg_info.rotation} deg: "
                             "rotate one to match first")
    out = plan_output(bg, fg, output, settings) if write_video else None
    return bg_info, fg_info, out
