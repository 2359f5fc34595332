"""Where the output goes, the checks that keep inputs safe from it, and writing it atomically."""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from vidkompy.errors import InputError, OutputError
from vidkompy.media.encoding import OutputSettings, default_suffix, validate_output
from vidkompy.media.probe import probe
from vidkompy.models import Inputs


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
    if not can_create_in(out.parent):
        raise OutputError(out, "output folder is not writable")
    validate_output(settings, out)
    return out


def can_create_in(folder: Path) -> bool:
    """Try it: permission bits do not tell for root, read-only mounts or special file systems."""
    try:
        fd, name = tempfile.mkstemp(prefix=".vidkompy-write-test-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True


def check_inputs(bg: str | os.PathLike, fg: str | os.PathLike, output: str | os.PathLike | None,
                 write_video: bool = True, settings: OutputSettings | None = None) -> Inputs:
    """Every check that can fail before any work is done: both inputs readable, the output writable.

    The probes it returns are the run's only ones: they are passed down to the stages that need them.
    """
    bg_info, fg_info = probe(bg), probe(fg)
    if bg_info.rotation != fg_info.rotation:
        # frames are compared as stored; a quarter turn between them is not a crop
        raise InputError(fg, f"is displayed rotated {fg_info.rotation} deg but bg {bg_info.rotation} deg: "
                             "rotate one to match first")
    out = plan_output(bg, fg, output, settings) if write_video else None
    return Inputs(bg_info, fg_info, None if out is None else str(out))


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path`` that replaces it only if the block completes."""
    folder = path.parent
    if not folder.is_dir():
        raise OutputError(path, "output folder does not exist")
    if not os.access(folder, os.W_OK):
        raise OutputError(path, "output folder is not writable")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".part" + path.suffix, dir=folder)
    except OSError as exc:
        raise OutputError(path, f"output folder is not writable ({exc.strerror})") from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp's 0600 is for the temporary file, not for the output
        os.replace(tmp_path, path)
    except OSError as exc:  # PyAV's write errors are OSErrors too, with the errno
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OutputError(path, "the output's disk is full; nothing was written under this name") from exc
        raise
    finally:
        tmp_path.unlink(missing_ok=True)
