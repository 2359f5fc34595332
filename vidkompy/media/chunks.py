"""The output's video encoded as independent chunks of ``keyint`` frames, a fresh encoder for each.

Why: a long output is composed in segments on many workers and joined by
stream copy (`vidkompy.overlay.segments`, `vidkompy.media.join`). A segment's encoder starts
fresh, so if the one-pass output were one continuous encode, x264's CRF rate
control would carry state across the segment's start that the segment lacks
(the complexity blur of past frames, macroblock-tree propagation). Measured at
the default crf 18: a joined 3-segment output came within only 42.1-42.3 dB of
the one pass on its worst frame, however the segments were cut; on the one
pass's own keyframes with mbtree off, 44.3-45.6 dB. The way out is Av1an's:
make the chunk the unit of encoding everywhere. The one pass restarts its
encoder every ``keyint`` frames of fg, segments are cut on those same
boundaries, and a segmented output then holds the very packets of the one
pass (bit for bit where x264's frame threads repeat themselves; see
`vidkompy.overlay.segments`).

What it costs: x264 and x265 already start an IDR picture at least every 250
frames (their default keyint, which is ours), so a chunk boundary adds no
keyframe at the default; the rate control restarts there, which at a constant
rate factor changes the picture very little (see the benchmark's segments
results). Intra-only codecs (ProRes, FFV1 with g=1) have nothing to carry over;
they are chunked the same way so that one rule holds for every output.

Decode timestamps: every chunk starts with the encoder's own B-frame delay, so
at a steady frame rate a chunk's first dts already lies after the previous
chunk's last; where a variable frame rate makes them collide, the dts moves up
by one tick (`next_dts`), which stays valid while dts <= pts.
"""

from __future__ import annotations

from collections.abc import Iterable

import av

from vidkompy.errors import OutputError


def next_dts(dts: int, pts: int, last_dts: int, *, strict: bool) -> int | None:
    """``dts``, or the least dts after ``last_dts`` (strictly after for mov) when it collides; None when that
    would put it after its own ``pts`` (no valid stream has such a packet)."""
    floor = last_dts + 1 if strict else last_dts
    if dts >= floor:
        return dts
    return floor if floor <= pts else None


def chunk_count(n_frames: int, keyint: int) -> int:
    """How many chunks ``n_frames`` fg frames make (the last one may be short)."""
    return -(-n_frames // keyint)


class ChunkedEncoder:
    """Encodes frames into ``vs`` of ``out``, a fresh encoder for every chunk of ``keyint`` fg frames,
    each given ``options`` (`OutputSettings.encoder_options`).

    Every chunk, the first one included, gets its own codec context set up like
    the stream's own: a segment that begins at chunk k and the one pass then
    encode chunk k with identical encoders. The stream's own context only gives
    the container its header (SPS/PPS in mp4's avcC), and every chunk's encoder
    must produce the same, or the joined stream would not decode: that is checked.
    """

    def __init__(self, out: av.container.OutputContainer, vs: av.video.stream.VideoStream, keyint: int,
                 options: dict[str, str], *, strict_dts: bool):
        if keyint < 1:
            raise ValueError(f"keyint must be at least 1, not {keyint}")
        self.out, self.vs, self.keyint, self.strict_dts = out, vs, keyint, strict_dts
        # the encoder's AVOptions, as the stream's were given them: FFmpeg consumes a context's options
        # when it opens, so the stream's own read back empty once the header is written
        self.options = dict(options)
        self._chunk: int | None = None
        self._cc: av.video.codeccontext.VideoCodecContext | None = None
        self._last_dts: int | None = None

    def encode(self, index: int, frame: av.VideoFrame) -> None:
        """Encode fg frame ``index`` (frames come in order); a new chunk starts a new encoder."""
        chunk = index // self.keyint
        if chunk != self._chunk:
            self._drain()
            self._cc = self._fresh()
            self._chunk = chunk
        self._mux(self._cc.encode(frame))

    def finish(self) -> None:
        """Flush the last chunk's encoder."""
        self._drain()

    def _drain(self) -> None:
        if self._cc is not None:
            self._mux(self._cc.encode(None))
            self._check_header(self._cc)
            self._cc = None

    def _fresh(self) -> av.video.codeccontext.VideoCodecContext:
        src = self.vs.codec_context
        cc = av.CodecContext.create(src.name, "w")
        cc.width, cc.height, cc.pix_fmt = src.width, src.height, src.pix_fmt
        cc.framerate = src.framerate
        if src.time_base is not None:  # unset until opened: both then take 1/framerate
            cc.time_base = src.time_base
        cc.flags = src.flags  # the container's global-header flag: SPS/PPS out of band, as the stream's
        cc.options = dict(self.options)
        cc.thread_type, cc.thread_count = src.thread_type, 0
        cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = (
            src.color_primaries, src.color_trc, src.colorspace, src.color_range)
        return cc

    def _check_header(self, cc: av.video.codeccontext.VideoCodecContext) -> None:
        stream_header = bytes(self.vs.codec_context.extradata or b"")
        if bytes(cc.extradata or b"") != stream_header:
            raise OutputError(self.out.name, "an output chunk was encoded with other stream headers than the "
                                             "container holds; this is a bug in vidkompy")

    def _mux(self, packets: Iterable[av.Packet]) -> None:
        for packet in packets:
            if packet.dts is not None and self._last_dts is not None:
                dts = next_dts(packet.dts, packet.pts, self._last_dts, strict=self.strict_dts)
                if dts is None:
                    raise OutputError(self.out.name, "fg's timestamps are too close together at a chunk boundary "
                                                     "for the output's container (dts after pts)")
                packet.dts = dts
            if packet.dts is not None:
                self._last_dts = packet.dts
            packet.stream = self.vs
            self.out.mux(packet)
