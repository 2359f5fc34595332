"""The one value that holds every setting of a run.

The command line builds it from its arguments, `vidkompy.compose` and
`vidkompy.align` from their keyword arguments, a deployment's run form from
what a person types into Prefect's UI; the flows take it as one typed
parameter and hand it on unchanged (the batch to every pair). No layer copies
the list of fields: they are read off this dataclass.

A frozen stdlib dataclass rather than a pydantic model: the library below the
pipeline never imports pydantic or Prefect, and Prefect 3 already validates a
dataclass-typed flow parameter with pydantic and shows its fields, types and
defaults in the deployment's form (`tests/pipeline/test_options_schema.py`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

# The output is encoded in independent chunks of this many fg frames (`vidkompy.media.chunks`): x264's and
# x265's own default distance between IDR pictures.
KEYINT = 250
AUTO = "auto"  # --segments auto


@dataclass(frozen=True)
class Options:
    """Every setting of a run, under the command line's long option names.

    Alignment: ``gpu`` (use a CUDA GPU when one is found), ``cache_dir`` (the
    artifact store: a folder or fsspec URL; None for the user cache folder),
    ``weights`` (a MobileNetV3-Small weights file; None looks in the usual
    places, then falls back to the weight-free embedding), ``force`` (compose
    even when fg does not look like part of bg).

    Overlay: ``border`` (px of fg's edge that ``blend`` feathers where bg is
    visible), ``plot`` (write the frame-map plot beside the output).

    Output: ``codec`` (h264, hevc, prores, ffv1), ``crf`` and ``preset`` (x264 /
    x265 only; None for the codec's default), ``audio`` (fg, bg or none),
    ``keyint`` (fg frames per independently encoded chunk), ``bit_depth``
    (8 or 10; None follows the inputs where the codec carries it).

    Editing: ``timeline`` (also write the conform as a timeline an editor
    opens: a path ending in .otio, .xml (FCP7 XML) or .edl (CMX 3600); a bare
    extension such as ".otio" puts it beside the output, with its name).

    Many machines: ``segments`` (a number, or "auto": compose in that many
    segments joined by stream copy), ``dask`` (the address of a Dask scheduler
    whose workers compose the segments).
    """

    border: int = 8
    blend: bool = False
    gpu: bool = True
    cache_dir: str | None = None
    weights: str | None = None
    force: bool = False
    plot: bool = False
    codec: str = "h264"
    crf: int | None = None
    preset: str | None = None
    audio: str = "fg"
    keyint: int = KEYINT
    segments: int | str = 1
    dask: str | None = None
    bit_depth: int | None = None
    timeline: str | None = None

    def __post_init__(self) -> None:
        # the CLI hands over strings for --segments; a number given as text becomes the number
        if isinstance(self.segments, str) and self.segments.strip().isdigit():
            object.__setattr__(self, "segments", int(self.segments))
        for name in ("cache_dir", "weights"):  # a PathLike from the Python API is stored as its text
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                object.__setattr__(self, name, str(value))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The fields' names: the API's keyword arguments and the CLI's long options."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def build(cls, base: Options | None = None, **changes: Any) -> Options:
        """``base`` (the defaults when None) with ``changes``; an unknown name is a TypeError, as for a call."""
        unknown = sorted(set(changes) - set(cls.names()))
        if unknown:
            raise TypeError(f"unknown option(s): {', '.join(unknown)}; options are {', '.join(cls.names())}")
        return dataclasses.replace(base or cls(), **changes)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
