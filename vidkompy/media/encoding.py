"""What the output is written as: codec, container, pixel format, colour tags, muxer options.

One frozen `OutputSettings` says what the user asked for; `validate_output`
checks it against the output's extension and this FFmpeg build before any work
starts, so the CLI can refuse at once. The one-pass composite and the segment
workers both open their video stream with `add_video_stream`, which is what
makes segments joinable by stream copy: same encoder, same options, same
extradata.

Choices, and why:

- The container follows the extension (.mp4, .mov, .mkv). We allow in a
  container only what players read there: FFmpeg 8 will also put ffv1 into
  .mp4, but next to nothing plays it, so we refuse it.
- ``crf`` and ``preset`` exist for the x264/x265 codecs only. ProRes quality is
  its profile (HQ) and FFV1 is lossless, so giving them either is a
  `SettingsError` rather than a silently ignored option.
- Pixel format follows the inputs: 10-bit in gives 10-bit out in every codec
  that carries it (h264 as High 10, hevc Main 10, ffv1; 12 and 16 bits in
  ffv1); ProRes HQ is 4:2:2 10-bit whatever comes in. ``bit_depth`` (8 or 10)
  chooses instead, for players that need 8-bit H.264; `depth_loss` says when
  the output keeps fewer bits than the inputs have. 8-bit 4:2:0 in, 8-bit out
  stays the fast in-place path.
- Every .mp4/.mov gets ``movflags=+faststart`` (index before the media, so a
  player starts without seeking to the end) and a movie timescale equal to the
  track's: the default of 1000 rounds an edit list's start offset to the
  millisecond, which shifts every timestamp of a segment that does not start
  at zero.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av

from vidkompy.errors import SettingsError
from vidkompy.options import KEYINT, Options

_X26X_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
                 "placebo")
AUDIO_MODES = ("fg", "bg", "none")
BIT_DEPTHS = (8, 10)


@dataclass(frozen=True)
class CodecSpec:
    """One codec we write: its FFmpeg encoder, fixed options, and whether it has crf/preset."""

    name: str
    encoder: str
    options: dict[str, str] = field(default_factory=dict)
    crf: int | None = None  # the default; None: the codec has no crf
    preset: str | None = None  # the default; None: the codec has no preset
    crf_range: tuple[int, int] = (0, 51)
    intra_only: bool = False


CODECS: dict[str, CodecSpec] = {
    # veryfast crf 18: the speed/quality the composite has always used (see DESIGN, "Performance, measured")
    "h264": CodecSpec("h264", "libx264", crf=18, preset="veryfast"),
    # x265's crf scale sits about 2-3 above x264's for the same picture; its own default (28) is visibly soft
    "hevc": CodecSpec("hevc", "libx265", {"x265-params": "log-level=error"}, crf=20, preset="veryfast"),
    "prores": CodecSpec("prores", "prores_ks", {"profile": "hq", "vendor": "apl0"}, intra_only=True),
    # level 3 with slice CRCs: FFV1's archival form; g=1 makes every frame self-contained
    "ffv1": CodecSpec("ffv1", "ffv1", {"level": "3", "slicecrc": "1", "g": "1"}, intra_only=True),
}


@dataclass(frozen=True)
class ContainerSpec:
    """A container we write: FFmpeg's muxer name, the video codecs allowed, the audio it takes as is."""

    suffix: str
    format: str
    video: tuple[str, ...]
    audio: frozenset[str]

    @property
    def is_mov(self) -> bool:
        """mp4 and mov share a muxer and its options (faststart, timescale)."""
        return self.format in ("mp4", "mov")


_MP4_AUDIO = frozenset({"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"})
_MOV_AUDIO = frozenset({"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_s24be"})
_MKV_AUDIO = _MP4_AUDIO | _MOV_AUDIO | {"vorbis", "pcm_s32le", "pcm_f32le", "dts", "truehd"}

CONTAINERS: dict[str, ContainerSpec] = {
    ".mp4": ContainerSpec(".mp4", "mp4", ("h264", "hevc"), _MP4_AUDIO),
    ".mov": ContainerSpec(".mov", "mov", ("h264", "hevc", "prores"), _MOV_AUDIO),
    ".mkv": ContainerSpec(".mkv", "matroska", ("h264", "hevc", "prores", "ffv1"), _MKV_AUDIO),
}
AUDIO_FALLBACK = "aac"  # what audio a container cannot take as is becomes; all three take it


@dataclass(frozen=True)
class OutputSettings:
    """How the output is encoded; ``None`` for crf/preset means the codec's default.

    ``audio``: "fg" (fg's audio, or bg's when fg has none), "bg" (bg's audio on
    the output's timeline, none if bg has none) or "none". ``keyint``: fg frames
    per independently encoded chunk (`vidkompy.media.chunks`), which is also the
    longest distance between keyframes and the unit segments are cut in.
    """

    codec: str = "h264"
    crf: int | None = None
    preset: str | None = None
    audio: str = "fg"
    keyint: int = KEYINT
    bit_depth: int | None = None  # bits per sample of the output; None: the inputs' deepest, where the codec can

    @classmethod
    def of(cls, options: Options) -> OutputSettings:
        """The part of a run's options that says how the output is encoded."""
        return cls(options.codec, options.crf, options.preset, options.audio, options.keyint, options.bit_depth)

    @property
    def spec(self) -> CodecSpec:
        try:
            return CODECS[self.codec]
        except KeyError:
            raise SettingsError(f"unknown codec {self.codec!r}; available: {', '.join(available_codecs())}") from None

    def encoder_options(self) -> dict[str, str]:
        """The encoder's AVOptions: the codec's fixed ones plus crf/preset where it has them."""
        spec = self.spec
        options = dict(spec.options)
        if spec.crf is not None:
            options["crf"] = str(self.crf if self.crf is not None else spec.crf)
        if spec.preset is not None:
            options["preset"] = self.preset or spec.preset
        if not spec.intra_only:
            options["g"] = str(self.keyint)  # the encoder's own longest GOP: a chunk, no IDR inside it forced
        return options


def available_codecs() -> list[str]:
    """Our codec names whose encoder this FFmpeg build has."""
    return [name for name, spec in CODECS.items() if spec.encoder in av.codecs_available]


def default_suffix(codec: str) -> str:
    """The extension of a default output name: the first container that holds the codec (.mp4, .mov, .mkv)."""
    return next((c.suffix for c in CONTAINERS.values() if codec in c.video), ".mp4")


def container_for(output: str | os.PathLike) -> ContainerSpec:
    suffix = Path(output).suffix.lower()
    try:
        return CONTAINERS[suffix]
    except KeyError:
        raise SettingsError(f"{output}: unknown output extension {suffix or '(none)'!r}; "
                            f"use one of {', '.join(CONTAINERS)}") from None


def validate_settings(settings: OutputSettings) -> CodecSpec:
    """The codec's spec, or a `SettingsError` saying what cannot be honoured and what can."""
    spec = settings.spec
    if spec.encoder not in av.codecs_available:
        raise SettingsError(f"codec {settings.codec!r} needs FFmpeg's {spec.encoder} encoder, which this build "
                            f"lacks; available: {', '.join(available_codecs())}")
    if settings.crf is not None:
        if spec.crf is None:
            raise SettingsError(f"codec {settings.codec!r} has no crf ("
                                + ("lossless" if settings.codec == "ffv1" else "quality is its profile, HQ") + ")")
        lo, hi = spec.crf_range
        if isinstance(settings.crf, bool) or not isinstance(settings.crf, int) or not lo <= settings.crf <= hi:
            raise SettingsError(f"crf must be a whole number from {lo} to {hi}, not {settings.crf!r}")
    if settings.preset is not None:
        if spec.preset is None:
            raise SettingsError(f"codec {settings.codec!r} has no preset")
        if settings.preset not in _X26X_PRESETS:
            raise SettingsError(f"unknown preset {settings.preset!r}; use one of {', '.join(_X26X_PRESETS)}")
    if isinstance(settings.keyint, bool) or not isinstance(settings.keyint, int) or settings.keyint < 1:
        raise SettingsError(f"keyint must be a whole number of frames, at least 1, not {settings.keyint!r}")
    if settings.audio not in AUDIO_MODES:
        raise SettingsError(f"audio must be one of {', '.join(AUDIO_MODES)}, not {settings.audio!r}")
    if settings.bit_depth is not None:
        if settings.bit_depth not in BIT_DEPTHS:
            raise SettingsError(f"bit depth must be one of {', '.join(map(str, BIT_DEPTHS))}, not "
                                f"{settings.bit_depth!r}")
        if settings.codec == "prores" and settings.bit_depth != 10:
            raise SettingsError("codec 'prores' is 10-bit (ProRes 422 HQ); --bit-depth 8 needs h264, hevc or ffv1")
    return spec


def validate_output(settings: OutputSettings, output: str | os.PathLike) -> ContainerSpec:
    """Check settings against the output's container up front; returns the container.

    Raises `SettingsError` for an unknown codec, one this build lacks, one the
    container cannot hold, or crf/preset on a codec without them.
    """
    container = container_for(output)
    validate_settings(settings)
    if settings.codec not in container.video:
        raise SettingsError(f"{output}: a {container.suffix} file cannot hold {settings.codec}; "
                            f"{container.suffix} takes {', '.join(container.video)}")
    return container


def bit_depth(pix_fmt: str | None) -> int:
    """Bits per luma sample of a pixel format (8 when unknown)."""
    if not pix_fmt:
        return 8
    try:
        return max(8, av.VideoFormat(pix_fmt).components[0].bits)
    except (ValueError, IndexError):
        return 8


def output_pix_fmt(codec: str, depth: int, requested: int | None = None) -> str:
    """The output's pixel format for the inputs' deepest bit depth, or the ``requested`` one (8 or 10).

    h264 at 10 bits is libx264's High 10 profile (PyAV's wheel builds libx264 with 8 and 10 bits); hevc is
    Main 10; ffv1 keeps up to 16 bits; ProRes 422 HQ is 10-bit 4:2:2 by definition.
    """
    if codec == "prores":
        return "yuv422p10le"
    depth = requested or depth
    if depth <= 8:
        return "yuv420p"
    if codec == "ffv1":
        return "yuv420p10le" if depth <= 10 else "yuv420p12le" if depth <= 12 else "yuv420p16le"
    return "yuv420p10le"


def depth_loss(codec: str, input_pix_fmts: Sequence[str | None], requested: int | None = None) -> str | None:
    """One line when the output keeps fewer bits per sample than its deepest input has, else None."""
    depth = max((bit_depth(p) for p in input_pix_fmts), default=8)
    out = bit_depth(output_pix_fmt(codec, depth, requested))
    if out >= depth:
        return None
    hint = "" if requested is None else f" (as --bit-depth {requested} asks)"
    return f"the output is {out}-bit {codec}{hint}; the inputs have {depth} bits per sample"


@dataclass(frozen=True)
class ColourTags:
    """The colour description copied from bg's stream to the output's (FFmpeg's enum values)."""

    primaries: int = 2  # 2: unspecified
    trc: int = 2
    space: int = 2
    range: int = 0  # 0: unspecified

    @classmethod
    def of(cls, stream: av.video.stream.VideoStream) -> ColourTags:
        cc = stream.codec_context
        rng = int(cc.color_range or 0)
        if (cc.pix_fmt or "").startswith("yuvj"):
            rng = 1  # swscale turns the deprecated full-range yuvj formats into limited range when we convert
        return cls(int(cc.color_primaries or 2), int(cc.color_trc or 2), int(cc.colorspace or 2), rng)


def mov_timescale(time_base: Fraction) -> int:
    """A track timescale that holds every tick of ``time_base`` (doubled up to 10000, as FFmpeg's mov muxer does)."""
    scale = time_base.denominator
    while 0 < scale < 10000:
        scale *= 2
    return scale


def container_options(container: ContainerSpec, time_base: Fraction | None) -> dict[str, str]:
    """Muxer options: faststart for mp4/mov, and a movie timescale that keeps an offset start exact."""
    if not container.is_mov:
        return {}
    options = {"movflags": "+faststart"}
    scale = mov_timescale(time_base) if time_base else 0
    if scale:
        options["movie_timescale"] = str(scale)
        options["video_track_timescale"] = str(scale)
    return options


def open_output(path: str | os.PathLike, container: ContainerSpec,
                time_base: Fraction | None) -> av.container.OutputContainer:
    """An output container of the given kind with our muxer options."""
    return av.open(str(path), mode="w", format=container.format,
                   container_options=container_options(container, time_base))


def add_video_stream(out: av.container.OutputContainer, settings: OutputSettings, *, rate: Fraction,
                     time_base: Fraction, size: tuple[int, int], pix_fmt: str,
                     colour: ColourTags | None = None, rotation: int = 0) -> av.video.stream.VideoStream:
    """The output's video stream: the same encoder set-up for the one-pass output and every segment."""
    spec = settings.spec
    vs = out.add_stream(spec.encoder, rate=rate)
    vs.width, vs.height, vs.pix_fmt = size[0], size[1], pix_fmt
    vs.time_base = time_base
    vs.options = settings.encoder_options()
    # PyAV defaults to slice threads; frame threads as the ffmpeg CLI uses were our biggest single win.
    vs.codec_context.thread_type = "AUTO"
    vs.codec_context.thread_count = 0
    if colour is not None:
        cc = vs.codec_context
        cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = (
            colour.primaries, colour.trc, colour.space, colour.range)
    if rotation:
        vs.set_display_rotation(rotation)  # the inputs' own display rotation, kept
    return vs


def segment_suffix(settings: OutputSettings) -> str:
    """The file suffix a segment of this codec is written with.

    QuickTime keeps every packet's pts and dts exactly (with `container_options`'
    timescale), which a join by stream copy needs; Matroska keeps only pts, at
    millisecond precision. So segments are .mov, except FFV1, which mov cannot
    hold: it is intra-only (dts = pts) and .mkv is the only container its
    output can have anyway, so nothing is lost.
    """
    return ".mkv" if settings.codec == "ffv1" else ".mov"
