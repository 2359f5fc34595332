"""The run report: what a person reads after a run, in Prefect's UI and beside the output.

A pair's alignment becomes a markdown artifact (with the frame-map plot inline)
and one row of a table artifact; the row is also how a batch reads back the
results of pairs that ran on other machines. ``--plot`` writes the same plot
beside the output.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
from prefect import task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from vidkompy.models import ComposeResult, Decoded, Stored
from vidkompy.store.artifacts import Store

ALIGNMENT_TABLE = "vidkompy alignment"


def alignment_row(result: ComposeResult) -> dict:
    """The pair's one row: what a batch table lists (and reads back across machines)."""
    g = result.alignment.geometry
    return {"x": g.x, "y": g.y, "scale": g.scale, "confidence": result.confidence, "output": result.output,
            "frames": len(result.frames), "unmatched": result.alignment.n_unmatched}


@task(cache_policy=NO_CACHE, task_run_name="report")
def report(name: str, result: ComposeResult, bg: Stored[Decoded], fg: Stored[Decoded], store: Store,
           with_plot: bool, plot_path: str | None = None) -> None:
    """The plot costs about a second (matplotlib): drawn for deployment runs, whose UI people read, and --plot."""
    png = None
    if with_plot or plot_path:
        bg_pts = store.read(bg).load("pts")
        fg_pts = store.read(fg).load("pts")
        a = result.alignment
        png = frame_map_png(result.frames, result.score, fg_pts, bg_pts, result.unmatched,
                            placement=None if a.placement is None else a.placements())
    if plot_path and png:
        Path(plot_path).write_bytes(png)
    create_markdown_artifact(alignment_markdown(name, result, png), description=f"alignment of {name}")
    if result.timeline:  # where an editor picks it up: the file itself stays on the shared disk
        create_link_artifact(Path(result.timeline).as_uri(), link_text=Path(result.timeline).name,
                             description=f"conform timeline of {name}")
    create_table_artifact([alignment_row(result)], description=ALIGNMENT_TABLE)


def frame_map_png(frames: np.ndarray, score: np.ndarray | None, fg_pts: np.ndarray, bg_pts: np.ndarray,
                  unmatched: list[tuple[int, int]] | None = None, placement: np.ndarray | None = None) -> bytes:
    """fg time against the time of the bg frame under it, with the per-frame match quality below.

    fg stretches with no counterpart in bg are shaded red in every panel. A placement
    that moves (``placement``: [x, y, scale] per fg frame) gets a panel of its own:
    the region's top-left x and y over fg time, and its scale where that changes.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    frames = np.asarray(frames)
    moving = placement is not None
    fig = Figure(figsize=(6.4, 6.4 if moving else 4.8), dpi=80)
    axes = fig.subplots(3 if moving else 2, 1, sharex=True,
                        gridspec_kw={"height_ratios": [3, 1.5, 1] if moving else [3, 1]})
    top, bottom = axes[0], axes[-1]
    t_fg = fg_pts[: len(frames)] - fg_pts[0]
    if placement is not None:
        _placement_panel(axes[1], t_fg, np.asarray(placement)[: len(frames)])
    top.plot(t_fg, bg_pts[frames], lw=1.2, color="tab:blue")
    top.set_ylabel("bg time (s)")
    top.set_title("frame map: the bg frame under each fg frame")
    top.grid(alpha=0.3)
    for first, last in unmatched or []:
        for ax in axes:
            ax.axvspan(t_fg[first], t_fg[last], color="tab:red", alpha=0.25, lw=0)
    if unmatched:
        top.plot([], [], color="tab:red", alpha=0.4, lw=6, label="no counterpart in bg")
        top.legend(loc="upper left", fontsize="small")
    if score is not None and len(score):
        bottom.plot(t_fg, np.asarray(score)[: len(frames)], lw=0.8, color="tab:green")
    bottom.set_ylim(0, 1.02)
    bottom.set_ylabel("match (NCC)")
    bottom.set_xlabel("fg time (s)")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _placement_panel(ax, t_fg: np.ndarray, placement: np.ndarray) -> None:
    """x and y of fg's region (bg pixels) over fg time; its scale on a second axis where it changes."""
    ax.plot(t_fg, placement[:, 0], lw=1.0, color="tab:purple", label="x")
    ax.plot(t_fg, placement[:, 1], lw=1.0, color="tab:orange", label="y")
    ax.set_ylabel("placement (px)")
    ax.grid(alpha=0.3)
    scale = placement[:, 2]
    if np.nanmax(scale) - np.nanmin(scale) > 1e-3:
        twin = ax.twinx()
        twin.plot(t_fg, scale, lw=0.8, color="tab:gray", ls="--", label="scale")
        twin.set_ylabel("scale")
        twin.legend(loc="upper right", fontsize="small")
    ax.legend(loc="upper left", fontsize="small")


def placement_lines(result: ComposeResult) -> list[str]:
    """How the placement was decided, and its stretches when it moves (what a person checks first)."""
    a = result.alignment
    if a.placement is None:
        return ["placement: fixed, one for every frame (the samples agreed on it)", ""]
    stretches = a.placement_stretches()
    how = {"per shot": "per shot: still shots at different places, a jump at each cut",
           "tracked": "tracked: the framing moves within shots (pan or zoom) as well as at cuts"}
    lines = [f"placement: {how.get(a.placement_mode, a.placement_mode)}; x, y, scale above are the placement "
             f"most frames share; {len(stretches)} stretches:", "",
             "| fg frames | motion | from x, y, scale | to x, y, scale |", "|---|---|---|---|"]
    for s in stretches[:50]:
        lines.append(f"| {s.first} to {s.last} | {'moves' if s.moves else 'still'} "
                     f"| {s.start.x:.2f}, {s.start.y:.2f}, {s.start.scale:.4f} "
                     f"| {s.end.x:.2f}, {s.end.y:.2f}, {s.end.scale:.4f} |")
    if len(stretches) > 50:
        lines.append(f"| ... and {len(stretches) - 50} more | | | |")
    if a.off_canvas:
        lines += ["", "placed partly outside bg's canvas (only the visible part is pasted): "
                  + ", ".join(f"{x} to {y}" for x, y in a.off_canvas[:20])]
    return [*lines, ""]


def alignment_markdown(name: str, result: ComposeResult, png: bytes | None = None) -> str:
    """A markdown summary of one pair's alignment (with the plot inline when given)."""
    frames = result.frames
    g = result.alignment.geometry
    lines = [
        f"# vidkompy: {name}",
        "",
        "| x | y | scale | confidence | fg frames | bg frames used | unmatched fg frames |",
        "|---|---|---|---|---|---|---|",
        f"| {g.x:.3f} | {g.y:.3f} | {g.scale:.5f} | {result.confidence:.4f} | {len(frames)} "
        f"| {frames[0]} to {frames[-1]} | {result.alignment.n_unmatched} |" if len(frames)
        else "| | | | | 0 | | |",
        "",
    ]
    lines += placement_lines(result)
    if result.unmatched:
        lines += ["fg frames with no counterpart in bg (shown over the bg frame the map holds):", ""]
        lines += [f"- {a} to {b}" for a, b in result.unmatched[:50]]
        if len(result.unmatched) > 50:
            lines.append(f"- ... and {len(result.unmatched) - 50} more ranges")
        lines.append("")
    lost = {k: v for k, v in result.lost_frames.items() if v}
    if lost:
        lines += [", ".join(f"{role}: {n} frame(s) lost to damage" for role, n in lost.items()), ""]
    if result.output:
        lines += [f"output: `{result.output}`", ""]
    if result.timeline:
        lines += [f"timeline: [`{result.timeline}`]({Path(result.timeline).as_uri()})", ""]
    if png:
        lines += [f"![frame map](data:image/png;base64,{base64.b64encode(png).decode()})", ""]
    return "\n".join(lines)
