"""What a re-run recomputes, shown by the flow's record and Prefect's task states."""

from __future__ import annotations

import asyncio
import time

import av
import pytest
from prefect import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

import vidkompy
from vidkompy.options import Options
from vidkompy.store.artifacts import Store

ALIGNMENT_STAGES = {"decode-bg", "decode-fg", "locate", "embed-bg", "embed-fg", "index", "dtw", "spatial"}


def test_first_run_computes_every_stage_second_only_composite(crop, tmp_path):
    cache = tmp_path / "cache"
    first = vidkompy.compose(crop.bg, crop.fg, tmp_path / "a.mp4", gpu=False, cache_dir=cache)
    second = vidkompy.compose(crop.bg, crop.fg, tmp_path / "b.mp4", gpu=False, cache_dir=cache)
    assert set(first.computed) == ALIGNMENT_STAGES | {"composite"}
    assert second.computed == ("composite",)
    assert list(second.frames) == list(first.frames)


def test_border_and_blend_change_recomputes_only_composite_and_writes_no_chunk(crop, crop_cache, tmp_path):
    """The cache holds a compose at the default border, without blending (`crop_cache`)."""
    cache = crop_cache
    before = Store(cache).files()
    again = vidkompy.compose(crop.bg, crop.fg, tmp_path / "b.mp4", border=3, blend=True, gpu=False,
                             cache_dir=cache)
    assert again.computed == ("composite",)
    assert Store(cache).files() == before


def test_replacing_fg_keeps_bg_decode_and_embed(crop, crop_cache, tmp_path):
    cache = crop_cache
    # the same crop, re-encoded at another quality: another file, the same place in bg
    other = tmp_path / "other.fg.mp4"
    with av.open(str(crop.fg)) as src, av.open(str(other), "w") as dst:
        vs = dst.add_stream("libx264", rate=src.streams.video[0].average_rate)
        vs.width, vs.height, vs.pix_fmt = src.streams.video[0].width, src.streams.video[0].height, "yuv420p"
        vs.options = {"crf": "30"}
        for frame in src.decode(video=0):
            frame.pict_type = av.video.frame.PictureType.NONE
            for p in vs.encode(frame):
                dst.mux(p)
        for p in vs.encode(None):
            dst.mux(p)
    result = vidkompy.compose(crop.bg, other, tmp_path / "b.mp4", gpu=False, cache_dir=cache)
    assert "decode-bg" not in result.computed
    assert "embed-bg" not in result.computed
    assert {"decode-fg", "embed-fg", "locate", "index", "dtw", "spatial", "composite"} <= set(result.computed)


def test_prefect_records_cached_stages(crop, crop_cache):
    from vidkompy.pipeline.compose_flow import compose as compose_flow

    options = Options(gpu=False, cache_dir=str(crop_cache))
    state = compose_flow(bg=str(crop.bg), fg=str(crop.fg), options=options, write_video=False, return_state=True)
    assert state.is_completed()

    async def task_states():
        async with get_client() as client:
            runs = await client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
            return {r.name: r.state.name if r.state else None for r in runs}

    # task run states reach the server as events, a moment after the run: wait until every stage and the report
    # are recorded in a final state
    for _ in range(300):
        states = asyncio.run(task_states())
        if len(states) >= len(ALIGNMENT_STAGES) + 1 and all(s in ("Completed", "Cached") for s in states.values()):
            break
        time.sleep(0.1)
    stage_states = {name.rsplit("-", 1)[0] if name.split("-")[-1] not in ("bg", "fg") else name: s
                    for name, s in states.items()}
    stage_states.pop("report")  # the UI artifact, made on every run
    assert set(stage_states) == ALIGNMENT_STAGES
    assert set(stage_states.values()) == {"Cached"}


def test_a_damaged_artifact_is_recomputed_not_trusted(crop, crop_cache):
    cache = crop_cache
    chunks = [p for p in (cache / "spatial").rglob("c/*") if p.is_file()]
    assert chunks
    for p in chunks:
        p.write_bytes(b"garbage")
    again = vidkompy.align(crop.bg, crop.fg, gpu=False, cache_dir=cache)
    assert again.computed == ("spatial",)
    assert len(again.frames) == len(crop.frames)


@pytest.mark.parametrize("stage", ["decode", "spatial"])
def test_an_incomplete_artifact_is_not_trusted(crop, crop_cache, stage):
    import zarr

    cache = crop_cache

    for group_dir in (cache / stage).iterdir():
        g = zarr.open_group(str(group_dir), mode="r+")
        del g.attrs["complete"]
    again = vidkompy.align(crop.bg, crop.fg, gpu=False, cache_dir=cache)
    assert stage in {c.split("-")[0] for c in again.computed}
