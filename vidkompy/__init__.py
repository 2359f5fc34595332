"""vidkompy: overlay a foreground video on the background video it shows part of.

    >>> import vidkompy
    >>> result = vidkompy.compose("bg.mp4", "fg.mp4", blend=True)   # doctest: +SKIP
    >>> result.x, result.y, result.scale, result.confidence, result.frames[:3], result.output

Every option of the command line is a keyword argument here, under its long
name (``border``, ``blend``, ``gpu``, ``cache_dir``, ``codec``, ...): they are
the fields of `Options`, which can also be passed whole as ``options=``.
`compose` and `align` run the Prefect flow through `vidkompy.pipeline.entry`,
the entry the command line uses too.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import fields
from importlib import metadata
from typing import Any, TypeVar

from vidkompy.models import Alignment, BatchResult, ComposeResult, Geometry, PairResult, RunSettings, VideoInfo
from vidkompy.options import Options

try:
    __version__ = metadata.version("vidkompy")
except metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["Alignment", "BatchResult", "ComposeResult", "Geometry", "Options", "PairResult", "RunSettings",
           "VideoInfo", "align", "batch", "compose"]

F = TypeVar("F", bound=Callable[..., Any])


def _options_as_keywords(fn: F) -> F:
    """Show `Options`' fields as ``fn``'s keyword-only parameters (help(), IDEs, inspect.signature).

    The list is read off the dataclass, so it is written once: ``fn`` itself takes them as ``**settings``.
    """
    sig = inspect.signature(fn)
    params = [p for p in sig.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    params += [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default, annotation=f.type)
               for f in fields(Options)]
    fn.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    return fn


@_options_as_keywords
def compose(bg: str | os.PathLike, fg: str | os.PathLike, output: str | os.PathLike | None = None, *,
            options: Options | None = None, **settings: Any) -> ComposeResult:
    """Align fg in bg and write the overlay; returns the alignment, the output path and timings.

    ``output`` defaults to ``{bg_stem}_overlay_{fg_stem}.mp4`` in the working directory. ``settings``
    are `Options` fields by name, applied over ``options`` (the defaults when None).
    """
    from vidkompy.pipeline.entry import run_compose

    return run_compose(bg, fg, output, options=Options.build(options, **settings), write_video=True)


@_options_as_keywords
def align(bg: str | os.PathLike, fg: str | os.PathLike, *, options: Options | None = None,
          **settings: Any) -> ComposeResult:
    """Only the alignment (no video written), sharing the cache with `compose`."""
    from vidkompy.pipeline.entry import run_compose

    return run_compose(bg, fg, options=Options.build(options, **settings), write_video=False)


@_options_as_keywords
def batch(folder: str | os.PathLike, output_dir: str | os.PathLike, *, max_parallel: int = 4,
          deployment: bool = False, options: Options | None = None, **settings: Any) -> BatchResult:
    """Compose every ``NAME.bg.EXT`` + ``NAME.fg.EXT`` pair of ``folder`` into ``output_dir``, each with the
    same options; ``deployment`` runs the `batch` deployment on the configured Prefect server instead."""
    from vidkompy.pipeline.entry import run_batch

    return run_batch(folder, output_dir, options=Options.build(options, **settings), max_parallel=max_parallel,
                     deployment=deployment)
