"""The small, frozen values that move between stages.

Arrays that scale with a video's length live in the Zarr store; what travels
between stages (and through Prefect's state) are these values and references.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np


@dataclass(frozen=True)
class VideoInfo:
    """What a probe tells about a file's first video stream."""

    path: str
    width: int
    height: int
    fps: float
    n_frames: int
    duration: float
    rotation: int = 0
    has_audio: bool = False
    pix_fmt: str = "yuv420p"


@dataclass(frozen=True)
class Geometry:
    """Where fg sits in bg: the top-left corner of the bg region fg shows, in bg pixels.

    ``scale`` is fg width / region width (1.0 for a plain crop). Coordinates follow
    FFmpeg's pixel-area convention: pixel k covers [k, k+1), so bg point
    ``x + p / scale`` is shown at fg point ``p``.
    """

    x: float
    y: float
    scale: float = 1.0


@dataclass(frozen=True)
class Alignment:
    """The whole answer: geometry, confidence and one bg frame per fg frame."""

    geometry: Geometry
    confidence: float
    frames: np.ndarray = field(repr=False)  # (n_fg,) int, bg frame index per fg frame
    cost: np.ndarray | None = field(default=None, repr=False)  # (n_fg,) per-frame match cost
    # fg's active picture (x, y, w, h) in fg pixels when fg carries black bars; None: the whole frame.
    # ``geometry`` then places that picture, and only it is pasted.
    active: tuple[int, int, int, int] | None = None

    def as_json(self) -> dict:
        return {
            "x": float(self.geometry.x),
            "y": float(self.geometry.y),
            "scale": float(self.geometry.scale),
            "confidence": float(self.confidence),
            "frames": [int(f) for f in self.frames],
        }


@dataclass(frozen=True)
class ComposeResult:
    """What `vidkompy.compose` returns."""

    alignment: Alignment
    output: str | None
    timings: dict[str, float]
    computed: tuple[str, ...]  # stages that ran (the others came from the store)

    @property
    def x(self) -> float:
        return self.alignment.geometry.x

    @property
    def y(self) -> float:
        return self.alignment.geometry.y

    @property
    def scale(self) -> float:
        return self.alignment.geometry.scale

    @property
    def confidence(self) -> float:
        return self.alignment.confidence

    @property
    def frames(self) -> np.ndarray:
        return self.alignment.frames


def as_fraction(rate: float | Fraction) -> Fraction:
    return rate if isinstance(rate, Fraction) else Fraction(rate).limit_denominator(1001)
