"""A file's start timecode, where it has one: the timeline then counts source frames as an NLE's media pool does.

FFmpeg exposes a QuickTime/MP4 ``tmcd`` track's start as a ``timecode`` tag on the
video stream and on the data stream it creates; Matroska writers put ``TIMECODE``
on the stream; some files carry it on the container. The first of those found is
the file's; none means the file starts at 00:00:00:00 (`build_timeline`'s default).
"""

from __future__ import annotations

import os
import re

import av

from vidkompy.errors import InputError

_TIMECODE = re.compile(r"^\d{1,2}:\d{2}:\d{2}[:;.]\d{2,3}$")


def read_timecode(path: str | os.PathLike) -> str | None:
    """The start timecode (``HH:MM:SS:FF``, ``;`` before the frames for drop frame) of ``path``, or None."""
    try:
        with av.open(str(path)) as container:
            tags = [dict(s.metadata) for s in container.streams if s.type in ("video", "data")]
            tags.append(dict(container.metadata))
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(path, "cannot be read for its timecode") from exc
    for t in tags:
        for key, value in t.items():
            if key.lower() == "timecode" and _TIMECODE.match(str(value).strip()):
                return str(value).strip()
    return None
