"""The composite in segments on Prefect: mapped task runs (threads, or a Dask cluster), stored, joined.

The alignment is stored from the sample's exact truth (what the decode and
spatial stages would store), so these tests exercise the segments alone. Every
joined output is held to the true overlay (`tests.reference`: fg pasted with
NumPy over the true bg frames) within h264's loss, besides being compared with
the one pass or an earlier run: a fault both share is caught by the first.
"""

from __future__ import annotations

import asyncio
import os
import time

import av
import numpy as np
import pytest
from prefect import get_client
from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.sorting import FlowRunSort

from tests.overlay.test_output_formats import (
    assert_continuous,
    audio_packets,
    decode_planes,
    frame_times,
    psnr,
    top_level_atoms,
)
from tests.reference import pasted, worst_luma_psnr
from vidkompy.errors import SettingsError
from vidkompy.faults import ENV as FAULT_ENV
from vidkompy.media import audio as interleave
from vidkompy.media.encoding import OutputSettings
from vidkompy.media.paths import check_inputs
from vidkompy.models import Aligned, Decoded, Geometry, Stored
from vidkompy.overlay.composite import composite
from vidkompy.overlay.segments import ComposedSegment, auto_segments, plan_segments
from vidkompy.pipeline.segment_tasks import STAGE, SegmentDamaged, join, segment_key
from vidkompy.pipeline.segments_flow import check_segments, compose_segments, resolve_segments
from vidkompy.pipeline.tasks import load_alignment
from vidkompy.samples import SamplePair, make_pair
from vidkompy.store.artifacts import Store, stage_key

# The default crf; chunks of 12 fg frames (the default, 250, is longer than these pairs): the pair's 51
# frames make 5 chunks, so up to 5 segments.
SETTINGS = OutputSettings("h264", keyint=12)
# crf 18 on this pair: 43 dB from the true overlay inside fg's box and outside it; fg a pixel off is 34.5 inside,
# a bg frame one late at a join (panned 2 px) lower still outside
H264_DB = 40.0


def decoded_times(path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.array([float(f.pts * f.time_base) for f in c.decode(video=0)])


def store_alignment(store: Store, pair: SamplePair) -> tuple[Stored[Aligned], Stored[Decoded], Stored[Decoded]]:
    """The sample's truth stored as the decode and spatial stages store theirs."""
    refs = {}
    for role, path in (("bg", pair.bg), ("fg", pair.fg)):
        pts = decoded_times(path)
        key = stage_key("decode", 0, file=store.file_digest(path))
        value = Decoded(len(pts), (0, 0), (0, 0), float(1 / np.median(np.diff(pts))))
        with store.writer("decode", key) as w:
            w.put("pts", pts)
            w.commit(value)
        refs[role] = Stored("decode", key, value, computed=True)
    key = stage_key("spatial", 0, bg=refs["bg"].key, fg=refs["fg"].key)
    value = Aligned(Geometry(pair.x, pair.y, pair.scale), 1.0, len(pair.frames))
    with store.writer("spatial", key) as w:
        w.put("map", np.asarray(pair.frames, np.int32))
        w.put("score", np.ones(len(pair.frames), np.float32))
        w.put("matched", np.ones(len(pair.frames), bool))
        w.commit(value)
    return Stored("spatial", key, value, computed=True), refs["bg"], refs["fg"]


def latest_segment_runs(count: int) -> dict[str, list[str]]:
    """The task runs of the latest `segments` flow run (``count`` segments and the join): their states' names."""

    async def read() -> dict[str, list[str]]:
        async with get_client() as client:
            runs = await client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["segments"])),
                                               sort=FlowRunSort.START_TIME_DESC, limit=1)
            tasks = await client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[runs[0].id])))
            return {t.name: [s.name for s in await client.read_task_run_states(t.id)] for t in tasks}

    # task run states reach the server as events, a moment after the run: wait for all of them
    expected = {"join", *(f"segment-{k}" for k in range(count))}
    for _ in range(300):
        states = asyncio.run(read())
        if set(states) == expected and all(s[-1] in ("Completed", "Cached", "Failed") for s in states.values()):
            break
        time.sleep(0.1)
    return states


def min_psnr(a, b) -> float:
    """The worst frame's PSNR (all three planes) between two videos of the same frames."""
    x, y = decode_planes(a), decode_planes(b)
    assert len(x) == len(y)
    return min(psnr(np.concatenate([p.ravel() for p in f]), np.concatenate([p.ravel() for p in g]))
               for f, g in zip(x, y, strict=True))


def video_packets(path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(video=0) if p.size]


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> SamplePair:
    return make_pair(tmp_path_factory.mktemp("segflow"), name="seg", seconds=2.5, seed=21)


@pytest.fixture(scope="module")
def truth(pair) -> list[list[np.ndarray]]:
    return pasted(pair.bg, pair.fg, pair.frames, int(pair.x), int(pair.y))


def assert_true(path, truth: list[list[np.ndarray]], box: tuple[int, int, int, int] = (72, 40, 160, 120)) -> None:
    """Within h264's loss of the true overlay, inside fg's box (the samples' default region) and outside it."""
    assert worst_luma_psnr(decode_planes(path), truth, box) >= H264_DB


@pytest.fixture
def stored(pair, tmp_path) -> tuple[Store, tuple]:
    store = Store(tmp_path / "cache")
    return store, store_alignment(store, pair)


def run(pair, stored, output, count, settings=SETTINGS, **kw) -> Stored[str]:
    store, (aligned, bg_dec, fg_dec) = stored
    return compose_segments(check_inputs(pair.bg, pair.fg, None, write_video=False), str(output), aligned, bg_dec,
                            fg_dec, store, segments=count, settings=settings, **kw)


# -- how many -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("segments", "n_frames", "keyint", "expected"), [
    (3, 100, 1, 3), (1, 100, 1, 1), (500, 40, 1, 40), ("7", 100, 1, 7), ("auto", 10_000, 1, 1),
    (500, 40, 16, 3), (4, 1000, 250, 4), (8, 1000, 250, 4),
])
def test_segments_are_clamped_to_the_chunks_and_auto_is_one_pass_on_one_machine(segments, n_frames, keyint,
                                                                                  expected):
    assert resolve_segments(segments, n_frames, 25.0, keyint=keyint) == expected


@pytest.mark.parametrize(("n_frames", "fps", "workers", "expected"), [
    (216_000, 30.0, 8, 16),  # two hours: two segments a worker
    (216_000, 30.0, 32, 64),
    (216_000, 30.0, 100, 120),  # never under a minute a segment
    (1_800, 30.0, 8, 1),  # a minute: one pass
    (9_000, 30.0, 8, 5),
    (216_000, 30.0, 1, 1),  # one worker: one pass
])
def test_auto_cuts_two_segments_a_worker_none_under_a_minute(n_frames, fps, workers, expected):
    assert auto_segments(n_frames, fps, workers) == expected


@pytest.mark.parametrize("bad", [0, -2, "many", "", 2.5, True])
def test_a_bad_segment_count_is_a_settings_error(bad):
    with pytest.raises(SettingsError, match="segments"):
        check_segments(bad)


# -- on a Dask cluster: as good as one pass ----------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    """Two single-threaded worker processes, as two machines would each run one. (distributed is imported here
    and below, not at the top: only the worker that runs this file needs it.)"""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c


def test_three_segments_on_dask_are_the_one_pass_output(pair, stored, truth, cluster, tmp_path):
    """Planted faults it catches: a frame one late at a join; fg a pixel off in the one pass and the segments
    alike."""
    store, (aligned, *_) = stored
    one = composite(pair.bg, pair.fg, tmp_path / "one.mp4", load_alignment(store, aligned), settings=SETTINGS)
    joined = run(pair, stored, tmp_path / "joined.mp4", 3, dask_address=cluster.scheduler_address).value

    states = latest_segment_runs(3)
    assert sorted(states) == ["join", "segment-0", "segment-1", "segment-2"]
    assert all(s[-1] == "Completed" for s in states.values())
    assert_true(joined, truth)  # decoding raises on a broken stream
    assert frame_times(joined) == frame_times(one)  # none dropped or repeated at a join, same clock
    assert min_psnr(one, joined) >= 45.0
    with av.open(str(joined)) as c:
        dts = [p.dts for p in c.demux(video=0) if p.dts is not None]
    assert all(x < y for x, y in zip(dts, dts[1:], strict=False))
    assert audio_packets(joined) == audio_packets(one)  # fg's audio once, over the whole output
    assert_continuous(audio_packets(joined))
    atoms = top_level_atoms(joined)
    assert atoms.index("moov") < atoms.index("mdat")


def _arm(point: str) -> None:
    os.environ[FAULT_ENV] = point


def _disarm() -> None:
    os.environ.pop(FAULT_ENV, None)


def test_a_killed_worker_costs_only_its_segment(pair, stored, truth, cluster, tmp_path):
    """Every worker dies at its first segment's commit; Dask gives each such segment to a worker again
    (a restarted worker is not armed) and the segments already stored are not composed again."""
    from distributed import Client

    with Client(cluster.scheduler_address, set_as_default=False) as client:
        before = set(client.nthreads())
        client.run(_arm, "store:segment")
        try:
            out = run(pair, stored, tmp_path / "o.mp4", 4, dask_address=cluster.scheduler_address).value
            replaced = len(before - set(client.nthreads()))
        finally:
            client.run(_disarm)
    # each attempt of a task run begins Pending, Running (the engine's own states, reported from the worker)
    attempts = {name: max(s.count("Pending"), s.count("Running")) for name, s in latest_segment_runs(4).items()}
    assert 1 <= replaced <= 2
    assert sorted(attempts.values()) == [1] * (5 - replaced) + [2] * replaced
    assert frame_times(out) == pytest.approx(list(decoded_times(pair.fg)), abs=1e-6)
    assert_true(out, truth)


# -- the store: a re-run composes only what is missing -------------------------------------------------


def test_a_rerun_composes_only_missing_or_damaged_segments(pair, stored, truth, tmp_path):
    """Planted faults it catches: a damaged segment joined as stored; a recomposed segment a frame late, or fg
    a pixel off in every run alike (which comparing the runs alone passes)."""
    store, (aligned, bg_dec, fg_dec) = stored
    first = run(pair, stored, tmp_path / "a.mp4", 3).value
    plan = plan_segments(len(pair.frames), 3, SETTINGS.keyint)
    keys = [segment_key(aligned, bg_dec, fg_dec, s, border=8, blend=False, settings=SETTINGS) for s in plan]
    store.discard(STAGE, keys[0])  # gone
    damaged = next((tmp_path / "cache" / STAGE / keys[2]).glob("segment.*"))
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)  # same size, zeros inside a packet
    damaged.write_bytes(bytes(data))

    again = run(pair, stored, tmp_path / "b.mp4", 3).value
    states = latest_segment_runs(3)
    assert {name: s[-1] for name, s in states.items()} == {
        "segment-0": "Completed", "segment-1": "Cached", "segment-2": "Completed", "join": "Completed"}
    # the stored segment's packets are copied as they were; the others are encoded again (x264's frame
    # threads do not repeat bit for bit on frames this small), to the same frames at the same times
    kept = plan[1]
    assert video_packets(again)[kept.start : kept.stop] == video_packets(first)[kept.start : kept.stop]
    assert frame_times(again) == frame_times(first)
    assert min_psnr(first, again) >= 45.0
    assert_true(again, truth)


def test_a_segment_damaged_after_it_was_composed_is_never_joined(pair, stored, tmp_path):
    store, (aligned, bg_dec, fg_dec) = stored
    run(pair, stored, tmp_path / "a.mp4", 2)
    plan = plan_segments(len(pair.frames), 2, SETTINGS.keyint)
    keys = [segment_key(aligned, bg_dec, fg_dec, s, border=8, blend=False, settings=SETTINGS) for s in plan]
    parts = [Stored(STAGE, k, store.artifact(STAGE, k).value(ComposedSegment), False) for k in keys]
    victim = next((tmp_path / "cache" / STAGE / keys[1]).glob("segment.*"))
    victim.write_bytes(victim.read_bytes()[:-100] + bytes(100))
    out = tmp_path / "joined.mp4"
    with pytest.raises(SegmentDamaged, match=f"{plan[1].start}-{plan[1].stop}"):
        inputs = check_inputs(pair.bg, pair.fg, None, write_video=False)
        join.fn(inputs, str(out), parts, aligned, bg_dec, fg_dec, store, SETTINGS)
    assert not out.exists() and not store.has(STAGE, keys[1]) and store.has(STAGE, keys[0])


def test_more_segments_than_chunks_gives_one_chunk_each(tmp_path):
    short = make_pair(tmp_path, name="short", seconds=1.0, trim=(0.4, 0.45), seed=22)
    store = Store(tmp_path / "cache")
    n = len(short.frames)
    assert 0 < n < 8
    out = run(short, (store, store_alignment(store, short)), tmp_path / "o.mp4", n + 100,
              settings=OutputSettings(keyint=1)).value
    assert sorted(latest_segment_runs(n)) == ["join", *(f"segment-{k}" for k in range(n))]
    assert frame_times(out) == pytest.approx(list(decoded_times(short.fg)), abs=1e-6)
    assert_true(out, pasted(short.bg, short.fg, short.frames, int(short.x), int(short.y)))


def test_ctrl_c_in_the_join_leaves_nothing_under_the_outputs_name(pair, stored, tmp_path, monkeypatch):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    calls = []

    def interrupted(self, t, end=None):  # what SIGINT raises in the thread that runs the join
        calls.append(t)
        if len(calls) == 20:
            raise KeyboardInterrupt

    monkeypatch.setattr(interleave.AudioFeed, "mux_until", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(pair, stored, out_dir / "o.mp4", 3)
    assert len(calls) == 20
    assert list(out_dir.iterdir()) == []


def test_segments_live_in_a_store_at_an_fsspec_url(pair, truth, tmp_path):
    """A remote store (here fsspec's in-memory file system): segments are uploaded, fetched for the join, and
    found again by a re-run; nothing is left beside the output. Planted faults it catches: a frame one late
    at a join, or fg a pixel off, in both runs alike."""
    store = Store(f"memory://vidkompy-{tmp_path.name}")
    refs = store_alignment(store, pair)
    first = run(pair, (store, refs), tmp_path / "a.mp4", 3).value
    assert {s[-1] for s in latest_segment_runs(3).values()} == {"Completed"}
    again = run(pair, (store, refs), tmp_path / "b.mp4", 3).value
    states = latest_segment_runs(3)
    assert [states[f"segment-{k}"][-1] for k in range(3)] == ["Cached"] * 3
    assert video_packets(again) == video_packets(first)
    assert frame_times(first) == pytest.approx(list(decoded_times(pair.fg)), abs=1e-6)
    assert_true(first, truth)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4", "b.mp4"]
