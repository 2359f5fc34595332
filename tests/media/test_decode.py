"""Frames read on demand are the frames a plain decode gives."""

from __future__ import annotations

import av
import numpy as np
import pytest
from av.video.frame import PictureType

from tests.helpers import write_video
from vidkompy.media import decode as video_io
from vidkompy.media.decode import SEEK_COST_FRAMES, ThumbnailDecoder, read_gray_frames
from vidkompy.overlay import segments

# Long GOPs the way each encoder makes them: h264 and hevc with B-frames (most of them unreferenced, so
# NONREF skips them), MPEG-2 with B-frames (unreferenced by definition), VP9 with hidden alt-ref frames
# inside superframe packets, and ProRes, which has only keyframes (each target is its own seek). The
# MPEG program and transport streams have no index: a seek there lands after the keyframe it needs. The ProRes
# file comes from FFmpeg's prores_aw, some 20 times faster here than prores_ks (the one vidkompy writes with): the
# stream is ProRes all the same, read by the one prores decoder.
FORMATS = {
    "h264": dict(suffix="mp4"),
    "h264-ts": dict(suffix="ts"),
    "hevc": dict(suffix="mp4", codec="libx265", options={"preset": "veryfast", "x265-params": "log-level=error"}),
    "mpeg2-ps": dict(suffix="mpg", codec="mpeg2video", options={}, gop_size=250, max_b_frames=2),
    "mpeg2-ts": dict(suffix="ts", codec="mpeg2video", options={}, gop_size=15, max_b_frames=2),
    "vp9": dict(suffix="webm", codec="libvpx-vp9", options={"deadline": "realtime", "cpu-used": "8"}),
    "prores": dict(suffix="mov", codec="prores_aw", options={}, pix_fmt="yuv422p10le"),
}


@pytest.fixture(scope="module", params=sorted(FORMATS))
def long_gop(request, tmp_path_factory):
    """640 distinct frames, keyframes far apart (x264's default is 250): seeks decode many frames."""
    rng = np.random.default_rng(7)
    texture = rng.integers(0, 256, (120 + 640, 160, 3), dtype=np.uint8)
    frames = [texture[k : k + 120] for k in range(640)]  # the picture scrolls a row a frame
    settings = dict(FORMATS[request.param])
    path = tmp_path_factory.mktemp("gop") / f"gop.{settings.pop('suffix')}"
    return request.param, write_video(path, frames, fps=25, **settings)


def test_frames_read_by_seeking_are_the_decoded_frames(long_gop, monkeypatch):
    name, path = long_gop
    # a seek that missed its target falls back to reading from the start, which would hide a wrong skip
    monkeypatch.setattr(video_io, "_read_sequential", lambda *a: pytest.fail("a seek fell back to a full read"))
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        decoded = [(float(f.pts * f.time_base), f.to_ndarray(format="gray"), PictureType(f.pict_type).name,
                    f.key_frame) for f in c.decode(vs)]
    pts = np.array([t for t, _, _, _ in decoded])
    # targets far enough apart to be read by seeking; two a few frames apart share one seek; the frame
    # shown just before a keyframe, which an open GOP (MPEG-2's default) predicts from the GOP before
    later = next(i for i in range(300, len(decoded)) if decoded[i][3]) - 1
    wanted = [137, 141, later, 560]
    assert len(wanted) * SEEK_COST_FRAMES <= wanted[-1]
    if name != "prores":  # the seeks decode other frames on the way, skipped or not
        assert not any(decoded[i][3] for i in wanted)
    if name.split("-")[0] in ("h264", "hevc", "mpeg2"):
        assert {decoded[i][2] for i in range(100, 250)} >= {"B", "P"}  # the frames NONREF skips exist
    got = read_gray_frames(path, wanted, pts)
    assert sorted(got) == wanted
    for i in wanted:
        np.testing.assert_array_equal(got[i], decoded[i][1], err_msg=f"frame {i}")


def plain_decode(path) -> tuple[np.ndarray, np.ndarray]:
    """Every frame's time and gray picture by PyAV alone, with the one decoder option thumbnails are documented
    to use (no loop filter)."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        vs.codec_context.options = {"skip_loop_filter": "all"}
        decoded = [(float(f.pts * f.time_base), f.to_ndarray(format="gray")) for f in c.decode(vs)]
    return np.array([t for t, _ in decoded]), np.stack([img for _, img in decoded])


@pytest.fixture(scope="module")
def plain(long_gop) -> tuple[np.ndarray, np.ndarray]:
    """`plain_decode` of the format's video, once for the tests below."""
    return plain_decode(long_gop[1])


def test_an_uninterrupted_decode_gives_the_plain_frames(long_gop, plain):
    """Planted fault it catches: a clock half a frame off or a picture one frame early."""
    _, path = long_gop
    pts, pictures = plain
    assert len(pts) == 640
    whole = list(ThumbnailDecoder(path).blocks(256))
    np.testing.assert_array_equal(np.concatenate([b.pts for b in whole]), pts)
    np.testing.assert_array_equal(np.concatenate([b.frames for b in whole]), pictures)


@pytest.mark.parametrize("done", [137, 300])
def test_a_resumed_decode_gives_the_frames_after_where_it_stopped(long_gop, plain, done):
    """A killed decode resumes after its last stored frame: the frames a plain PyAV decode gives from there, at
    their times (an uninterrupted decode gives them all: the test above). Planted faults it catches: a frame
    lost or repeated at the resume point; a clock half a frame off or a picture one frame early in both runs
    alike (which comparing the two runs alone would pass)."""
    _, path = long_gop
    pts, pictures = plain
    assert len(pts) == 640
    rest = list(ThumbnailDecoder(path).blocks(256, after=float(pts[done - 1]), start=done))
    np.testing.assert_array_equal(np.concatenate([b.pts for b in rest]), pts[done:])
    np.testing.assert_array_equal(np.concatenate([b.frames for b in rest]), pictures[done:])


def test_a_segment_reads_its_frames_from_the_keyframe_before_it(long_gop, monkeypatch):
    """What a composite segment decodes from its first frame on is what a plain decode gives there."""
    _, path = long_gop
    with av.open(str(path)) as c:
        decoded = [(float(f.pts * f.time_base), f.to_ndarray(format="gray"), f.key_frame) for f in c.decode(video=0)]
    pts = np.array([t for t, _, _ in decoded])
    start = next(i for i in range(300, len(decoded)) if decoded[i][2]) - 1  # as above: just before a keyframe
    seeks = []
    monkeypatch.setattr(av.container.InputContainer, "seek", lambda c, *a, _s=av.container.InputContainer.seek, **k:
                        seeks.append(a[0]) or _s(c, *a, **k))
    with av.open(str(path)) as c:
        got = [(i, f.to_ndarray(format="gray")) for i, f in segments.frames_from(c, pts, start, start + 20)]
    assert [i for i, _ in got] == list(range(start, start + 20))
    for i, img in got:
        np.testing.assert_array_equal(img, decoded[i][1], err_msg=f"frame {i}")
    assert 0 not in seeks  # found by seeking (its keyframe is over 10 s in), not by decoding from the start
