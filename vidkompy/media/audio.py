"""Audio muxed in step with the video, so the file interleaves them by time.

An mp4 with all its audio after all its video makes players seek across the
file to play it (DESIGN, "Writing the output"), and libavformat's interleaver
only holds packets back for ``max_interleave_delta`` (10 s): a long video fed
first still leaves audio far from its video. So the audio source is demuxed
lazily, in a container of its own, and its packets are muxed as the video
advances past their time.

Packets are copied as they are when the output container takes the codec, else
decoded and re-encoded to AAC with timestamps counted in samples from the
first one kept (a source's millisecond timestamps, as Matroska's, would
otherwise jitter the encoder's packets by a sample or so each).

bg's audio on the output's timeline: the output shows bg frame ``frames[0]`` at
fg's first time, so bg's audio plays from that bg time onward, shifted onto
the output's clock and cut at the output's end. Where the map later repeats or
skips bg frames (a re-timed fg) the audio is not stretched with it: it stays
bg's own continuous sound. Packets are cut whole, so the audio starts up to one
packet (about 21 ms of AAC) after the first frame.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from fractions import Fraction

import av

from vidkompy.errors import InputError
from vidkompy.media.encoding import AUDIO_FALLBACK, ContainerSpec

log = logging.getLogger("vidkompy")

_LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1", 8: "7.1"}


@dataclass(frozen=True)
class AudioPlan:
    """Which file's audio the output carries and how its clock maps onto the output's.

    Output time = source time + ``shift``. With ``trim``, source packets that
    start before ``start`` or at/after the output's end are dropped (bg's
    audio); without, every packet is kept as it is (fg's own audio).
    """

    path: str
    shift: float = 0.0
    start: float | None = None
    trim: bool = False


def has_audio(path: str | os.PathLike) -> bool:
    try:
        with av.open(str(path)) as c:
            return bool(c.streams.audio)
    except (av.error.FFmpegError, OSError) as exc:
        raise InputError(path, "cannot be read for its audio") from exc


def plan_audio(bg_path: str | os.PathLike, fg_path: str | os.PathLike, *, mode: str = "fg",
               bg_start: float = 0.0, fg_start: float = 0.0) -> AudioPlan | None:
    """The audio the output carries, for ``OutputSettings.audio`` (None: no audio).

    ``bg_start`` is the time of the first mapped bg frame (``bg_pts[frames[0]]``),
    ``fg_start`` the output's first frame time (``fg_pts[0]``); only bg's audio
    uses them.
    """
    if mode == "none":
        return None
    bg_plan = AudioPlan(str(bg_path), shift=fg_start - bg_start, start=bg_start, trim=True)
    if mode == "bg":
        if has_audio(bg_path):
            return bg_plan
        log.warning("--audio bg: %s has no audio; the output has none", bg_path)
        return None
    if has_audio(fg_path):
        return AudioPlan(str(fg_path))
    return bg_plan if has_audio(bg_path) else None


def audio_codec_fits(codec: str, container: ContainerSpec) -> bool:
    return codec in container.audio


class AudioFeed:
    """Muxes one audio source into an output container as the video's clock advances.

    Create it before the first packet is muxed (it adds the output's audio
    stream), call `mux_until` with each video time, and `finish` with the
    output's end.
    """

    def __init__(self, plan: AudioPlan, out: av.container.OutputContainer, container: ContainerSpec):
        self.plan = plan
        self.out = out
        try:
            self._src = av.open(plan.path)
        except (av.error.FFmpegError, OSError) as exc:
            raise InputError(plan.path, "cannot be read for its audio") from exc
        if not self._src.streams.audio:
            self._src.close()
            raise InputError(plan.path, "has no audio stream")
        self._in = self._src.streams.audio[0]
        cc = self._in.codec_context
        self.copy = audio_codec_fits(cc.name, container)
        if self.copy:
            self.stream = out.add_stream_from_template(self._in)
        else:
            rate = cc.sample_rate or 48000
            self.stream = out.add_stream(AUDIO_FALLBACK, rate=rate)
            self.stream.layout = _LAYOUTS.get(cc.channels, "stereo")
            self.stream.time_base = Fraction(1, rate)
            self._next_pts: int | None = None
        self._packets = self._src.demux(self._in)
        self._pending: av.Packet | None = None
        self._done = False

    def __enter__(self) -> AudioFeed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._src.close()

    def _time(self, packet: av.Packet) -> float:
        ts = packet.pts if packet.pts is not None else packet.dts
        return float(ts * packet.time_base)

    def mux_until(self, t: float, end: float | None = None) -> None:
        """Mux every source packet whose output time is before ``t`` (seconds)."""
        while not self._done:
            packet = self._pending
            self._pending = None
            if packet is None:
                packet = next(self._packets, None)
                if packet is None:
                    self._done = True
                    break
                if packet.dts is None and packet.pts is None:
                    continue  # the demuxer's empty flush packet
            src_t = self._time(packet)
            if self.plan.trim and self.plan.start is not None and src_t < self.plan.start - 1e-6:
                continue
            out_t = src_t + self.plan.shift
            if end is not None and self.plan.trim and out_t >= end - 1e-6:
                self._done = True
                break
            if out_t >= t:
                self._pending = packet
                break
            self._mux(packet)

    def finish(self, end: float | None = None) -> None:
        """Everything left (up to ``end`` when the plan trims), then the encoder's tail."""
        self.mux_until(math.inf, end)
        if not self.copy:
            for out_packet in self.stream.encode(None):
                self.out.mux(out_packet)

    def _mux(self, packet: av.Packet) -> None:
        if self.copy:
            if self.plan.shift:
                ticks = round(self.plan.shift / packet.time_base)
                packet.pts = None if packet.pts is None else packet.pts + ticks
                packet.dts = None if packet.dts is None else packet.dts + ticks
            packet.stream = self.stream
            self.out.mux(packet)
            return
        for frame in packet.decode():
            rate = frame.sample_rate
            if self._next_pts is None:
                first = float(frame.pts * frame.time_base) if frame.pts is not None else self._time(packet)
                self._next_pts = round((first + self.plan.shift) * rate)
            frame.pts, frame.time_base = self._next_pts, Fraction(1, rate)
            self._next_pts += frame.samples
            for out_packet in self.stream.encode(frame):
                self.out.mux(out_packet)
