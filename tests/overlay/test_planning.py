"""The chunk and segment planning against hand-worked numbers, and the chunked encoder against a plain decode.

The rules, as `vidkompy.media.chunks` and `vidkompy.overlay.segments` state them:

- fg frames are encoded in chunks of ``keyint``: chunk c holds frames [c keyint, (c + 1) keyint), a fresh encoder
  each, so every chunk starts with a keyframe; there are ceil(n / keyint) chunks.
- `plan_segments(n, count, keyint)` cuts [0, n) into ``count`` runs of whole chunks, ``count`` clamped to
  [1, chunks]; segment k starts at chunk round(k chunks / count) (Python's round: half to even).
- `auto_segments(n, fps, workers)`: one pass on one worker; else two segments a worker, but none shorter than
  a minute (n // (60 fps) at most, fps 25 when unknown), and at least one.
- a packet's dts that collides with the last one muxed moves up to it (one tick past it for mov); where that
  would put it after its own pts, there is no valid answer.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from vidkompy.errors import OutputError
from vidkompy.media.chunks import ChunkedEncoder, chunk_count, next_dts
from vidkompy.overlay.segments import Segment, auto_segments, plan_segments


@pytest.mark.parametrize(("n", "keyint", "expected"), [
    (0, 4, 0), (1, 4, 1), (4, 4, 1), (5, 4, 2), (8, 4, 2), (9, 4, 3), (750, 250, 3), (751, 250, 4), (7, 1, 7)])
def test_chunk_count_is_frames_over_keyint_rounded_up(n, keyint, expected):
    assert chunk_count(n, keyint) == expected


@pytest.mark.parametrize(("n", "count", "keyint", "cuts"), [
    (10, 3, 1, [0, 3, 7, 10]),  # chunks 10: round(3.33) = 3, round(6.67) = 7
    (10, 1, 1, [0, 10]),
    (10, 10, 1, list(range(11))),
    (5, 12, 1, [0, 1, 2, 3, 4, 5]),  # more segments than chunks: one chunk each
    (7, 0, 1, [0, 7]),  # at least one segment
    (7, -3, 1, [0, 7]),
    (1, 4, 1, [0, 1]),
    (100, 3, 16, [0, 32, 80, 100]),  # 7 chunks (the last of 4 frames): round(2.33) = 2, round(4.67) = 5
    (100, 7, 16, [0, 16, 32, 48, 64, 80, 96, 100]),
    (100, 9, 16, [0, 16, 32, 48, 64, 80, 96, 100]),  # clamped to the 7 chunks
    (16, 2, 16, [0, 16]),  # one whole chunk: one segment
    (17, 2, 16, [0, 16, 17]),
    (1000, 4, 250, [0, 250, 500, 750, 1000]),
    (1250, 2, 250, [0, 500, 1250]),  # 5 chunks in 2: round(2.5) = 2
    (1750, 2, 250, [0, 1000, 1750]),  # 7 chunks in 2: round(3.5) = 4
    (60, "3", 16, [0, 16, 48, 60]),  # a count as text, read as int: 4 chunks, round(1.33) = 1, round(2.67) = 3
])
def test_plan_cuts_at_these_frames(n, count, keyint, cuts):
    """Catches: a cut off by one chunk (rounding up or down instead of to nearest), the last segment not ending
    at the last frame, the count not clamped, and segments numbered other than 0, 1, 2, ..."""
    plan = plan_segments(n, count, keyint)
    assert plan == tuple(Segment(k, a, b) for k, (a, b) in enumerate(zip(cuts, cuts[1:], strict=False)))
    assert [s.frames for s in plan] == list(np.diff(cuts))


@pytest.mark.parametrize("n", [0, -5])
def test_nothing_to_plan_is_a_value_error(n):
    with pytest.raises(ValueError, match=f"nothing to segment: {n} frames"):
        plan_segments(n, 2, 16)


def test_the_default_chunk_is_250_frames():
    assert plan_segments(600, 3) == (Segment(0, 0, 250), Segment(1, 250, 500), Segment(2, 500, 600))


@pytest.mark.parametrize(("n_frames", "fps", "workers", "expected"), [
    (216_000, 30.0, 8, 16),  # two hours: two segments a worker
    (216_000, 30.0, 32, 64),
    (216_000, 30.0, 100, 120),  # 120 minutes: never under a minute a segment
    (1_800, 30.0, 8, 1),  # a minute: one pass
    (3_599, 30.0, 8, 1),
    (3_600, 30.0, 8, 2),  # two minutes
    (9_000, 30.0, 8, 5),
    (216_000, 30.0, 1, 1),  # one worker: one pass
    (216_000, 30.0, 0, 1),
    (216_000, 30.0, 2, 4),
    (0, 30.0, 8, 1),  # nothing: one pass
    (3_000, 0.0, 8, 2),  # no frame rate known: 25 fps, 1 500 frames a minute
    (3_000, -1.0, 8, 2),
    (100, 0.01, 8, 16),  # under a frame a minute: the one-minute floor is at least one frame
    (20, 0.01, 8, 16),
])
def test_auto_cuts_two_segments_a_worker_none_under_a_minute(n_frames, fps, workers, expected):
    """Catches: a minute counted in other than 60 s, the 25 fps fallback, the per-worker factor, the floor
    of one frame a minute, and one worker not kept to one pass."""
    assert auto_segments(n_frames, fps, workers) == expected


@pytest.mark.parametrize(("dts", "pts", "last", "strict", "expected"), [
    (100, 140, 90, True, 100),  # after the previous: kept
    (91, 140, 90, True, 91),  # one tick after: kept
    (90, 140, 90, True, 91),  # equal: moved one tick up for mov
    (90, 140, 90, False, 90),  # equal is fine for Matroska
    (80, 140, 90, True, 91),  # before: moved up
    (80, 140, 90, False, 90),
    (80, 91, 90, True, 91),  # up to its own pts
    (80, 90, 90, True, None),  # not past it
    (80, 89, 90, False, None),
    (80, 90, 90, False, 90),
])
def test_a_colliding_dts_moves_up_or_is_refused(dts, pts, last, strict, expected):
    assert next_dts(dts, pts, last, strict=strict) == expected


# -- the chunked encoder, against a plain PyAV decode ----------------------------------------------------------

KEYINT = 4
# B-frames always (no adaptive choice) and no scene-cut keyframes: keyframes only where a chunk starts one
X264 = {"crf": "18", "preset": "veryfast", "x264-params": "bframes=2:b-adapt=0:scenecut=0:keyint=250"}
TB = Fraction(1, 25)


def pictures(n: int) -> list[av.VideoFrame]:
    """A smooth picture drifting a pixel a frame (B-frame friendly), 64 x 48 yuv420p."""
    yy, xx = np.mgrid[0:48, 0:64]
    base = 128 + 60 * np.sin(xx / 5.0) * np.cos(yy / 7.0)
    frames = []
    for i in range(n):
        grey = np.roll(base, i, axis=1).astype(np.uint8)
        frames.append(av.VideoFrame.from_ndarray(np.stack([grey] * 3, -1), format="rgb24").reformat(format="yuv420p"))
    return frames


def encode(path, codec: str, options: dict[str, str], pts: list[int], *, strict: bool,
           chunk_options: dict[str, str] | None = None) -> list[np.ndarray]:
    """Frames at ``pts`` (ticks of 1/25 s) through a ChunkedEncoder; returns the yuv420p pictures given."""
    given = []
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        vs.time_base = TB
        vs.options = dict(options)
        vs.codec_context.color_primaries = 1  # BT.709: written into the SPS, so a chunk that drops it differs
        encoder = ChunkedEncoder(out, vs, KEYINT, chunk_options or options, strict_dts=strict)
        for i, (frame, t) in enumerate(zip(pictures(len(pts)), pts, strict=True)):
            frame.pts, frame.time_base = t, TB
            given.append(frame.to_ndarray())
            encoder.encode(i, frame)
        encoder.finish()
    return given


def packets(path) -> list[tuple[int, int | None, bool]]:
    """(pts, dts, keyframe) of every video packet in file order, in the stream's ticks."""
    with av.open(str(path)) as c:
        return [(p.pts, p.dts, p.is_keyframe) for p in c.demux(video=0) if p.size]


def decoded(path) -> tuple[list[np.ndarray], list[float]]:
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
    return [f.to_ndarray() for f in frames], [float(f.pts * f.time_base) for f in frames]


@pytest.mark.parametrize(("suffix", "strict"), [(".mov", True), (".mkv", False)])
@pytest.mark.parametrize("pts", [list(range(10)), [0, 1, 2, 3, 4, 8, 12, 16, 17, 18]])
def test_every_chunk_starts_a_keyframe_and_every_frame_keeps_its_time(tmp_path, suffix, strict, pts):
    """10 frames in chunks of 4: keyframes exactly at frames 0, 4 and 8, each frame at its own time, dts in order
    (strictly for mov) and never after pts. The second schedule's gaps make chunk 1's first dts collide with
    chunk 0's last, which the encoder must move.

    Catches: a chunk cut at the wrong frame or never, the last chunk not flushed (frames lost), and a colliding
    dts left in place.
    """
    path = tmp_path / f"chunks{suffix}"
    encode(path, "libx264", X264, pts, strict=strict)
    got = packets(path)
    assert len(got) == len(pts)
    with av.open(str(path)) as c:
        per_tick = int(round(1 / (c.streams.video[0].time_base * 25)))
    by_pts = sorted(got)
    assert [p for p, _, _ in by_pts] == [t * per_tick for t in pts]
    assert [k for _, _, k in by_pts] == [i % KEYINT == 0 for i in range(len(pts))]
    dts = [d for _, d, _ in got if d is not None]
    assert all(d <= p for p, d, _ in got if d is not None)
    assert all(a < b if strict else a <= b for a, b in zip(dts, dts[1:], strict=False))
    _, times = decoded(path)
    assert times == pytest.approx([t / 25 for t in pts])


def test_lossless_chunks_decode_to_the_very_pictures_given(tmp_path):
    """FFV1 in Matroska is lossless: the decode equals the pictures sent, frame for frame. Catches: frames
    dropped, repeated or reordered across a chunk boundary."""
    path = tmp_path / "chunks.mkv"
    given = encode(path, "ffv1", {"level": "3", "g": "1"}, list(range(10)), strict=False)
    pictures_back, _ = decoded(path)
    assert len(pictures_back) == len(given)
    for a, b in zip(pictures_back, given, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_chunk_encoded_with_other_headers_is_refused(tmp_path):
    """The stream's header (avcC: SPS/PPS) must be every chunk's: ultrafast (CAVLC) chunks under a veryfast
    (CABAC) header would not decode once joined. Catches: the header check dropped."""
    with pytest.raises(OutputError, match="other stream headers than the container holds"):
        encode(tmp_path / "bad.mp4", "libx264", X264, list(range(6)), strict=True,
               chunk_options={**X264, "preset": "ultrafast"})


def test_chunks_of_one_frame_make_every_frame_a_keyframe(tmp_path):
    """keyint 1 is allowed: an intra-only stream, every frame its own chunk."""
    path = tmp_path / "ones.mov"
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        vs.options = dict(X264)
        encoder = ChunkedEncoder(out, vs, 1, X264, strict_dts=True)
        for i, frame in enumerate(pictures(3)):
            frame.pts, frame.time_base = i, TB
            encoder.encode(i, frame)
        encoder.finish()
    assert [k for _, _, k in sorted(packets(path))] == [True, True, True]


@pytest.mark.parametrize("keyint", [0, -1])
def test_a_chunk_of_no_frames_is_a_value_error(tmp_path, keyint):
    with av.open(str(tmp_path / "x.mkv"), "w") as out:
        vs = out.add_stream("ffv1", rate=25)
        with pytest.raises(ValueError, match=f"keyint must be at least 1, not {keyint}"):
            ChunkedEncoder(out, vs, keyint, {}, strict_dts=False)
