"""Artifacts for Prefect's UI: the alignment of a pair (markdown with the frame-map plot, and a table row)."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from vidkompy.report import alignment_markdown, frame_map_png
from vidkompy.store import Artifact, Store

ALIGNMENT_TABLE = "vidkompy alignment"


@task(cache_policy=NO_CACHE)
def report(name: str, summary: dict, bg: Artifact, fg: Artifact, aligned: Artifact, store: Store,
           with_plot: bool, plot_path: str | None = None) -> None:
    """The plot costs about a second (matplotlib): drawn for deployment runs, whose UI people read, and --plot."""
    png = None
    if with_plot or plot_path:
        bg_pts = store.read("decode", bg.key)[0]["pts"]
        fg_pts = store.read("decode", fg.key)[0]["pts"]
        cost = store.read("spatial", aligned.key)[0]["cost"]
        png = frame_map_png(summary["frames"], cost, fg_pts, bg_pts)
    if plot_path and png:
        Path(plot_path).write_bytes(png)
    create_markdown_artifact(alignment_markdown(name, summary, png), description=f"alignment of {name}")
    row = {k: summary[k] for k in ("x", "y", "scale", "confidence", "output")}
    create_table_artifact([{**row, "frames": len(summary["frames"])}], description=ALIGNMENT_TABLE)
