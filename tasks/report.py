"""Artifacts for Prefect's UI: the alignment of a pair (markdown with the frame-map plot, and a table row)."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from vidkompy.models import ComposeResult, Decoded, Stored
from vidkompy.report import alignment_markdown, frame_map_png
from vidkompy.store import Store

ALIGNMENT_TABLE = "vidkompy alignment"


def alignment_row(result: ComposeResult) -> dict:
    """The pair's one row: what a batch table lists (and reads back across machines)."""
    g = result.alignment.geometry
    return {"x": g.x, "y": g.y, "scale": g.scale, "confidence": result.confidence, "output": result.output,
            "frames": len(result.frames), "unmatched": sum(b - a + 1 for a, b in result.unmatched)}


@task(cache_policy=NO_CACHE, task_run_name="report")
def report(name: str, result: ComposeResult, bg: Stored[Decoded], fg: Stored[Decoded], store: Store,
           with_plot: bool, plot_path: str | None = None) -> None:
    """The plot costs about a second (matplotlib): drawn for deployment runs, whose UI people read, and --plot."""
    png = None
    if with_plot or plot_path:
        bg_pts = store.read("decode", bg.key).load("pts")
        fg_pts = store.read("decode", fg.key).load("pts")
        png = frame_map_png(result.frames, result.score, fg_pts, bg_pts, result.unmatched)
    if plot_path and png:
        Path(plot_path).write_bytes(png)
    create_markdown_artifact(alignment_markdown(name, result, png), description=f"alignment of {name}")
    create_table_artifact([alignment_row(result)], description=ALIGNMENT_TABLE)
