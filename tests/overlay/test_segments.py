"""Segments: a pair composed in pieces and joined by stream copy equals the one-pass output, and the truth.

The truth is the NumPy paste of `tests.reference` (fg at the sample's offset over its true bg frames): the
joined output is held to it exactly in FFV1, within its encoder's loss in h264 and ProRes; the one pass is
held to the joined output as well, so a fault common to both is caught by the first check, one at a join by
either.
"""

from __future__ import annotations

import av
import numpy as np
import pytest

from tests.overlay.test_output_formats import (
    alignment_of,
    assert_continuous,
    audio_packets,
    decode_planes,
    frame_times,
    packets_in_file_order,
    psnr,
    top_level_atoms,
)
from tests.reference import assert_planes_within, pasted, worst_luma_psnr
from vidkompy.errors import OutputError, SettingsError
from vidkompy.media.audio import plan_audio
from vidkompy.media.chunks import next_dts
from vidkompy.media.encoding import OutputSettings, segment_suffix
from vidkompy.media.join import join_segments
from vidkompy.overlay.composite import composite
from vidkompy.overlay.segments import Segment, compose_segment, plan_segments, verify_segment
from vidkompy.samples import SamplePair, make_pair


def decoded_times(path) -> np.ndarray:
    """Every frame's time in presentation order, as the decode stage records them."""
    with av.open(str(path)) as c:
        return np.array([float(f.pts * f.time_base) for f in c.decode(video=0)])


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> SamplePair:
    return make_pair(tmp_path_factory.mktemp("segments"), name="seg", seconds=2.5, seed=21)


@pytest.fixture(scope="module")
def times(pair) -> tuple[np.ndarray, np.ndarray]:
    return decoded_times(pair.fg), decoded_times(pair.bg)


@pytest.fixture(scope="module")
def truth(pair) -> list[list[np.ndarray]]:
    return pasted(pair.bg, pair.fg, pair.frames, int(pair.x), int(pair.y))


# crf 18 on this pair: 43 dB from the true overlay inside fg's box and outside it; fg a pixel off is 34.5 inside,
# a bg frame one late (panned 2 px) lower still outside
H264_DB = 40.0
BOX = (72, 40, 160, 120)  # where fg lands: the pair's region


# fg frames per independently encoded chunk in these tests: the default (250) is longer than their pairs
CHUNK = 16


def compose_in_pieces(pair, times, folder, settings, count, output) -> tuple[list, object]:
    fg_pts, bg_pts = times
    alignment = alignment_of(pair)
    paths = []
    for seg in plan_segments(len(pair.frames), count, settings.keyint):
        path = folder / f"part{seg.index}{segment_suffix(settings)}"
        compose_segment(pair.bg, pair.fg, path, alignment, seg, fg_pts=fg_pts, bg_pts=bg_pts, settings=settings)
        assert verify_segment(path, seg.frames)
        paths.append(path)
    audio = plan_audio(pair.bg, pair.fg, mode=settings.audio, bg_start=bg_pts[pair.frames[0]], fg_start=fg_pts[0])
    return paths, join_segments(paths, output, audio=audio)


# -- the plan ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "count", "keyint", "expected"), [
    (10, 3, 1, 3), (10, 1, 1, 1), (10, 10, 1, 10), (5, 12, 1, 5), (7, 0, 1, 1), (1, 4, 1, 1),
    (100, 3, 16, 3), (100, 7, 16, 7), (100, 9, 16, 7), (16, 2, 16, 1), (17, 2, 16, 2), (1000, 4, 250, 4),
])
def test_plan_covers_every_frame_once_in_whole_chunks(n, count, keyint, expected):
    plan = plan_segments(n, count, keyint)
    assert len(plan) == expected
    assert plan[0].start == 0 and plan[-1].stop == n
    assert all(a.stop == b.start for a, b in zip(plan, plan[1:], strict=False))
    assert all(s.start % keyint == 0 for s in plan)  # every segment begins a chunk of the one pass
    chunks = [-(-s.frames // keyint) for s in plan]
    assert min(chunks) >= 1 and max(chunks) - min(chunks) <= 1
    assert [s.index for s in plan] == list(range(expected))


# -- one pass against three pieces -------------------------------------------------------------------


def test_three_segments_joined_match_the_one_pass_output(pair, times, truth, tmp_path):
    """Planted faults it catches: a segment's first frame over the bg frame after its own (a frame one late at
    a join); fg pasted a pixel off in the one pass and the segments alike."""
    # the default crf: segments hold whole chunks of the one pass, each encoded afresh in both (vidkompy.media.chunks)
    settings = OutputSettings("h264", keyint=CHUNK)
    assert len(pair.frames) > 3 * CHUNK
    one = composite(pair.bg, pair.fg, tmp_path / "one.mp4", alignment_of(pair), settings=settings)
    parts, report = compose_in_pieces(pair, times, tmp_path, settings, 3, tmp_path / "joined.mp4")
    joined = report.output
    assert len(parts) == 3 and report.packets == len(pair.frames)

    a, b = decode_planes(one), decode_planes(joined)  # decoding raises on a broken stream
    assert worst_luma_psnr(b, truth, BOX) >= H264_DB
    assert len(a) == len(b) == len(pair.frames)
    assert frame_times(joined) == frame_times(one)
    assert frame_times(joined) == pytest.approx(list(times[0]), abs=1e-6)
    assert min(psnr(np.concatenate([p.ravel() for p in x]), np.concatenate([p.ravel() for p in y]))
               for x, y in zip(a, b, strict=True)) >= 45.0

    with av.open(str(joined)) as c:
        dts = [p.dts for p in c.demux(video=0) if p.dts is not None]
    assert all(x < y for x, y in zip(dts, dts[1:], strict=False))

    packets = audio_packets(joined)
    assert_continuous(packets)
    assert packets == audio_packets(one)
    atoms = top_level_atoms(joined)
    assert atoms.index("moov") < atoms.index("mdat")
    kinds = [k for k, _, _ in packets_in_file_order(joined)]
    assert kinds.index("audio") < len(kinds) - 1 - kinds[::-1].index("video")


def test_the_one_pass_starts_every_chunk_with_a_keyframe(pair, tmp_path):
    one = composite(pair.bg, pair.fg, tmp_path / "one.mp4", alignment_of(pair),
                    settings=OutputSettings("h264", keyint=CHUNK))
    with av.open(str(one)) as c:
        packets = sorted((p.pts, p.is_keyframe) for p in c.demux(video=0) if p.pts is not None)
    keys = [i for i, (_, key) in enumerate(packets) if key]
    assert len(packets) == len(pair.frames)
    assert set(range(0, len(packets), CHUNK)) <= set(keys)  # a fresh encoder's first picture is an IDR
    assert max(np.diff([*keys, len(packets)])) <= CHUNK  # and none is longer than keyint


@pytest.mark.parametrize(("codec", "name", "db"), [("ffv1", "joined.mkv", None), ("h264", "joined.mkv", H264_DB),
                                                  ("prores", "joined.mov", 45.0)])
def test_segments_are_the_one_pass_frames_in_every_container(pair, times, truth, tmp_path, codec, name, db):
    """FFV1 is lossless: seeking into bg and fg must give exactly the true overlay, and the one pass's frames;
    h264 and ProRes come within their encoders' loss of the truth (h264 at 43 dB here, ProRes HQ near 50). Planted
    faults it catches: a frame one late at a join; fg a pixel off in one pass and segments alike."""
    settings = OutputSettings(codec, keyint=CHUNK)
    one = composite(pair.bg, pair.fg, tmp_path / f"one{name[-4:]}", alignment_of(pair), settings=settings)
    _, report = compose_in_pieces(pair, times, tmp_path, settings, 4, tmp_path / name)
    a, b = decode_planes(one), decode_planes(report.output)
    assert len(a) == len(b) == len(pair.frames)
    assert frame_times(report.output) == frame_times(one)
    if db is None:
        assert_planes_within(b, truth, 0)
        assert_planes_within(a, b, 0)
    else:
        assert worst_luma_psnr(b, truth, BOX) >= db
    assert len(audio_packets(report.output)) > 10


def short_gop_copy(src_path, target, gop: int) -> object:
    """``src_path`` re-encoded with a keyframe every ``gop`` frames and B-frames: seeks land mid-file."""
    with av.open(str(src_path)) as src, av.open(str(target), "w") as out:
        vi = src.streams.video[0]
        vs = out.add_stream("libx264", rate=vi.average_rate)
        vs.width, vs.height, vs.pix_fmt, vs.time_base = vi.width, vi.height, "yuv420p", vi.time_base
        vs.options = {"crf": "20", "preset": "veryfast", "g": str(gop), "keyint_min": str(gop), "bf": "3",
                      "sc_threshold": "0"}
        for f in src.decode(vi):
            f.pict_type = av.video.frame.PictureType.NONE
            for p in vs.encode(f):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    return target


def test_segments_seek_into_inputs_with_many_keyframes(pair, tmp_path):
    """Keyframes every 7 (bg) and 5 (fg) frames with B-frames: every segment starts with a real seek, and the
    frames it finds must be exactly the true overlay of those inputs, as the one pass's are. Planted fault it
    catches: a seek that lands a frame late at a segment's start."""
    bg, fg = short_gop_copy(pair.bg, tmp_path / "bg.mp4", 7), short_gop_copy(pair.fg, tmp_path / "fg.mp4", 5)
    with av.open(str(fg)) as c:
        assert sum(p.is_keyframe for p in c.demux(video=0)) > 5
    moved = SamplePair(bg, fg, pair.x, pair.y, pair.scale, pair.frames, pair.bg_fps, pair.fg_fps)
    settings = OutputSettings("ffv1", audio="none", keyint=8)
    one = composite(bg, fg, tmp_path / "one.mkv", alignment_of(moved), settings=settings)
    _, report = compose_in_pieces(moved, (decoded_times(fg), decoded_times(bg)), tmp_path, settings, 6,
                                  tmp_path / "joined.mkv")
    truth = pasted(bg, fg, pair.frames, int(pair.x), int(pair.y))
    assert_planes_within(decode_planes(report.output), truth, 0)
    assert_planes_within(decode_planes(one), truth, 0)


@pytest.mark.parametrize(("dts", "pts", "last", "strict", "expected"), [
    (100, 140, 90, True, 100),  # after the previous: kept
    (90, 140, 90, True, 91),  # equal: moved one tick up for mov
    (90, 140, 90, False, 90),  # equal is fine for Matroska
    (80, 140, 90, True, 91),  # before: moved up
    (80, 90, 90, True, None),  # cannot move past its own pts
])
def test_a_colliding_dts_at_a_join_moves_up_or_is_refused(dts, pts, last, strict, expected):
    assert next_dts(dts, pts, last, strict=strict) == expected


def test_more_segments_than_chunks_gives_one_chunk_each(tmp_path):
    short = make_pair(tmp_path, name="short", seconds=1.0, trim=(0.4, 0.45), seed=22)
    n = len(short.frames)
    assert 0 < n < 8
    times = (decoded_times(short.fg), decoded_times(short.bg))
    settings = OutputSettings(keyint=2)
    parts, report = compose_in_pieces(short, times, tmp_path, settings, n + 5, tmp_path / "joined.mp4")
    assert len(parts) == -(-n // 2)
    assert frame_times(report.output) == pytest.approx(list(times[0]), abs=1e-6)


# -- refusing what cannot be trusted ----------------------------------------------------------------


@pytest.fixture
def segment_file(pair, times, tmp_path):
    seg = Segment(1, CHUNK, 3 * CHUNK)
    path = tmp_path / "part.mov"
    compose_segment(pair.bg, pair.fg, path, alignment_of(pair), seg, fg_pts=times[0], bg_pts=times[1],
                    settings=OutputSettings(keyint=CHUNK))
    return path, seg


def test_a_segment_starts_with_a_keyframe_at_its_first_frames_time(segment_file, times):
    path, seg = segment_file
    with av.open(str(path)) as c:
        first = next(p for p in c.demux(video=0) if p.pts is not None)
        assert first.is_keyframe
        assert not c.streams.audio
    assert decoded_times(path) == pytest.approx(times[0][seg.start : seg.stop], abs=1e-9)
    assert verify_segment(path, seg.frames, decode=True)


def test_a_short_or_broken_segment_is_not_trusted(segment_file, tmp_path):
    path, seg = segment_file
    assert not verify_segment(path, seg.frames + 1)
    assert not verify_segment(tmp_path / "missing.mov", seg.frames)
    cut = tmp_path / "cut.mov"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert not verify_segment(cut, seg.frames)
    junk = tmp_path / "junk.mov"
    junk.write_bytes(b"\0" * 4096)
    assert not verify_segment(junk, seg.frames)


def test_a_segment_is_written_atomically_under_its_codecs_suffix(pair, times, tmp_path):
    with pytest.raises(SettingsError, match=r"\.mov"):
        compose_segment(pair.bg, pair.fg, tmp_path / "part.mp4", alignment_of(pair), Segment(0, 0, 5),
                        fg_pts=times[0], bg_pts=times[1])
    assert list(tmp_path.iterdir()) == []


def test_join_refuses_segments_out_of_order_and_leaves_nothing(pair, times, tmp_path):
    alignment = alignment_of(pair)
    paths = []
    settings = OutputSettings(keyint=CHUNK)
    for seg in plan_segments(len(pair.frames), 2, CHUNK):
        paths.append(tmp_path / f"p{seg.index}.mov")
        compose_segment(pair.bg, pair.fg, paths[-1], alignment, seg, fg_pts=times[0], bg_pts=times[1],
                        settings=settings)
    with pytest.raises(OutputError):
        join_segments(paths[::-1], tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p0.mov", "p1.mov"]  # no temporary left behind


def test_join_refuses_segments_encoded_differently(pair, times, tmp_path):
    alignment = alignment_of(pair)
    a, b = plan_segments(len(pair.frames), 2, CHUNK)
    compose_segment(pair.bg, pair.fg, tmp_path / "a.mov", alignment, a, fg_pts=times[0], bg_pts=times[1],
                    settings=OutputSettings(keyint=CHUNK))
    compose_segment(pair.bg, pair.fg, tmp_path / "b.mov", alignment, b, fg_pts=times[0], bg_pts=times[1],
                    settings=OutputSettings("hevc", keyint=CHUNK))
    with pytest.raises(OutputError, match="encoded differently"):
        join_segments([tmp_path / "a.mov", tmp_path / "b.mov"], tmp_path / "out.mp4")


def test_join_refuses_a_container_that_cannot_hold_the_codec(pair, times, tmp_path):
    seg = Segment(0, 0, 5)
    compose_segment(pair.bg, pair.fg, tmp_path / "p.mov", alignment_of(pair), seg, fg_pts=times[0],
                    bg_pts=times[1], settings=OutputSettings("prores"))
    with pytest.raises(SettingsError, match="cannot hold prores"):
        join_segments([tmp_path / "p.mov"], tmp_path / "out.mp4")
