"""The floor: what the overlay costs when the answer is already known, and the true composite.

The floor decodes both inputs, pastes fg at the true offset into the bg frame
the true map picks, and encodes with the settings vidkompy's composite uses
(libx264 veryfast crf 18, frame threads, decoders with ``thread_type="AUTO"``,
fg's YUV planes pasted in place, a repeated bg frame decoded once, fg's audio
remuxed). No alignment, no Prefect: vidkompy's times are reported as multiples
of it. The same generator gives the true composite that outputs are scored
against (PSNR): fg frames the truth gives no bg frame (an inserted shot) are
shown over a bg frame held between the true ones around them, and fg with
black bars pastes only its active picture.

``python -m benchmarks.floor TRUTH_DIR OUT`` runs it in a fresh process and
prints its seconds as JSON, so it is measured like vidkompy is.

Nothing here comes from vidkompy: the reference outputs are scored against
must not share code with the code under test, or a bug there would cancel out
in the score. The plane views, the bg frame stream and the encoder set-up are
this module's own (NumPy over PyAV), with the settings vidkompy documents.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from benchmarks.footage import Truth

CRF, PRESET = 18, "veryfast"


def _even(n: int) -> int:
    return max(2, n - n % 2)


def planes(frame: av.VideoFrame) -> list[np.ndarray]:
    """Y, U and V of a yuv420p frame as writable NumPy views over its buffers (no copy; rows padded to
    ``line_size`` in memory, cut to the picture here)."""
    views = []
    for k, plane in enumerate(frame.planes):
        h = frame.height if k == 0 else (frame.height + 1) // 2
        w = frame.width if k == 0 else (frame.width + 1) // 2
        views.append(np.frombuffer(plane, np.uint8).reshape(h, plane.line_size)[:, :w])
    return views


def bg_frames(decoded: Iterator[av.VideoFrame], canvas: tuple[int, int]) -> Iterator[av.VideoFrame]:
    """bg's decoded frames as writable yuv420p of the (even) canvas size: in place when they already are."""
    for frame in decoded:
        if frame.format.name != "yuv420p" or (frame.width, frame.height) != canvas:
            frame = frame.reformat(width=canvas[0], height=canvas[1], format="yuv420p")
        else:
            frame.make_writable()
        yield frame


def open_encoder(out: av.container.OutputContainer, fg_stream: av.video.stream.VideoStream,
                 size: tuple[int, int]) -> av.video.stream.VideoStream:
    """libx264 veryfast crf 18 at fg's rate and time base, frame threads (PyAV defaults to slice threads)."""
    rate = fg_stream.average_rate or fg_stream.guessed_rate or 25
    vs = out.add_stream("libx264", rate=rate)
    vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
    vs.time_base = fg_stream.time_base
    vs.options = {"crf": str(CRF), "preset": PRESET}
    vs.codec_context.thread_type = "AUTO"
    vs.codec_context.thread_count = 0
    return vs


def reference_map(truth: Truth, shown: np.ndarray | None = None) -> np.ndarray:
    """The bg frame the true composite shows under each fg frame.

    A fg frame with no counterpart in bg (truth -1, an inserted shot) has no
    right bg frame: any one held between the true frames on either side of the
    stretch is as right as another. The composite holds the one ``shown`` there
    (the map being scored; only its numbers are used) kept within those two,
    or, without it, the true frame before the stretch (after it, at fg's start).
    """
    frames = np.asarray(truth.frames, np.int64)
    matched = frames >= 0
    if matched.all():
        return frames
    if not matched.any():
        return np.zeros(len(frames), np.int64) if shown is None else np.maximum(0, np.asarray(shown[: len(frames)]))
    idx = np.arange(len(frames))
    before = np.maximum.accumulate(np.where(matched, idx, -1))
    after = np.minimum.accumulate(np.where(matched, idx, len(frames))[::-1])[::-1]
    lo = np.where(before >= 0, frames[np.maximum(before, 0)], frames[np.minimum(after, len(frames) - 1)])
    hi = np.where(after < len(frames), frames[np.minimum(after, len(frames) - 1)], lo)
    held = lo if shown is None or len(shown) < len(frames) else np.clip(np.asarray(shown[: len(frames)]), lo, hi)
    return np.where(matched, frames, held)


def active_picture(frame: av.VideoFrame, box: tuple[int, int, int, int] | None) -> av.VideoFrame:
    """fg's picture without its bars: the active box's YUV planes copied into a frame of their own
    (the box sits on even pixels, as bars of whole chroma samples do)."""
    if box is None:
        return frame
    if frame.format.name != "yuv420p":
        frame = frame.reformat(format="yuv420p")
    x, y, w, h = box
    out = av.VideoFrame(w, h, "yuv420p")
    for k, (dst, src) in enumerate(zip(planes(out), planes(frame), strict=True)):
        d = 1 if k == 0 else 2
        dst[:] = src[y // d : y // d + dst.shape[0], x // d : x // d + dst.shape[1]]
    out.pts, out.time_base = frame.pts, frame.time_base
    return out


def true_composite(truth: Truth, bg_in: av.container.InputContainer, fg_in: av.container.InputContainer,
                   shown: np.ndarray | None = None) -> Iterator[av.VideoFrame]:
    """The overlay as it should be: one yuv420p frame per fg frame, at fg's timestamps.

    fg's active picture (all of it, without bars) is scaled to the true region
    and pasted at the true offset into the bg frame `reference_map` picks
    (``shown``: the map being scored, for the fg frames truth leaves open).
    The yielded frame is bg's own decoded frame, written into in place and
    reused while the map repeats it, as vidkompy's composite does.
    """
    bg_vs, fg_vs = bg_in.streams.video[0], fg_in.streams.video[0]
    bg_vs.thread_type = fg_vs.thread_type = "AUTO"
    cw, ch = _even(bg_vs.codec_context.width), _even(bg_vs.codec_context.height)
    rw, rh = (_even(n) for n in truth.region_size)
    x, y = int(round(truth.x)), int(round(truth.y))
    ys, xs = slice(max(0, y), min(ch, y + rh)), slice(max(0, x), min(cw, x + rw))
    sy, sx = slice(ys.start - y, ys.stop - y), slice(xs.start - x, xs.stop - x)
    half = (slice(ys.start // 2, ys.start // 2 + (ys.stop - ys.start) // 2),
            slice(xs.start // 2, xs.start // 2 + (xs.stop - xs.start) // 2),
            slice(sy.start // 2, sy.start // 2 + (ys.stop - ys.start) // 2),
            slice(sx.start // 2, sx.start // 2 + (xs.stop - xs.start) // 2))
    frames = reference_map(truth, shown)
    bg_stream = bg_frames(bg_in.decode(bg_vs), (cw, ch))
    # one scaling context for the whole stream, as the ffmpeg command keeps: PyAV >= 17 gives each
    # frame.reformat() a new one and a thread pool, which cost more than the scaling itself
    sws = VideoReformatter()
    bg_index, bg_frame = -1, None
    for i, fg_frame in enumerate(fg_in.decode(fg_vs)):
        if i >= len(frames):
            break
        while bg_index < frames[i]:
            nxt = next(bg_stream, None)
            if nxt is None:
                break
            bg_frame, bg_index = nxt, bg_index + 1
        if bg_frame is None:
            raise ValueError("bg ended before the first mapped frame")
        picture = active_picture(fg_frame, truth.active)
        fg_yuv = sws.reformat(picture, width=rw, height=rh, format="yuv420p", interpolation="BICUBIC", threads=1)
        for k, (dst, src) in enumerate(zip(planes(bg_frame), planes(fg_yuv), strict=True)):
            dy, dx, fy, fx = (ys, xs, sy, sx) if k == 0 else half
            dst[dy, dx] = src[fy, fx]
        bg_frame.pts, bg_frame.time_base = fg_frame.pts, fg_frame.time_base
        yield bg_frame


def run_floor(truth: Truth, output: Path) -> float:
    """Write the true overlay to ``output``; returns the seconds it took."""
    start = time.perf_counter()
    with av.open(str(truth.bg)) as bg_in, av.open(str(truth.fg)) as fg_in, \
            av.open(str(output), mode="w", format="mp4") as out:
        fg_vs = fg_in.streams.video[0]
        bw, bh = bg_in.streams.video[0].codec_context.width, bg_in.streams.video[0].codec_context.height
        # vidkompy's documented encoder settings: the floor differs from it only in knowing the answer
        vs = open_encoder(out, fg_vs, (_even(bw), _even(bh)))
        audio_in = fg_in.streams.audio[0] if fg_in.streams.audio else None
        audio_out = out.add_stream_from_template(audio_in) if audio_in is not None else None
        for frame in true_composite(truth, bg_in, fg_in):
            frame.pict_type = av.video.frame.PictureType.NONE  # else x264 copies bg's I/P/B decisions
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode(None):
            out.mux(packet)
        if audio_in is not None and audio_out is not None:
            with av.open(str(truth.fg)) as src:
                for packet in src.demux(src.streams.audio[0]):
                    if packet.dts is None:
                        continue
                    packet.stream = audio_out
                    out.mux(packet)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description="The floor: overlay at the true offset and map, timed.")
    parser.add_argument("truth_dir", type=Path, help="a footage folder with truth.json")
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    truth = Truth.from_json(args.truth_dir, json.loads((args.truth_dir / "truth.json").read_text()))
    print(json.dumps({"seconds": run_floor(truth, args.output)}))


if __name__ == "__main__":
    main()
