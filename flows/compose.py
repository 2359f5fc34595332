"""The DAG for one pair: decode -> locate -> embed -> index -> dtw -> spatial -> composite."""

from __future__ import annotations

import logging
from pathlib import Path

from prefect import flow
from prefect.runtime import deployment as current_deployment
from prefect.task_runners import ThreadPoolTaskRunner

from vidkompy.batch import settings_comment
from vidkompy.chunks import KEYINT
from vidkompy.device import probe_device
from vidkompy.encoding import OutputSettings
from vidkompy.errors import AlignmentError
from vidkompy.models import ComposeResult, Stored
from vidkompy.paths import check_inputs
from vidkompy.store import ArtifactDamaged, Store
from vidkompy_flows.segments import check_segments, compose_segments, resolve_segments
from vidkompy_tasks import composite, decode, dtw, embed, index, locate, spatial
from vidkompy_tasks.progress import progress_artifacts
from vidkompy_tasks.report import report
from vidkompy_tasks.stages import load_alignment

log = logging.getLogger("vidkompy")

# Below this median NCC of fg against the bg region under it, fg is not taken to be part of bg.
MIN_CONFIDENCE = 0.75


def _align(bg: str, fg: str, store: Store, device, weights: str | None) -> dict[str, Stored]:
    bg_dec = decode.submit(bg, "bg", store)
    fg_dec = decode.submit(fg, "fg", store)
    if fg_dec.result().value.black:
        raise AlignmentError(f"{fg}: every sampled frame is black (or bars only): there is no picture to find in bg; "
                             "is it the right file?")
    region = locate.submit(bg_dec, fg_dec, store)
    bg_emb = embed.submit(bg_dec, "bg", fg_dec, region, store, device, weights)
    fg_emb = embed.submit(fg_dec, "fg", fg_dec, None, store, device, weights)
    knn = index.submit(bg_emb, fg_emb, bg_dec, fg_dec, store, device)
    path = dtw.submit(knn, bg_emb, fg_emb, bg_dec, fg_dec, store)
    aligned = spatial.submit(path, region, bg_dec, fg_dec, bg, fg, store, device)
    futures = {"decode-bg": bg_dec, "decode-fg": fg_dec, "locate": region, "embed-bg": bg_emb,
               "embed-fg": fg_emb, "index": knn, "dtw": path, "spatial": aligned}
    aligned.wait()
    return {name: f.result() for name, f in futures.items()}


@flow(name="compose", task_runner=ThreadPoolTaskRunner(max_workers=2), log_prints=False)
def compose(
    bg: str,
    fg: str,
    output: str | None = None,
    border: int = 8,
    blend: bool = False,
    gpu: bool = True,
    cache_dir: str | None = None,
    weights: str | None = None,
    write_video: bool = True,
    force: bool = False,
    plot: bool = False,
    plot_in_ui: bool = False,
    codec: str = "h264",
    crf: int | None = None,
    preset: str | None = None,
    audio: str = "fg",
    keyint: int = KEYINT,
    segments: int | str = 1,
    dask_address: str | None = None,
) -> ComposeResult:
    """Overlay fg on bg; returns the alignment, the output path and what each stage did.

    ``plot`` writes the frame-map plot next to the output; the markdown artifact carries
    it when ``plot_in_ui`` (batches) or in deployment runs, where people read the UI.
    ``keyint``: fg frames per independently encoded chunk of the output (`vidkompy.chunks`).
    ``segments`` (a number or "auto") composes the output in that many segments, each
    its own task run (on the Dask scheduler at ``dask_address`` when given), joined by
    stream copy; 1, the default, is one pass.
    """
    settings = OutputSettings(codec, crf, preset, audio, keyint)
    check_segments(segments)
    _, _, out = check_inputs(bg, fg, output, write_video, settings)
    store = Store.open(cache_dir)
    device = probe_device(gpu)
    in_deployment = current_deployment.id is not None
    with progress_artifacts(in_deployment):
        try:
            refs = _align(bg, fg, store, device, weights)
        except ArtifactDamaged as exc:
            # a stored chunk no longer reads back: drop that artifact, and the stages compute it again
            log.warning("cache: %s is damaged; computing it again", exc)
            store.discard(exc.stage, exc.key)
            refs = _align(bg, fg, store, device, weights)
        alignment = load_alignment(store, refs["spatial"])
        n, unmatched = len(alignment.frames), int((~alignment.matched).sum())
        if not force and unmatched > n - unmatched:
            raise AlignmentError(
                f"{fg}: {unmatched} of {n} frames have no counterpart in {bg}, more than match; "
                "use --force to compose anyway")
        if not force and alignment.confidence < MIN_CONFIDENCE:
            raise AlignmentError(
                f"{fg}: does not look like a part of {bg} (confidence {alignment.confidence:.2f} < "
                f"{MIN_CONFIDENCE}); use --force to compose anyway")
        if out is not None:
            comment = settings_comment(border, blend, weights, settings)
            count = resolve_segments(segments, len(alignment.frames), refs["decode-fg"].value.fps,
                                     keyint=keyint, dask_address=dask_address)
            if count > 1:
                refs["composite"] = compose_segments(
                    bg, fg, str(out), refs["spatial"], refs["decode-bg"], refs["decode-fg"], store, segments=count,
                    border=border, blend=blend, settings=settings, comment=comment, dask_address=dask_address)
            else:
                # in this thread: Ctrl-C must reach the writer so that its temporary file is removed
                refs["composite"] = composite(bg, fg, str(out), refs["spatial"], store, border, blend, settings,
                                              comment)
    result = ComposeResult(
        alignment, str(out) if out else None,
        {name: round(r.seconds, 3) for name, r in refs.items() if r.computed},
        tuple(name for name, r in refs.items() if r.computed),
        {role: refs[f"decode-{role}"].value.lost_frames for role in ("bg", "fg")},
        {"border": border, "blend": blend, "codec": codec, "crf": crf, "preset": preset, "audio": audio,
         "keyint": keyint, "gpu": gpu, "device": device.name, "weights": weights,
         "embedding": refs["embed-fg"].value.model, "force": force},
    )
    plot_path = str(out.with_suffix(".map.png")) if plot and out is not None else None
    report(Path(out or fg).stem, result, refs["decode-bg"], refs["decode-fg"], store,
           with_plot=plot_in_ui or in_deployment, plot_path=plot_path)
    return result
