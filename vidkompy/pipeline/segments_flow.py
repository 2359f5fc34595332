"""One long pair over many workers: the composite in segments, each its own task run, joined by stream copy.

The `segments` flow (`segments_flow`) cuts fg's timeline into contiguous runs of frames
(`vidkompy.overlay.segments.plan_segments`), maps `tasks.segments.compose_segment` over
them on the flow's task runner, and joins the stored segments into the output
(`tasks.segments.join`: stream copy, fg's audio muxed once, +faststart, written
under a temporary name and renamed).

Where the segments run is the task runner's business, chosen by
`segment_runner`:

- one machine: Prefect's `ThreadPoolTaskRunner`, a segment per thread;
- several machines: prefect-dask's `DaskTaskRunner` on an existing Dask
  scheduler (``dask_address``; start ``dask scheduler`` once and ``dask worker
  ADDRESS --nthreads 1`` on every machine, from this repository's .venv). The
  cache (``cache_dir``) must be one every worker and the flow can reach: a
  shared folder or any fsspec URL the store accepts.

Why Dask and not a run of the deployment per segment (both measured by
benchmarks/segments_bench.py, 2 workers on one 2-core machine, 4 segments of a
1-minute 1080p pair): the segments' own compute was the same by both routes,
but a deployment run cost a segment about 7 s more (the worker's poll, a new
Python process, importing vidkompy, the run's bookkeeping: 53 s wall against 33 s
with Dask), where a Dask worker is a standing process and dispatch costs under
a second. Over a 2-hour film on 8-32 workers that is a few per cent; what
decides is failure: Dask's scheduler sees a worker die (heartbeats) and gives
its task to another worker by itself (tests/test_segments_flow.py kills
workers inside a segment), while a deployment run on a machine that died stays
"Running" until something else marks it crashed. And the segments stay task
runs of this flow run, mapped the way Prefect maps any task.

On one machine segments are not faster than the one pass (x264's frame
threads already use the cores; 27.0 s one pass, 30.1 s in 2 segments, 29.1 s
in 4, best of 2 rounds), so the default stays one pass and "auto" gives one
segment there. A Ctrl-C while segments run in threads waits for the running
ones to finish (Python threads cannot be interrupted); what they finish is
stored and a re-run reuses it; the output appears only when the join completes.
"""

from __future__ import annotations

import dataclasses
import os
import time

from prefect import flow, unmapped
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from vidkompy.errors import OutputError, SettingsError
from vidkompy.media.chunks import chunk_count
from vidkompy.media.encoding import OutputSettings
from vidkompy.models import Aligned, Decoded, Inputs, Stored
from vidkompy.options import AUTO, KEYINT
from vidkompy.overlay.segments import ComposedSegment, auto_segments, plan_segments
from vidkompy.pipeline.segment_tasks import SegmentDamaged, compose_segment, join
from vidkompy.store.artifacts import Store


def check_segments(segments: int | str) -> int | str:
    """A whole number of segments of at least 1, or "auto" (a `SettingsError` otherwise)."""
    if isinstance(segments, str):
        if segments.strip().lower() == AUTO:
            return AUTO
        try:
            segments = int(segments)
        except ValueError:
            raise SettingsError(f"--segments takes a whole number or 'auto', not {segments!r}") from None
    if isinstance(segments, bool) or not isinstance(segments, int) or segments < 1:
        raise SettingsError(f"--segments takes a whole number from 1 or 'auto', not {segments!r}")
    return segments


def dask_workers(address: str) -> int:
    """How many segments the Dask cluster at ``address`` runs at once: its workers' threads."""
    from distributed import Client

    try:
        with Client(address, timeout="10s", set_as_default=False) as client:
            return max(1, sum(client.nthreads().values()))
    except (OSError, TimeoutError) as exc:
        raise SettingsError(f"no Dask scheduler answers at {address} ({exc})") from exc


def resolve_segments(segments: int | str, n_frames: int, fps: float, *, keyint: int = KEYINT,
                     dask_address: str | None = None) -> int:
    """The number of segments to cut: ``segments`` clamped to [1, chunks of ``keyint`` frames], or "auto"
    worked out.

    "auto": `vidkompy.overlay.segments.auto_segments` over the workers available (the
    Dask cluster's threads with ``dask_address``; one on this machine alone,
    where segments are not faster than one pass).
    """
    segments = check_segments(segments)
    if segments == AUTO:
        workers = dask_workers(dask_address) if dask_address else 1
        count = auto_segments(n_frames, fps, workers)
    else:
        count = int(segments)
    return max(1, min(count, chunk_count(n_frames, keyint)))


def segment_runner(count: int, dask_address: str | None = None) -> TaskRunner:
    """Dask's runner on an existing scheduler, else a thread per segment here (at most one per core)."""
    if dask_address:
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=dask_address)
    return ThreadPoolTaskRunner(max_workers=max(1, min(count, _cores())))


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@flow(name="segments", validate_parameters=False, log_prints=False)
def segments_flow(inputs: Inputs, output: str, aligned: Stored[Aligned], bg_decoded: Stored[Decoded],
                  fg_decoded: Stored[Decoded], store: Store, count: int, border: int = 8, blend: bool = False,
                  settings: OutputSettings | None = None, comment: str | None = None) -> Stored[str]:
    """fg's frames in ``count`` segments over this flow's task runner, then one output by stream copy."""
    settings = settings or OutputSettings()
    plan = plan_segments(aligned.value.n_frames, count, settings.keyint)

    def compose_all() -> list[Stored[ComposedSegment]]:
        futures = compose_segment.map(unmapped(inputs), unmapped(aligned), unmapped(bg_decoded),
                                      unmapped(fg_decoded), list(plan), unmapped(store), unmapped(border),
                                      unmapped(blend), unmapped(settings))
        return [f.result() for f in futures]

    parts = compose_all()
    try:
        # in this thread: Ctrl-C must reach the writer so that its temporary file is removed
        return join(inputs, output, parts, aligned, bg_decoded, fg_decoded, store, settings, comment)
    except SegmentDamaged:
        parts = compose_all()  # the discarded ones again; the rest come back from the store
    try:
        return join(inputs, output, parts, aligned, bg_decoded, fg_decoded, store, settings, comment)
    except SegmentDamaged as exc:
        raise OutputError(output, f"{exc} twice, read back from the cache at {store.root}; with workers on "
                                  "other machines the cache must be one they share (--cache-dir on a shared "
                                  "folder or an fsspec URL)") from None


def compose_segments(inputs: Inputs, output: str, aligned: Stored[Aligned], bg_decoded: Stored[Decoded],
                     fg_decoded: Stored[Decoded], store: Store, *, segments: int | str, border: int = 8,
                     blend: bool = False, settings: OutputSettings | None = None, comment: str | None = None,
                     dask_address: str | None = None, task_runner: TaskRunner | None = None) -> Stored[str]:
    """Compose the output in segments (the `segments` subflow on the runner for ``dask_address``).

    ``segments``: a number (clamped to fg's chunks, `vidkompy.media.chunks`) or "auto"; resolve it
    first with `resolve_segments` to choose between this and the one-pass
    composite (one segment is the one pass, without a join). ``task_runner``
    overrides the runner (tests: a `DaskTaskRunner` on a `LocalCluster`).
    """
    start = time.perf_counter()
    fps = fg_decoded.value.fps
    count = resolve_segments(segments, aligned.value.n_frames, fps,
                             keyint=(settings or OutputSettings()).keyint, dask_address=dask_address)
    runner = task_runner or segment_runner(count, dask_address)
    joined = segments_flow.with_options(task_runner=runner)(
        inputs, output, aligned, bg_decoded, fg_decoded, store, count, border, blend, settings, comment)
    # the composite's seconds are the segments' and the join's, as the one pass's are its whole loop
    return dataclasses.replace(joined, seconds=time.perf_counter() - start)


__all__ = ["check_segments", "compose_segments", "dask_workers", "resolve_segments", "segment_runner",
           "segments_flow"]
