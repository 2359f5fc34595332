"""vidkompy: overlay a foreground video on the background video it shows part of.

    >>> import vidkompy
    >>> result = vidkompy.compose("bg.mp4", "fg.mp4")          # doctest: +SKIP
    >>> result.x, result.y, result.scale, result.confidence, result.frames[:3], result.output

The library modules never import Prefect; `compose` and `align` run the
Prefect flow through `flows.run`, the entry the command line uses too.
"""

from __future__ import annotations

import os
from importlib import metadata

from vidkompy.models import Alignment, ComposeResult, Geometry, VideoInfo

try:
    __version__ = metadata.version("vidkompy")
except metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["Alignment", "ComposeResult", "Geometry", "VideoInfo", "align", "compose"]


def compose(
    bg: str | os.PathLike,
    fg: str | os.PathLike,
    output: str | os.PathLike | None = None,
    border: int = 8,
    blend: bool = False,
    gpu: bool = True,
    cache_dir: str | os.PathLike | None = None,
    *,
    weights: str | os.PathLike | None = None,
    force: bool = False,
) -> ComposeResult:
    """Align fg in bg and write the overlay; returns the alignment, the output path and timings."""
    from vidkompy_flows.run import run_compose

    return run_compose(bg=str(bg), fg=str(fg), output=None if output is None else str(output), border=border,
                       blend=blend, gpu=gpu, cache_dir=None if cache_dir is None else str(cache_dir),
                       weights=None if weights is None else str(weights), force=force, write_video=True)


def align(bg: str | os.PathLike, fg: str | os.PathLike, gpu: bool = True,
          cache_dir: str | os.PathLike | None = None, *, weights: str | os.PathLike | None = None,
          force: bool = False) -> ComposeResult:
    """Only the alignment (no video written), sharing the cache with `compose`."""
    from vidkompy_flows.run import run_compose

    return run_compose(bg=str(bg), fg=str(fg), gpu=gpu, write_video=False, force=force,
                       cache_dir=None if cache_dir is None else str(cache_dir),
                       weights=None if weights is None else str(weights))
