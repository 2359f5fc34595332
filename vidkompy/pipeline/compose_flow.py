"""The DAG for one pair: decode -> locate -> embed -> index -> dtw -> spatial -> composite.

Where locate finds fg's samples at different places (a reframed fg), the placement stage follows fg first
and, when it moves, takes the place of embed, index, dtw and spatial.
"""

from __future__ import annotations

import logging
from pathlib import Path

from prefect import flow
from prefect.runtime import deployment as current_deployment
from prefect.task_runners import ThreadPoolTaskRunner

from vidkompy.conform.formats import check_timeline_path, timeline_target
from vidkompy.device import Device, probe_device
from vidkompy.errors import AlignmentError
from vidkompy.media.encoding import OutputSettings, depth_loss
from vidkompy.media.pairs import settings_comment
from vidkompy.media.paths import check_inputs
from vidkompy.models import Aligned, ComposeResult, Inputs, RunSettings, Stored
from vidkompy.options import Options
from vidkompy.pipeline.report import report
from vidkompy.pipeline.segments_flow import check_segments, compose_segments, resolve_segments
from vidkompy.pipeline.tasks import (
    composite,
    decode,
    dtw,
    embed,
    index,
    load_alignment,
    locate,
    placement,
    spatial,
    timeline,
)
from vidkompy.pipeline.ui_progress import progress_artifacts
from vidkompy.store.artifacts import ArtifactDamaged, Store

log = logging.getLogger("vidkompy")

# Below this median NCC of fg against the bg region under it, fg is not taken to be part of bg.
MIN_CONFIDENCE = 0.75


def _align(inputs: Inputs, store: Store, device: Device, weights: str | None) -> dict[str, Stored]:
    bg, fg = inputs.bg.path, inputs.fg.path
    bg_dec = decode.submit(bg, "bg", store, inputs.bg)
    fg_dec = decode.submit(fg, "fg", store, inputs.fg)
    if fg_dec.result().value.black:
        raise AlignmentError(f"{fg}: every sampled frame is black (or bars only): there is no picture to find in bg; "
                             "is it the right file?")
    region = locate.submit(bg_dec, fg_dec, store)
    if region.result().value.elsewhere:
        # fg's samples matched at different places: a reframed fg; follow it before anything else
        moved = placement.submit(region, bg_dec, fg_dec, bg, fg, store)
        if moved.result().value.placement != "fixed":
            futures = {"decode-bg": bg_dec, "decode-fg": fg_dec, "locate": region, "placement": moved}
            return {name: f.result() for name, f in futures.items()}
    bg_emb = embed.submit(bg_dec, "bg", fg_dec, region, store, device, weights)
    fg_emb = embed.submit(fg_dec, "fg", fg_dec, None, store, device, weights)
    knn = index.submit(bg_emb, fg_emb, bg_dec, fg_dec, store, device)
    path = dtw.submit(knn, bg_emb, fg_emb, bg_dec, fg_dec, store)
    aligned = spatial.submit(path, region, bg_dec, fg_dec, bg, fg, store, device)
    futures = {"decode-bg": bg_dec, "decode-fg": fg_dec, "locate": region, "embed-bg": bg_emb,
               "embed-fg": fg_emb, "index": knn, "dtw": path, "spatial": aligned}
    aligned.wait()
    return {name: f.result() for name, f in futures.items()}


def aligned_ref(refs: dict[str, Stored]) -> Stored:
    """The stage whose artifact holds the answer: the placement's where fg was followed from the start."""
    return refs["spatial"] if "spatial" in refs else refs["placement"]


def _unmatched_reason(aligned: Aligned, unmatched: int, n: int, bg: str) -> str:
    """Why most of fg is unmatched, as far as the alignment can tell: searched at every placement it can follow
    (one, per shot, tracked), fg's frames either matched nowhere or only at scattered places."""
    if aligned.looks_unrelated:
        return (f"{unmatched} of {n} frames match {bg} only at scattered places, which form no shot and no smooth "
                "track: fg looks like other footage")
    where = " at any placement (fixed, per shot or tracked)" if aligned.searched else ""
    return f"{unmatched} of {n} frames have no counterpart in {bg}{where}, more than match"


@flow(name="compose", task_runner=ThreadPoolTaskRunner(max_workers=2), log_prints=False)
def compose(
    bg: str,
    fg: str,
    output: str | None = None,
    options: Options = Options(),  # noqa: B008  (frozen: one shared default is safe, and the UI form shows it)
    write_video: bool = True,
    plot_in_ui: bool = False,
    inputs: Inputs | None = None,
) -> ComposeResult:
    """Overlay fg on bg; returns the alignment, the output path and what each stage did.

    ``options`` holds every setting of the run (`vidkompy.options.Options`).
    ``write_video=False`` aligns only. ``plot_in_ui`` draws the frame-map plot
    into the markdown artifact (batches; deployment runs always do, where
    people read the UI). ``inputs``: both inputs already probed and the output
    already checked by the caller (`vidkompy.pipeline.entry`); a deployment run
    checks them here, once.
    """
    settings = OutputSettings.of(options)
    check_segments(options.segments)
    if inputs is None:  # a deployment run: nothing has checked them yet
        inputs = check_inputs(bg, fg, output, write_video, settings)
        if options.timeline:
            check_timeline_path(timeline_target(options.timeline, bg, fg, inputs.output))
    timeline_path = timeline_target(options.timeline, bg, fg, inputs.output) if options.timeline else None
    out = None if inputs.output is None else Path(inputs.output)
    store = Store.open(options.cache_dir)
    device = probe_device(options.gpu)
    in_deployment = current_deployment.id is not None
    with progress_artifacts(in_deployment):
        try:
            refs = _align(inputs, store, device, options.weights)
        except ArtifactDamaged as exc:
            # a stored chunk no longer reads back: drop that artifact, and the stages compute it again
            log.warning("cache: %s is damaged; computing it again", exc)
            store.discard(exc.stage, exc.key)
            refs = _align(inputs, store, device, options.weights)
        answer = aligned_ref(refs)
        alignment = load_alignment(store, answer)
        n, unmatched = len(alignment.frames), alignment.n_unmatched
        if not options.force and unmatched > n - unmatched:
            raise AlignmentError(f"{fg}: {_unmatched_reason(answer.value, unmatched, n, bg)}; "
                                 "use --force to compose anyway")
        if not options.force and alignment.confidence < MIN_CONFIDENCE:
            raise AlignmentError(
                f"{fg}: does not look like a part of {bg} (confidence {alignment.confidence:.2f} < "
                f"{MIN_CONFIDENCE}); use --force to compose anyway")
        if out is not None:
            loss = depth_loss(options.codec, (inputs.bg.pix_fmt, inputs.fg.pix_fmt), options.bit_depth)
            if loss:
                log.warning("%s", loss)
            comment = settings_comment(options)
            count = resolve_segments(options.segments, len(alignment.frames), refs["decode-fg"].value.fps,
                                     keyint=options.keyint, dask_address=options.dask)
            if count > 1:
                refs["composite"] = compose_segments(
                    inputs, str(out), answer, refs["decode-bg"], refs["decode-fg"], store, segments=count,
                    border=options.border, blend=options.blend, settings=settings, comment=comment,
                    dask_address=options.dask)
            else:
                # in this thread: Ctrl-C must reach the writer so that its temporary file is removed
                refs["composite"] = composite(inputs, str(out), answer, store, options.border,
                                              options.blend, settings, comment)
    if timeline_path is not None:
        refs["timeline"] = timeline(inputs, aligned_ref(refs), store, str(timeline_path), options.audio)
    result = ComposeResult(
        alignment, str(out) if out else None,
        {name: round(r.seconds, 3) for name, r in refs.items() if r.computed},
        tuple(name for name, r in refs.items() if r.computed),
        {role: refs[f"decode-{role}"].value.lost_frames for role in ("bg", "fg")},
        # a fg followed from the start (placement) was aligned without embeddings
        RunSettings(options, device.name, refs["embed-fg"].value.model if "embed-fg" in refs else "none"),
        refs["timeline"].value if "timeline" in refs else None,
    )
    plot_path = str(out.with_suffix(".map.png")) if options.plot and out is not None else None
    report(Path(out or fg).stem, result, refs["decode-bg"], refs["decode-fg"], store,
           with_plot=plot_in_ui or in_deployment, plot_path=plot_path)
    return result
