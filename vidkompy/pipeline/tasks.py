"""The stages as Prefect tasks: a content key, then the stored artifact or the library's computation.

Each task computes its key, returns the stored value when the artifact is
complete (final state "Cached") and otherwise calls the library and writes its
arrays chunk by chunk as they are made (state "Completed"); a run killed
mid-stage leaves a partial artifact that the next run of the same key resumes.
Tasks return small typed `Stored` references (`vidkompy.models`), never arrays.
Prefect's own result cache is off (NO_CACHE): the Zarr store is the one source
of truth, so there is no second copy to drift from it. No algorithm here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.states import Completed

from vidkompy.alignment.bins import Bins, bin_seconds, pool
from vidkompy.alignment.dtw import coarse_path, frame_path, frame_ratio
from vidkompy.alignment.embed import FrameEmbedder, embedding_grid
from vidkompy.alignment.frame_match import CHUNK, FINAL_BAND, final_band, final_match, match_frames
from vidkompy.alignment.index import K_NEIGHBOURS, nearest
from vidkompy.alignment.locate import NotFoundError
from vidkompy.alignment.locate import locate as locate_lib
from vidkompy.alignment.placement import DRIFTING, FixedMatch, Placements, follow
from vidkompy.alignment.region import bg_on_grid, fg_on_grid
from vidkompy.alignment.source import ActivePicture, Video
from vidkompy.alignment.spatial import alignment_from, fit_alignment
from vidkompy.conform import build_timeline, read_timecode, write_timeline
from vidkompy.device import Device
from vidkompy.errors import AlignmentError, InputError
from vidkompy.faults import crash_point
from vidkompy.media.bars import BarStats
from vidkompy.media.decode import WORK_WIDTH, ThumbnailDecoder, read_gray_frames_of
from vidkompy.media.encoding import OutputSettings
from vidkompy.models import (
    Aligned,
    Alignment,
    Decoded,
    Embedded,
    Fit,
    FrameMap,
    Inputs,
    Location,
    Neighbours,
    Stored,
    VideoInfo,
    as_attrs,
    from_attrs,
    runs,
)
from vidkompy.overlay import composite as composite_lib
from vidkompy.progress import stage
from vidkompy.store.artifacts import ArtifactDamaged, ArtifactMissing, ArtifactWriter, Store, stage_key

log = logging.getLogger("vidkompy")
T = TypeVar("T")

# Bump a stage's version when its algorithm changes: old artifacts stop matching.
VERSIONS = {"decode": 4, "locate": 3, "embed": 3, "index": 2, "dtw": 3, "spatial": 6, "placement": 1}
BLOCK = 256  # frames per chunk written (and per shard of pictures)
# pictures per compressed chunk inside a shard: windows of 64 read 3x faster than with one, single reads as fast
PICTURES_PER_CHUNK = 8
NCC_CHUNK = BLOCK * 64  # NCC cells per chunk of the final match's store
# Stages whose arrays are a value or two per frame: read whole to verify a cached copy (megabytes at most).
SMALL = {"locate", "index", "dtw", "spatial", "placement"}


def _cached_or_computed(store: Store, stage_name: str, key: str, cls: type[T], compute: Callable[[ArtifactWriter], T]):
    """Load ``stage/key`` if complete, else compute it (resuming a partial one) and store it.

    Under the key's lock: two runs on the same pair compute each stage once.
    """
    with store.lock(stage_name, key):
        if store.has(stage_name, key):
            try:
                artifact = store.artifact(stage_name, key)
                if stage_name in SMALL:
                    for name in artifact.attrs.get("arrays", {}):
                        artifact.load(name)
                return Completed(name="Cached", message="loaded from the store",
                                 data=Stored(stage_name, key, artifact.value(cls), computed=False))
            except (ArtifactMissing, ArtifactDamaged) as exc:
                log.warning("cache: %s is damaged; computing it again", exc)
                store.discard(stage_name, key)
        start = time.perf_counter()
        with store.writer(stage_name, key) as writer:
            if writer.resumed:
                log.info("resuming %s from where an interrupted run left it", stage_name)
            value = compute(writer)
            writer.commit(value)
    return Completed(data=Stored(stage_name, key, value, computed=True, seconds=time.perf_counter() - start))


def video(store: Store, ref: Stored[Decoded], *, active: bool = False) -> Video:
    """A decoded video's working copy, read window by window from the store.

    ``active``: only the picture inside its black bars (fg's, which is what is aligned and pasted).
    """
    artifact = store.read(ref)
    frames, size, box = artifact.array("thumbs"), ref.value.size, ref.value.active
    if active and box is not None:
        return Video(ActivePicture(frames, size, box), artifact.load("pts"), (box[2], box[3]))
    return Video(frames, artifact.load("pts"), size)


def duration(pts: np.ndarray) -> float:
    return max(float(pts[-1] - pts[0]), 1e-3) if len(pts) else 1e-3


@task(cache_policy=NO_CACHE, task_run_name="decode-{role}")
def decode(path: str, role: str, store: Store, info: VideoInfo | None = None):
    """``info``: the run's probe of ``path`` (probed here when None)."""
    key = stage_key("decode", VERSIONS["decode"], file=store.file_digest(path), width=WORK_WIDTH)

    def compute(w: ArtifactWriter) -> Decoded:
        decoder = ThumbnailDecoder(path, WORK_WIDTH, info=info)
        tw, th = decoder.size
        thumbs = w.array("thumbs", (th, tw), "uint8", PICTURES_PER_CHUNK, shard=BLOCK, pictures=True)
        w.array("pts", (), "float64", BLOCK * 16)
        lost = int(w.progress.get("lost", 0))
        bars = BarStats.restore(w.progress["bars"]) if "bars" in w.progress else BarStats(*decoder.info_size)
        with stage(f"decode {Path(path).name}", decoder.info.n_frames or None) as bar:
            bar.advance(len(thumbs))
            blocks = decoder.blocks(BLOCK, after=w.progress.get("last_pts"), start=len(thumbs), bars=bars)
            for k, block in enumerate(blocks):
                w.append(thumbs=block.frames, pts=block.pts)
                w.record(last_pts=float(block.pts[-1]), lost=lost + decoder.lost, bars=bars.state())
                bar.advance(len(block.pts))
                crash_point(f"decode:block:{k}")
        lost += decoder.lost
        if not len(thumbs):
            raise InputError(path, "has no decodable video frames")
        if lost:
            where = ", ".join(f"{t:.1f} s" for t in decoder.damaged_at)
            log.warning("%s: damaged: decoded past it, %d frame(s) lost (near %s)", path, lost, where or "?")
        pts = np.asarray(w.group["pts"][max(0, len(thumbs) - 1000):])
        fps = 1.0 / float(np.median(np.diff(pts))) if len(pts) > 1 else 0.0
        active = bars.active()
        return Decoded(len(thumbs), decoder.info_size, (tw, th), fps, lost, active.box, active.black)

    return _cached_or_computed(store, "decode", key, Decoded, compute)


@task(cache_policy=NO_CACHE, task_run_name="locate")
def locate(bg: Stored[Decoded], fg: Stored[Decoded], store: Store):
    key = stage_key("locate", VERSIONS["locate"], bg=bg.key, fg=fg.key)

    def compute(w: ArtifactWriter) -> Location:
        b, f = video(store, bg), video(store, fg, active=True)
        try:
            found = locate_lib(b.frames, b.size, f.frames, f.size, length_ratio=duration(f.pts) / duration(b.pts))
        except NotFoundError as exc:
            raise AlignmentError(f"fg cannot be placed in bg: {exc}") from exc
        return Location(found.geometry, found.score, found.elsewhere)

    return _cached_or_computed(store, "locate", key, Location, compute)


@task(cache_policy=NO_CACHE, task_run_name="embed-{role}")
def embed(decoded: Stored[Decoded], role: str, fg: Stored[Decoded], region: Stored[Location] | None,
          store: Store, device: Device, weights: str | None = None):
    """Embed bg's region under fg, or fg itself, on the same small grid.

    bg's key holds the region's *geometry* (whole working pixels), not the
    locate key: a new fg at the same place reuses bg's embeddings.
    """
    embedder = FrameEmbedder(device, weights)
    fg_size = fg.value.size if fg.value.active is None else fg.value.active[2:]
    grid = embedding_grid(fg_size)
    geometry = None if region is None else region.value.geometry
    key = stage_key("embed", VERSIONS["embed"], video=decoded.key, model=embedder.model_id, grid=grid.shape,
                    geometry=None if geometry is None else [round(geometry.x, 3), round(geometry.y, 3),
                                                            round(geometry.scale, 5)], fg_size=list(fg_size))

    def compute(w: ArtifactWriter) -> Embedded:
        v = video(store, decoded, active=region is None)
        if geometry is None:
            def to_grid(frames: np.ndarray) -> np.ndarray:
                return fg_on_grid(frames, v.size, grid)
        else:
            def to_grid(frames: np.ndarray) -> np.ndarray:
                return bg_on_grid(frames, v.size, geometry, grid)[0]
        dim = w.progress.get("dim")
        emb = w.array("emb", (int(dim),), "float32", BLOCK * 4) if dim else None
        start = len(emb) if emb is not None else 0
        for block in embedder.embed_video(v.frames, to_grid, start=start, block=BLOCK, label=f"embed {role}"):
            if emb is None:
                dim = block.shape[1]
                emb = w.array("emb", (dim,), "float32", BLOCK * 4)
            w.append(emb=block)
            w.record(dim=int(dim))
            crash_point(f"embed:block:{(len(emb) - 1) // BLOCK}")
        return Embedded(embedder.model_id, len(emb), int(dim))

    return _cached_or_computed(store, "embed", key, Embedded, compute)


def _pooled(store: Store, emb: Stored[Embedded], pts: np.ndarray, bins: Bins) -> np.ndarray:
    arr = store.read(emb).array("emb")
    return pool(((pts[a : a + 4096], arr[a : a + 4096]) for a in range(0, len(arr), 4096)), bins)


@task(cache_policy=NO_CACHE, task_run_name="index")
def index(bg_emb: Stored[Embedded], fg_emb: Stored[Embedded], bg: Stored[Decoded], fg: Stored[Decoded],
          store: Store, device: Device, k: int = K_NEIGHBOURS):
    key = stage_key("index", VERSIONS["index"], bg=bg_emb.key, fg=fg_emb.key, bg_pts=bg.key, fg_pts=fg.key, k=k)

    def compute(w: ArtifactWriter) -> Neighbours:
        bg_pts, fg_pts = store.read(bg).load("pts"), store.read(fg).load("pts")
        seconds = bin_seconds(bg_pts, fg_pts)
        fg_bins, bg_bins = Bins.covering(fg_pts, seconds), Bins.covering(bg_pts, seconds)
        fg_pooled, bg_pooled = _pooled(store, fg_emb, fg_pts, fg_bins), _pooled(store, bg_emb, bg_pts, bg_bins)
        idx, sim = nearest(bg_pooled, fg_pooled, k, device)
        for name, data in (("knn_idx", idx), ("knn_sim", sim), ("fg_bins", fg_pooled), ("bg_bins", bg_pooled)):
            w.put(name, data)
        return Neighbours(seconds, fg_bins.n, bg_bins.n, idx.shape[1])

    return _cached_or_computed(store, "index", key, Neighbours, compute)


@task(cache_policy=NO_CACHE, task_run_name="dtw")
def dtw(knn: Stored[Neighbours], bg_emb: Stored[Embedded], fg_emb: Stored[Embedded], bg: Stored[Decoded],
        fg: Stored[Decoded], store: Store):
    key = stage_key("dtw", VERSIONS["dtw"], index=knn.key, bg=bg_emb.key, fg=fg_emb.key)

    def compute(w: ArtifactWriter) -> FrameMap:
        near = store.read(knn)
        coarse = coarse_path(near.load("knn_idx"), near.load("knn_sim"), near.load("fg_bins"), near.load("bg_bins"))
        bg_pts, fg_pts = store.read(bg).load("pts"), store.read(fg).load("pts")
        seconds = knn.value.bin_seconds
        found = frame_path(store.read(fg_emb).array("emb"), store.read(bg_emb).array("emb"),
                           fg_pts, bg_pts, coarse, Bins.covering(fg_pts, seconds), Bins.covering(bg_pts, seconds))
        w.put("map", found.path.index.astype(np.int32))
        w.put("matched", found.path.matched)
        w.put("sim", found.sim)
        return FrameMap(found.ratio, len(found.path.index), int((~found.path.matched).sum()))

    return _cached_or_computed(store, "dtw", key, FrameMap, compute)


@task(cache_policy=NO_CACHE, task_run_name="spatial")
def spatial(path: Stored[FrameMap], region: Stored[Location], bg: Stored[Decoded], fg: Stored[Decoded],
            bg_file: str, fg_file: str, store: Store, device: Device):
    key = stage_key("spatial", VERSIONS["spatial"], dtw=path.key, locate=region.key)

    def compute(w: ArtifactWriter) -> Aligned:
        b, f = video(store, bg), video(store, fg, active=True)
        stored = store.read(path)
        index, matched, ratio = stored.load("map").astype(np.int64), stored.load("matched"), path.value.ratio
        box = fg.value.active
        read_full = _full_reader(bg_file, fg_file, b, f, box)

        if "fit" in w.progress:  # a resumed run: the fit was done, the frame match had begun
            fit = from_attrs(Fit, w.progress["fit"])
        else:
            fit = fit_alignment(b, f, region.value.geometry, index, matched, ratio, xp=device.xp,
                                read_full=read_full)
        ncc = w.array("ncc", (), "float32", NCC_CHUNK)
        band = final_band(index, FINAL_BAND, len(b), ratio)
        start = int(np.searchsorted(band.offsets, len(ncc)))
        pending: list[np.ndarray] = []  # whole windows, written a zarr chunk's worth at a time:
        for stop, block in match_frames(b, f, fit, band, start=start):  # a write per window cost 3 ms
            pending.append(block)
            if sum(map(len, pending)) >= NCC_CHUNK or stop == len(band):
                w.append(ncc=np.concatenate(pending))
                w.record(fit=as_attrs(fit))
                pending = []
                crash_point(f"spatial:block:{stop // CHUNK}")
        ncc_all = np.asarray(w.group["ncc"][...])
        matched_frames = final_match(band, ncc_all, ratio, f.pts, b.pts)
        moving = follow(b, f, fit, ratio, f.pts, b.pts, fixed=FixedMatch(band, ncc_all, matched_frames),
                        everywhere=fit.drifting >= DRIFTING, read_full=read_full)
        al = alignment_from(fit.geometry, matched_frames, region.value.score, moving, (f.size, b.size))
        return _aligned(w, al, box, moving)

    return _cached_or_computed(store, "spatial", key, Aligned, compute)


def _full_reader(bg_file: str, fg_file: str, b: Video, f: Video, box: tuple[int, int, int, int] | None):
    """Full-size gray frames of both files by index (fg's cut to its active picture): the fit's polish."""
    def read_full(bg_idx, fg_idx):
        bg_full, fg_full = read_gray_frames_of((bg_file, bg_idx, b.pts), (fg_file, fg_idx, f.pts))
        if box is not None:
            x, y, bw, bh = box
            fg_full = {i: img[y : y + bh, x : x + bw] for i, img in fg_full.items()}
        return bg_full, fg_full

    return read_full


@task(cache_policy=NO_CACHE, task_run_name="placement")
def placement(region: Stored[Location], bg: Stored[Decoded], fg: Stored[Decoded], bg_file: str, fg_file: str,
              store: Store):
    """Where locate found fg's samples placed apart: follow the placement over the whole of fg, before (and
    instead of) the embeddings, the DTW and the fixed fit. A value with ``placement == "fixed"`` (and no
    frames) says it found nothing but the located place: the fixed path runs then."""
    key = stage_key("placement", VERSIONS["placement"], locate=region.key)

    def compute(w: ArtifactWriter) -> Aligned:
        b, f = video(store, bg), video(store, fg, active=True)
        box = fg.value.active
        moving = follow(b, f, Fit(region.value.geometry), frame_ratio(b.pts, f.pts), f.pts, b.pts,
                        read_full=_full_reader(bg_file, fg_file, b, f, box))
        if moving is None or moving.match is None:
            return Aligned(region.value.geometry, 0.0, 0, (), box, "fixed", (), 0 if moving is None else
                           moving.scattered, 0 if moving is None else moving.searched)
        return _aligned(w, alignment_from(region.value.geometry, moving.match, region.value.score, moving,
                                          (f.size, b.size)), box, moving)

    return _cached_or_computed(store, "placement", key, Aligned, compute)


def _aligned(w: ArtifactWriter, al: Alignment, box: tuple[int, int, int, int] | None,
             searched: Placements | None) -> Aligned:
    """Store the answer's arrays (the placement only where it moves) and return its value (with what the
    placement search, where it ran, saw)."""
    w.put("map", al.frames.astype(np.int32))
    w.put("score", al.score)
    w.put("matched", al.matched)
    if al.placement is not None:
        w.put("placement", al.placement)
    return Aligned(al.geometry, al.confidence, len(al.frames), tuple(runs(~al.matched)), box, al.placement_mode,
                   al.off_canvas, 0 if searched is None else searched.scattered,
                   0 if searched is None else searched.searched)


def load_alignment(store: Store, ref: Stored[Aligned]) -> Alignment:
    artifact = store.read(ref)
    v = ref.value
    placement = None if v.placement == "fixed" else artifact.load("placement")
    return Alignment(v.geometry, v.confidence, artifact.load("map").astype(np.int64), artifact.load("score"),
                     artifact.load("matched"), v.active, placement, v.placement, v.off_canvas)


@task(cache_policy=NO_CACHE, task_run_name="composite")
def composite(inputs: Inputs, output: str, aligned: Stored[Aligned], store: Store, border: int, blend: bool,
              settings: OutputSettings, comment: str | None = None) -> Stored[str]:
    """Never cached: the output video is the product, not an intermediate."""
    start = time.perf_counter()
    composite_lib.composite(inputs.bg.path, inputs.fg.path, output, load_alignment(store, aligned), border=border,
                            blend=blend, comment=comment, settings=settings, bg_info=inputs.bg)
    return Stored("composite", output, output, computed=True, seconds=time.perf_counter() - start)


@task(cache_policy=NO_CACHE, task_run_name="timeline")
def timeline(inputs: Inputs, aligned: Stored[Aligned], store: Store, path: str, audio: str) -> Stored[str]:
    """The conform as an editor's timeline (`vidkompy.conform`), built from the stored alignment: a cached run
    writes it without running a stage again. Never cached itself: it is a product, milliseconds to build."""
    start = time.perf_counter()
    built = build_timeline(load_alignment(store, aligned), inputs.fg, inputs.bg, audio=audio,
                           fg_timecode=read_timecode(inputs.fg.path), bg_timecode=read_timecode(inputs.bg.path))
    out = str(write_timeline(built, path))
    return Stored("timeline", out, out, computed=True, seconds=time.perf_counter() - start)


__all__ = ["composite", "decode", "dtw", "embed", "index", "load_alignment", "locate", "placement", "spatial",
           "timeline", "video"]
