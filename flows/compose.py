"""The DAG for one pair: decode -> locate -> embed -> index -> dtw -> spatial -> composite."""

from __future__ import annotations

from pathlib import Path

from prefect import flow
from prefect.runtime import deployment as current_deployment
from prefect.task_runners import ThreadPoolTaskRunner

from tasks import composite, decode, dtw, embed, index, locate, spatial
from tasks.report import report
from vidkompy.batch import settings_comment
from vidkompy.device import probe_device
from vidkompy.errors import AlignmentError
from vidkompy.paths import check_inputs
from vidkompy.store import Artifact, Store

# Below this median NCC of fg against the bg region under it, fg is not taken to be part of bg.
MIN_CONFIDENCE = 0.75
STAGES = ("decode-bg", "decode-fg", "locate", "embed-bg", "embed-fg", "index", "dtw", "spatial", "composite")


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
) -> dict:
    """Overlay fg on bg; returns the alignment, the output path and what each stage did.

    ``plot`` writes the frame-map plot next to the output; the markdown artifact carries
    it when ``plot_in_ui`` (batches) or in deployment runs, where people read the UI.
    """
    _, fg_info, out = check_inputs(bg, fg, output, write_video)
    store = Store.open(cache_dir)
    device = probe_device(gpu)
    fg_size = (fg_info.width, fg_info.height)

    bg_dec = decode.submit(bg, "bg", store)
    fg_dec = decode.submit(fg, "fg", store)
    region = locate.submit(bg_dec, fg_dec, store)
    bg_emb = embed.submit(bg_dec, "bg", fg_size, region, store, device, weights)
    fg_emb = embed.submit(fg_dec, "fg", fg_size, None, store, device, weights)
    knn = index.submit(bg_emb, fg_emb, store, device)
    path = dtw.submit(knn, bg_dec, fg_dec, store)
    aligned = spatial.submit(path, region, bg_dec, fg_dec, bg, fg, store, device).result()
    refs: dict[str, Artifact] = {
        name: f.result()
        for name, f in zip(STAGES, (bg_dec, fg_dec, region, bg_emb, fg_emb, knn, path), strict=False)
    }
    refs["spatial"] = aligned

    a = aligned.attrs or {}
    if a["confidence"] < MIN_CONFIDENCE and not force:
        raise AlignmentError(
            f"{fg}: does not look like a part of {bg} (confidence {a['confidence']:.2f} < {MIN_CONFIDENCE}); "
            "use --force to compose anyway"
        )
    if out is not None:
        comment = settings_comment(border, blend, weights)
        # in this thread: Ctrl-C must reach the writer so that its temporary file is removed
        refs["composite"] = composite(bg, fg, str(out), aligned, store, border, blend, comment)
    frames = store.read("spatial", aligned.key)[0]["map"]
    summary = {
        "x": float(a["x"]),
        "y": float(a["y"]),
        "scale": float(a["scale"]),
        "confidence": float(a["confidence"]),
        "frames": [int(f) for f in frames],
        "output": str(out) if out else None,
        "device": device.name,
        "computed": [name for name, r in refs.items() if r.computed],
        "seconds": {name: round(r.seconds, 3) for name, r in refs.items() if r.computed},
    }
    plot_path = str(out.with_suffix(".map.png")) if plot and out is not None else None
    report(Path(out or fg).stem, summary, bg_dec.result(), fg_dec.result(), aligned, store,
           with_plot=plot_in_ui or current_deployment.id is not None, plot_path=plot_path)
    return summary
