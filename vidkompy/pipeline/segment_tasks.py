"""One long pair in segments, as Prefect tasks: each composed run of frames is an artifact of the store.

`compose_segment` is the task the flow maps over the plan (one task run per
segment, on whatever task runner the flow has: threads here, a Dask cluster
across machines). Its key holds the alignment (the spatial key: geometry and
map), both inputs' decode keys, the overlay and encoder settings and the range
of fg frames, so a re-run, or a retry after a worker died, finds the segments
already made and composes only the missing ones.

A stored segment is trusted only whole: the artifact is complete, its file has
the recorded size and sha256, opens, starts with a keyframe and holds exactly
the segment's frames (`vidkompy.overlay.segments.verify_segment`). One that fails is
discarded and composed again; `join` checks the same before it copies a packet,
so a damaged file is never joined. No algorithm here.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed

from vidkompy.digest import file_sha256
from vidkompy.errors import OutputError
from vidkompy.media.audio import plan_audio
from vidkompy.media.encoding import OutputSettings, segment_suffix
from vidkompy.media.join import join_segments
from vidkompy.models import Aligned, Decoded, Inputs, Stored
from vidkompy.overlay import segments as segments_lib
from vidkompy.overlay.segments import ComposedSegment, Segment, verify_segment
from vidkompy.pipeline.tasks import load_alignment
from vidkompy.store.artifacts import ArtifactDamaged, ArtifactMissing, Store, stage_key

log = logging.getLogger("vidkompy")

STAGE = "segment"
# Bump when a segment is composed differently: stored segments stop matching.
VERSION = 2  # 2: h264 follows the inputs' bit depth (10-bit in, High 10 out)


class SegmentDamaged(Exception):
    """Stored segments that are gone or no longer check out; they were discarded and must be composed again."""

    def __init__(self, segments: Sequence[Segment]):
        super().__init__("damaged segments: " + ", ".join(f"{s.start}-{s.stop}" for s in segments))
        self.segments = tuple(segments)


def segment_key(aligned: Stored[Aligned], bg_decoded: Stored[Decoded], fg_decoded: Stored[Decoded],
                segment: Segment, *, border: int, blend: bool, settings: OutputSettings) -> str:
    """The map and geometry (spatial key), both inputs, the overlay and encoder settings, and the range.

    Audio is not in it: a segment is video only, the join muxes the audio.
    """
    return stage_key(STAGE, VERSION, spatial=aligned.key, bg=bg_decoded.key, fg=fg_decoded.key, border=border,
                     blend=blend, codec=settings.codec, options=settings.encoder_options(),
                     range=[segment.start, segment.stop],
                     **({} if settings.bit_depth is None else {"bit_depth": settings.bit_depth}))


@contextlib.contextmanager
def _fetch_folder(store: Store, near: Path | None = None) -> Iterator[Path | None]:
    """Where files of a remote store are downloaded to (None on a local root: they are read in place)."""
    if store.local:
        yield None
        return
    folder = Path(tempfile.mkdtemp(prefix=".vidkompy-segments-", dir=near))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _checked_file(store: Store, key: str, segment: Segment, folder: Path | None) -> Path | None:
    """The stored segment's file if it is whole (size, sha256, frames); else None.

    From a remote store it is downloaded into a folder of its own under ``folder``
    (every segment's file has the same name).
    """
    try:
        artifact = store.artifact(STAGE, key)
        value = artifact.value(ComposedSegment)
        if folder is not None:
            folder = folder / key
            folder.mkdir(exist_ok=True)
        path = artifact.file(value.file, folder)
    except (ArtifactMissing, ArtifactDamaged):  # gone, or not whole: compose it again; anything else is a bug
        return None
    if value.segment != segment or file_sha256(path) != value.sha256 or not verify_segment(path, segment.frames):
        return None
    return path


def _stored(store: Store, key: str, segment: Segment) -> ComposedSegment | None:
    """The stored segment, or None; a damaged one is discarded."""
    if not store.has(STAGE, key):
        return None
    with _fetch_folder(store) as folder:
        if _checked_file(store, key, segment, folder) is not None:
            return store.artifact(STAGE, key).value(ComposedSegment)
    log.warning("cache: segment %d-%d is damaged; composing it again", segment.start, segment.stop)
    store.discard(STAGE, key)
    return None


# retries: an exception inside the segment (a read error on a shared disk, a full disk) is tried again in
# place; a worker that dies is Dask's to reschedule, and a re-run finds every finished segment stored.
# The tag lets an operator bound segments running at once across all flows with Prefect's own limit:
# `prefect concurrency-limit create vidkompy-segment 8`.
@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2, task_run_name="segment-{segment.index}",
      tags=["vidkompy-segment"])
def compose_segment(inputs: Inputs, aligned: Stored[Aligned], bg_decoded: Stored[Decoded],
                    fg_decoded: Stored[Decoded], segment: Segment, store: Store, border: int, blend: bool,
                    settings: OutputSettings):
    """Compose fg frames [segment.start, segment.stop) into the store, or find them there."""
    key = segment_key(aligned, bg_decoded, fg_decoded, segment, border=border, blend=blend, settings=settings)
    with store.lock(STAGE, key):
        found = _stored(store, key, segment)
        if found is not None:
            return Completed(name="Cached", message="loaded from the store",
                             data=Stored(STAGE, key, found, computed=False))
        start = time.perf_counter()
        alignment = load_alignment(store, aligned)
        fg_pts = store.read(fg_decoded).load("pts")
        bg_pts = store.read(bg_decoded).load("pts")
        suffix = segment_suffix(settings)
        name = f"segment{suffix}"
        with store.writer(STAGE, key) as writer:
            # on a local root the file is made inside the artifact being written, so the move is a rename
            local = Path(writer.location) if store.local else None
            folder = local or Path(tempfile.mkdtemp(prefix="vidkompy-segment-"))
            try:
                path = segments_lib.compose_segment(inputs.bg.path, inputs.fg.path, folder / f"composed{suffix}",
                                                    alignment, segment, fg_pts=fg_pts, bg_pts=bg_pts, border=border,
                                                    blend=blend, settings=settings, bg_info=inputs.bg)
                if not verify_segment(path, segment.frames):
                    raise OutputError(path, f"segment {segment.start}-{segment.stop} was written incomplete")
                value = ComposedSegment(segment, name, file_sha256(path))
                writer.put_file(name, path)
            finally:
                if local is None:
                    shutil.rmtree(folder, ignore_errors=True)
            writer.commit(value)
    return Completed(data=Stored(STAGE, key, value, computed=True, seconds=time.perf_counter() - start))


@task(cache_policy=NO_CACHE, task_run_name="join")
def join(inputs: Inputs, output: str, parts: Sequence[Stored[ComposedSegment]], aligned: Stored[Aligned],
         bg_decoded: Stored[Decoded], fg_decoded: Stored[Decoded], store: Store, settings: OutputSettings,
         comment: str | None = None) -> Stored[str]:
    """Check every stored segment, then join them by stream copy into ``output``, with the audio, atomically.

    Raises `SegmentDamaged` (after discarding them) when stored segments no
    longer check out: they must be composed again, never joined.
    """
    start = time.perf_counter()
    first = int(store.read(aligned).array("map")[0])
    fg_start = float(store.read(fg_decoded).array("pts")[0])
    bg_start = float(store.read(bg_decoded).array("pts")[first])
    audio = plan_audio(inputs.bg.path, inputs.fg.path, mode=settings.audio, bg_start=bg_start, fg_start=fg_start)
    with _fetch_folder(store, Path(output).parent) as folder:
        paths, damaged = [], []
        for part in parts:
            seg = part.value.segment
            path = _checked_file(store, part.key, seg, folder)
            if path is None:  # missing (never seen here, or removed) or damaged: compose it again
                store.discard(STAGE, part.key)
                damaged.append(seg)
            paths.append(path)
        if damaged:
            log.warning("cache: %d segment(s) missing or damaged before the join; composing them again",
                        len(damaged))
            raise SegmentDamaged(damaged)
        report = join_segments(paths, output, audio=audio, comment=comment)
    return Stored("composite", str(report.output), str(report.output), computed=True,
                  seconds=time.perf_counter() - start)


__all__ = ["SegmentDamaged", "compose_segment", "join", "segment_key"]
