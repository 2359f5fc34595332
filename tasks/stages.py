"""The stages as Prefect tasks.

Each task computes its content key, returns the stored artifact when it is
there (final state "Cached") and otherwise calls the library and stores the
result (state "Completed"). Tasks return small `Artifact` references, never
arrays; a reference whose data has gone missing is recomputed, never trusted.
Prefect's own result cache is off (NO_CACHE): the Zarr store is the one source
of truth, so there is no second copy to drift from it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed

from vidkompy import composite as composite_lib
from vidkompy.device import Device
from vidkompy.dtw import knn_alignment
from vidkompy.embed import FrameEmbedder, embedding_grid
from vidkompy.errors import AlignmentError
from vidkompy.match import K_NEIGHBOURS, nearest_frames
from vidkompy.models import Alignment, Geometry
from vidkompy.refine import frame_ratio, refine_alignment
from vidkompy.spatial import bg_on_grid, fg_on_grid
from vidkompy.spatial import locate as locate_lib
from vidkompy.store import Artifact, Store, stage_key
from vidkompy.video_io import WORK_WIDTH, Thumbnails, decode_thumbnails, read_gray_frames

# Bump a stage's version when its algorithm changes: old artifacts stop matching.
VERSIONS = {"decode": 1, "locate": 1, "embed": 1, "index": 1, "dtw": 1, "spatial": 2}

Compute = Callable[[], tuple[dict[str, np.ndarray], dict]]


def _cached_or_computed(store: Store, stage: str, key: str, compute: Compute):
    """Load ``stage/key`` if complete, else compute and store it; return a Prefect state.

    Under the key's lock: two runs on the same pair compute each stage once.
    """
    with store.lock(stage, key):
        if store.has(stage, key):
            try:
                _, attrs = store.read(stage, key)
                return Completed(name="Cached", message="loaded from the store",
                                 data=Artifact(stage, key, computed=False, attrs=attrs))
            except KeyError:
                pass  # damaged: compute again
        start = time.perf_counter()
        arrays, attrs = compute()
        store.write(stage, key, arrays, attrs)
    return Completed(data=Artifact(stage, key, computed=True, seconds=time.perf_counter() - start, attrs=attrs))


def load_thumbnails(store: Store, ref: Artifact) -> Thumbnails:
    arrays, attrs = store.read(ref.stage, ref.key)
    return Thumbnails(arrays["pts"], arrays["thumbs"], tuple(attrs["size"]))


def load_alignment(store: Store, ref: Artifact) -> Alignment:
    arrays, attrs = store.read(ref.stage, ref.key)
    g = Geometry(attrs["x"], attrs["y"], attrs["scale"])
    return Alignment(g, attrs["confidence"], arrays["map"], arrays["cost"])


@task(cache_policy=NO_CACHE, task_run_name="decode-{role}")
def decode(path: str, role: str, store: Store):
    key = stage_key("decode", VERSIONS["decode"], file=store.file_digest(path), width=WORK_WIDTH)

    def compute():
        t = decode_thumbnails(path, WORK_WIDTH)
        fps = 1.0 / float(np.median(np.diff(t.pts))) if len(t.pts) > 1 else 0.0
        return {"pts": t.pts, "thumbs": t.frames}, {"size": list(t.full_size), "n_frames": len(t.pts), "fps": fps}

    return _cached_or_computed(store, "decode", key, compute)


@task(cache_policy=NO_CACHE)
def locate(bg: Artifact, fg: Artifact, store: Store):
    key = stage_key("locate", VERSIONS["locate"], bg=bg.key, fg=fg.key)

    def compute():
        b, f = load_thumbnails(store, bg), load_thumbnails(store, fg)
        try:
            found = locate_lib(b.frames, b.full_size, f.frames, f.full_size)
        except ValueError as exc:
            raise AlignmentError(f"fg cannot be placed in bg: {exc}") from exc
        g = found.geometry
        return {}, {"x": g.x, "y": g.y, "scale": g.scale, "score": found.score}

    return _cached_or_computed(store, "locate", key, compute)


@task(cache_policy=NO_CACHE, task_run_name="embed-{role}")
def embed(video: Artifact, role: str, fg_size: tuple[int, int], region: Artifact | None, store: Store,
          device: Device, weights: str | None = None):
    """Embed bg's region under fg, or fg itself, on the same small grid.

    bg's key holds the region's *geometry* (whole working pixels), not the
    locate key: a new fg at the same place reuses bg's embeddings.
    """
    embedder = FrameEmbedder(device, weights)
    grid = embedding_grid(fg_size)
    geometry = None
    if region is not None:
        a = region.attrs or {}
        geometry = Geometry(float(a["x"]), float(a["y"]), float(a["scale"]))
    key = stage_key("embed", VERSIONS["embed"], video=video.key, model=embedder.model_id, grid=grid.shape,
                    geometry=None if geometry is None else [round(geometry.x, 3), round(geometry.y, 3),
                                                            round(geometry.scale, 5)], fg_size=list(fg_size))

    def compute():
        t = load_thumbnails(store, video)
        if geometry is None:
            thumbs = fg_on_grid(t.frames, t.full_size, grid)
        else:
            thumbs, _ = bg_on_grid(t.frames, t.full_size, geometry, grid)
        return {"emb": embedder.embed(thumbs, f"embed {role}")}, {"model": embedder.model_id}

    return _cached_or_computed(store, "embed", key, compute)


@task(cache_policy=NO_CACHE)
def index(bg_emb: Artifact, fg_emb: Artifact, store: Store, device: Device, k: int = K_NEIGHBOURS):
    key = stage_key("index", VERSIONS["index"], bg=bg_emb.key, fg=fg_emb.key, k=k)

    def compute():
        b = store.read("embed", bg_emb.key)[0]["emb"]
        f = store.read("embed", fg_emb.key)[0]["emb"]
        idx, sim = nearest_frames(b, f, k, device)
        return {"knn_idx": idx, "knn_sim": sim}, {"n_bg": len(b)}

    return _cached_or_computed(store, "index", key, compute)


@task(cache_policy=NO_CACHE)
def dtw(knn: Artifact, bg: Artifact, fg: Artifact, store: Store):
    key = stage_key("dtw", VERSIONS["dtw"], index=knn.key, bg=bg.key, fg=fg.key)

    def compute():
        arrays, attrs = store.read("index", knn.key)
        b, f = store.read("decode", bg.key)[0]["pts"], store.read("decode", fg.key)[0]["pts"]
        ratio = frame_ratio(b, f)
        path = knn_alignment(arrays["knn_idx"], arrays["knn_sim"], int(attrs["n_bg"]), ratio=ratio)
        return {"map": path.astype(np.int32)}, {"ratio": ratio}

    return _cached_or_computed(store, "dtw", key, compute)


@task(cache_policy=NO_CACHE)
def spatial(path: Artifact, region: Artifact, bg: Artifact, fg: Artifact, bg_file: str, fg_file: str,
            store: Store, device: Device):
    key = stage_key("spatial", VERSIONS["spatial"], dtw=path.key, locate=region.key)

    def compute():
        b, f = load_thumbnails(store, bg), load_thumbnails(store, fg)
        a = region.attrs or {}
        start = Geometry(float(a["x"]), float(a["y"]), float(a["scale"]))
        coarse = store.read("dtw", path.key)[0]["map"].astype(np.int64)

        def read_full(bg_idx, fg_idx):
            return read_gray_frames(bg_file, bg_idx, b.pts), read_gray_frames(fg_file, fg_idx, f.pts)

        al = refine_alignment(b, f, start, coarse, xp=device.xp, read_full=read_full,
                              located_score=float(a.get("score", 1.0)))
        g = al.geometry
        return ({"map": al.frames.astype(np.int32), "cost": al.cost.astype(np.float32)},
                {"x": g.x, "y": g.y, "scale": g.scale, "confidence": al.confidence})

    return _cached_or_computed(store, "spatial", key, compute)


@task(cache_policy=NO_CACHE)
def composite(bg_file: str, fg_file: str, output: str, alignment: Artifact, store: Store, border: int,
              blend: bool, comment: str | None = None) -> Artifact:
    """Never cached: the output video is the product, not an intermediate."""
    start = time.perf_counter()
    al = load_alignment(store, alignment)
    composite_lib.composite(bg_file, fg_file, output, al, border=border, blend=blend, comment=comment)
    return replace(Artifact("composite", output, computed=True), seconds=time.perf_counter() - start)
