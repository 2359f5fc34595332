"""The small, frozen values that move between stages.

Arrays that scale with a video's length live in the Zarr store; what travels
between stages (and through Prefect's state) are these values, wrapped in a
`Stored` reference that says where their arrays are. `as_attrs` and
`from_attrs` turn a value into the store's JSON attributes and back, so the
same typed value is written by one stage and read by the next.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Generic, TypeVar

import numpy as np

from vidkompy.options import Options

T = TypeVar("T")

# of the placement search's samples: found only at scattered places this often, fg looks like other footage
SCATTERED_SHARE = 0.25


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
class Inputs:
    """A run's two inputs, probed once, and the output path it will write (None: alignment only)."""

    bg: VideoInfo
    fg: VideoInfo
    output: str | None = None


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
class Fit:
    """What the sub-pixel fit found: the geometry, and how much softer fg is than bg.

    The spatial stage keeps it in its progress while the frame match runs, so a resumed run skips the fit.
    """

    geometry: Geometry
    softness: float = 0.0  # sigma (grid pixels) of the blur that makes bg look like fg; 0 for a fg as sharp
    # fit windows whose own pair, fitted alone, sits more than a pixel from ``geometry``: the placement may move
    drifting: int = 0


# -- what each stage stores (its arrays stay in the store) -----------------------------------------


@dataclass(frozen=True)
class Decoded:
    """decode: every frame's time (``pts``) and a gray working copy (``thumbs``)."""

    n_frames: int
    size: tuple[int, int]  # the video's (width, height)
    thumb_size: tuple[int, int]  # the working copy's (width, height)
    fps: float  # from the timestamps' median step
    lost_frames: int = 0  # packets that did not decode (damage), skipped
    active: tuple[int, int, int, int] | None = None  # the picture inside black bars (x, y, w, h); None: no bars
    black: bool = False  # nothing but black (or bars) in any sampled frame


@dataclass(frozen=True)
class Location:
    """locate: fg's region in bg to the working pixel, and how well the sampled frames agreed on it."""

    geometry: Geometry
    score: float
    elsewhere: int = 0  # sampled fg frames found clearly better at another place: the placement may move


@dataclass(frozen=True)
class Embedded:
    """embed: one unit vector per frame (``emb``)."""

    model: str
    n_frames: int
    dim: int


@dataclass(frozen=True)
class Neighbours:
    """index: the k nearest bg bins of every fg bin (``knn_idx``, ``knn_sim``), and the pooled bins."""

    bin_seconds: float
    fg_bins: int
    bg_bins: int
    k: int


@dataclass(frozen=True)
class FrameMap:
    """dtw: a bg frame per fg frame from the embeddings (``map``, ``matched``, ``sim``)."""

    ratio: float  # bg frames per fg frame the path was searched at (the clocks' ratio x the measured speed)
    n_frames: int
    unmatched_frames: int


@dataclass(frozen=True)
class Aligned:
    """spatial: the sub-pixel geometry and the final map (``map``, ``score``, ``matched``)."""

    geometry: Geometry
    confidence: float
    n_frames: int
    unmatched: tuple[tuple[int, int], ...] = ()  # fg frame ranges [first, last] with no counterpart in bg
    active: tuple[int, int, int, int] | None = None
    # how the placement was decided: "fixed" (one for every frame), "per shot" or "tracked"; when it moves,
    # the store holds one [x, y, scale] per fg frame (``placement``) and ``geometry`` is the one most frames share
    placement: str = "fixed"
    off_canvas: tuple[tuple[int, int], ...] = ()  # fg frame ranges placed partly outside bg's canvas
    scattered: int = 0  # sampled fg frames found in bg only at placements that form no shot or track
    searched: int = 0  # fg frames sampled by the placement search (0: it did not run)

    @property
    def looks_unrelated(self) -> bool:
        """The placement search found most of its samples only at scattered places: fg looks like other footage."""
        return self.searched > 0 and self.scattered >= max(3, SCATTERED_SHARE * self.searched)


@dataclass(frozen=True)
class Stored(Generic[T]):
    """A reference to one stage's output in the store, small enough to pass through Prefect."""

    stage: str
    key: str
    value: T
    computed: bool  # False when it was found in the store
    seconds: float = 0.0


# -- the answer ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlacementStretch:
    """fg frames ``first..last`` placed at ``start``, moving linearly to ``end`` (equal for a still shot)."""

    first: int
    last: int
    start: Geometry
    end: Geometry

    @property
    def moves(self) -> bool:
        return self.start != self.end

    def as_json(self) -> dict[str, object]:
        return {"first": self.first, "last": self.last, "moves": self.moves,
                "start": [self.start.x, self.start.y, self.start.scale],
                "end": [self.end.x, self.end.y, self.end.scale]}


ON_LINE = 1e-6  # bg pixels: per-frame placements this close to a line are one linear stretch


@dataclass(frozen=True)
class Alignment:
    """The whole answer: geometry, confidence and one bg frame per fg frame."""

    geometry: Geometry
    confidence: float
    frames: np.ndarray = field(repr=False)  # (n_fg,) int, bg frame index per fg frame
    score: np.ndarray | None = field(default=None, repr=False)  # (n_fg,) match quality in [0, 1]
    matched: np.ndarray | None = field(default=None, repr=False)  # (n_fg,) bool: has a counterpart in bg
    # fg's active picture (x, y, w, h) in fg pixels when fg carries black bars; None: the whole frame.
    # ``geometry`` then places that picture, and only it is pasted.
    active: tuple[int, int, int, int] | None = None
    # one [x, y, scale] per fg frame where the placement moves (NaN for an unmatched frame); None: ``geometry``
    # holds for every frame. ``placement_mode`` says how it was decided: "fixed", "per shot" or "tracked".
    placement: np.ndarray | None = field(default=None, repr=False)
    placement_mode: str = "fixed"
    off_canvas: tuple[tuple[int, int], ...] = ()  # fg frame ranges placed partly outside bg's canvas

    def placement_stretches(self) -> list[PlacementStretch]:
        """The placement as stretches of fg frames: still (one placement) or moving linearly, start to end.

        A fixed placement is one still stretch over every matched frame; frames with no
        counterpart in bg belong to none.
        """
        rows = self.placements()
        out: list[PlacementStretch] = []
        first = None
        for k in range(len(rows) + 1):
            if first is not None:
                # row k goes on row first's stretch while it lies on the line through its first two rows
                if k < len(rows) and not np.isnan(rows[k, 0]):
                    if k == first + 1:
                        continue
                    step = rows[first + 1] - rows[first]
                    if np.all(np.abs(rows[k] - (rows[first] + step * (k - first))) <= ON_LINE):
                        continue
                out.append(PlacementStretch(first, k - 1, Geometry(*map(float, rows[first])),
                                            Geometry(*map(float, rows[k - 1]))))
                first = None
            if k < len(rows) and not np.isnan(rows[k, 0]):
                first = k
        return out

    def placements(self) -> np.ndarray:
        """(n_fg, 3) [x, y, scale] of every fg frame, NaN where it has no counterpart in bg."""
        if self.placement is not None:
            return np.asarray(self.placement, np.float64)
        g = self.geometry
        out = np.tile(np.array([g.x, g.y, g.scale], np.float64), (len(self.frames), 1))
        if self.matched is not None:
            out[~np.asarray(self.matched, bool)] = np.nan
        return out

    @property
    def unmatched(self) -> list[tuple[int, int]]:
        """fg frame ranges [first, last] with no counterpart in bg."""
        return [] if self.matched is None else runs(~np.asarray(self.matched, bool))

    @property
    def n_unmatched(self) -> int:
        """How many fg frames have no counterpart in bg."""
        return 0 if self.matched is None else int((~np.asarray(self.matched, bool)).sum())

    def as_json(self) -> dict:
        score = self.score if self.score is not None else np.ones(len(self.frames))
        return {
            "x": float(self.geometry.x),
            "y": float(self.geometry.y),
            "scale": float(self.geometry.scale),
            "confidence": float(self.confidence),
            "frames": [int(f) for f in self.frames],
            "score": [round(float(s), 4) for s in score],
            "unmatched": [[a, b] for a, b in self.unmatched],
            "active": None if self.active is None else [int(v) for v in self.active],
            "placement_mode": self.placement_mode,
            "placement": [None if np.isnan(p[0]) else [round(float(v), 4) for v in p] for p in self.placements()],
            "off_canvas": [[a, b] for a, b in self.off_canvas],
        }


@dataclass(frozen=True)
class RunSettings:
    """What a run was made with: its options, and what this machine chose (device, embedding model)."""

    options: Options
    device: str
    embedding: str

    def as_json(self) -> dict[str, object]:
        """The ``settings`` object of ``vidkompy align --json``."""
        o = self.options
        return {"border": o.border, "blend": o.blend, "codec": o.codec, "crf": o.crf, "preset": o.preset,
                "audio": o.audio, "keyint": o.keyint, "gpu": o.gpu, "device": self.device, "weights": o.weights,
                "embedding": self.embedding, "force": o.force, "bit_depth": o.bit_depth}


@dataclass(frozen=True)
class ComposeResult:
    """What `vidkompy.compose` and `vidkompy.align` return."""

    alignment: Alignment
    output: str | None
    timings: dict[str, float]
    computed: tuple[str, ...]  # stages that ran (the others came from the store)
    lost_frames: dict[str, int] = field(default_factory=dict)  # per input, frames lost to damage
    settings: RunSettings | None = None  # what the run was made with
    timeline: str | None = None  # the conform timeline written (--timeline), if any

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

    @property
    def score(self) -> np.ndarray | None:
        return self.alignment.score

    @property
    def unmatched(self) -> list[tuple[int, int]]:
        return self.alignment.unmatched


@dataclass(frozen=True)
class PairResult:
    """One pair of a batch: what became of it (``status``: composed, up to date or failed) and where fg sits."""

    pair: str
    status: str
    x: float | None = None
    y: float | None = None
    scale: float | None = None
    confidence: float | None = None
    seconds: float = 0.0
    error: str = ""
    output: str | None = None

    @classmethod
    def of(cls, row: dict[str, Any]) -> PairResult:
        """A row as a batch's table artifact holds it (how results travel between machines)."""
        return from_attrs(cls, row)


@dataclass(frozen=True)
class BatchResult:
    """A folder's batch: a result per pair, the files that paired with nothing, and how many pairs failed."""

    pairs: tuple[PairResult, ...]
    skipped_files: tuple[str, ...] = ()
    state: str | None = None  # the deployment run's final state, when the batch ran as one

    @property
    def failed(self) -> tuple[PairResult, ...]:
        return tuple(p for p in self.pairs if p.status == "failed")


def as_fraction(rate: float | Fraction) -> Fraction:
    return rate if isinstance(rate, Fraction) else Fraction(rate).limit_denominator(1001)


# -- small helpers on values ---------------------------------------------------------------------------


def runs(mask: np.ndarray, min_length: int = 1) -> list[tuple[int, int]]:
    """``[first, last]`` of every run of True in ``mask`` at least ``min_length`` long."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.diff(m.astype(np.int8))
    starts, stops = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return [(int(a), int(b - 1)) for a, b in zip(starts, stops, strict=True) if b - a >= min_length]


# -- values <-> the store's JSON attributes ------------------------------------------------------------


def as_attrs(value: object) -> dict[str, Any]:
    """A stage value as JSON-safe attributes (tuples become lists)."""
    return _jsonable(dataclasses.asdict(value))


def _jsonable(v: object) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.generic):
        return v.item()
    return v


def from_attrs(cls: type[T], attrs: dict[str, Any]) -> T:
    """The value of type ``cls`` that `as_attrs` wrote (unknown keys are ignored)."""
    hints = typing.get_type_hints(cls)
    kwargs = {f.name: _typed(hints[f.name], attrs[f.name]) for f in dataclasses.fields(cls) if f.name in attrs}
    return cls(**kwargs)


def _typed(hint: Any, v: Any) -> Any:
    if v is None:
        return None
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        options = [h for h in typing.get_args(hint) if h is not type(None)]
        return _typed(options[0], v) if len(options) == 1 else v
    if dataclasses.is_dataclass(hint):
        return from_attrs(hint, v)
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_typed(args[0], x) for x in v)
        return tuple(_typed(a, x) for a, x in zip(args, v, strict=True))
    if hint is float:
        return float(v)
    if hint is int:
        return int(v)
    return v
