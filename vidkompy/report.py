"""What a person looks at after a run: a plot of the frame map and a short summary."""

from __future__ import annotations

import io

import numpy as np


def frame_map_png(frames: np.ndarray, cost: np.ndarray | None, fg_pts: np.ndarray, bg_pts: np.ndarray) -> bytes:
    """fg time against the time of the bg frame under it, with the per-frame match cost below."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    frames = np.asarray(frames)
    fig = Figure(figsize=(6.4, 4.8), dpi=80)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    t_fg = fg_pts[: len(frames)] - fg_pts[0]
    top.plot(t_fg, bg_pts[frames], lw=1.2, color="tab:blue")
    top.set_ylabel("bg time (s)")
    top.set_title("frame map: the bg frame under each fg frame")
    top.grid(alpha=0.3)
    if cost is not None and len(cost):
        bottom.plot(t_fg, np.asarray(cost)[: len(frames)], lw=0.8, color="tab:red")
    bottom.set_ylabel("cost log(1-NCC)")
    bottom.set_xlabel("fg time (s)")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def alignment_markdown(name: str, summary: dict, png: bytes | None = None) -> str:
    """A markdown summary of one pair's alignment (with the plot inline when given)."""
    import base64

    frames = summary["frames"]
    lines = [
        f"# vidkompy: {name}",
        "",
        "| x | y | scale | confidence | fg frames | bg frames used |",
        "|---|---|---|---|---|---|",
        f"| {summary['x']:.3f} | {summary['y']:.3f} | {summary['scale']:.5f} | {summary['confidence']:.4f} "
        f"| {len(frames)} | {frames[0]} to {frames[-1]} |" if frames else "| | | | | 0 | |",
        "",
    ]
    if summary.get("output"):
        lines += [f"output: `{summary['output']}`", ""]
    if png:
        lines += [f"![frame map](data:image/png;base64,{base64.b64encode(png).decode()})", ""]
    return "\n".join(lines)
