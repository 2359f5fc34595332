"""Output formats: codecs, containers, bit depth, colour tags, audio choice, interleaving, faststart.

Truth is built here, independently of vidkompy: bg and fg decoded with PyAV
into numpy planes, fg's planes pasted at the true offset into the true bg
frame. A lossless (FFV1) output must equal it exactly; lossy ones come close.
"""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from vidkompy.errors import SettingsError
from vidkompy.media.encoding import OutputSettings, available_codecs, depth_loss, validate_output, validate_settings
from vidkompy.models import Alignment, Geometry
from vidkompy.overlay.composite import composite
from vidkompy.samples import SamplePair, make_pair

# -- readers and the independent reference ---------------------------------------------------------


def alignment_of(pair: SamplePair) -> Alignment:
    return Alignment(Geometry(pair.x, pair.y, pair.scale), 1.0, np.asarray(pair.frames))


def planes(arr: np.ndarray, height: int) -> list[np.ndarray]:
    """Y, U, V of a 4:2:0 ``to_ndarray`` image ((h * 3/2, w), as PyAV lays it out)."""
    w = arr.shape[1]
    q = height // 4
    return [arr[:height], arr[height : height + q].reshape(height // 2, w // 2),
            arr[height + q : height + 2 * q].reshape(height // 2, w // 2)]


def decode_planes(path, fmt: str = "yuv420p") -> list[list[np.ndarray]]:
    with av.open(str(path)) as c:
        return [planes(f.to_ndarray(format=fmt), f.height) for f in c.decode(video=0)]


def frame_times(path) -> list[float]:
    with av.open(str(path)) as c:
        return [float(f.pts * f.time_base) for f in c.decode(video=0)]


def reference(pair: SamplePair, bg=None, fg=None, fmt: str = "yuv420p") -> list[list[np.ndarray]]:
    """fg's planes pasted at the true (even) offset over the true bg frame."""
    bgs, fgs = decode_planes(bg or pair.bg, fmt), decode_planes(fg or pair.fg, fmt)
    x, y = int(pair.x), int(pair.y)
    out = []
    for i, f in enumerate(fgs):
        frame = [p.copy() for p in bgs[pair.frames[i]]]
        for k, (dst, src) in enumerate(zip(frame, f, strict=True)):
            s = 1 if k == 0 else 2
            dst[y // s : y // s + src.shape[0], x // s : x // s + src.shape[1]] = src
        out.append(frame)
    return out


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


def top_level_atoms(path) -> list[str]:
    """The names of an mp4/mov file's top-level boxes, in file order."""
    data = Path(path).read_bytes()
    names, i = [], 0
    while i + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[i : i + 8])
        if size == 1:
            size = struct.unpack(">Q", data[i + 8 : i + 16])[0]
        names.append(kind.decode("latin-1"))
        if size < 8:
            break
        i += size
    return names


def packets_in_file_order(path) -> list[tuple[str, float, float]]:
    """(stream type, dts seconds, duration seconds) of every packet, in the order they lie in the file."""
    with av.open(str(path)) as c:
        out = []
        for p in c.demux():
            if p.dts is None and p.pts is None:
                continue
            ts = p.dts if p.dts is not None else p.pts
            out.append((p.stream.type, float(ts * p.time_base), float((p.duration or 0) * p.time_base), p.pos))
    return [(t, d, dur) for t, d, dur, _ in sorted(out, key=lambda r: r[3])]


def audio_packets(path) -> list[tuple[float, float]]:
    """(pts seconds, duration seconds) of the audio packets, in stream order."""
    with av.open(str(path)) as c:
        return [(float(p.pts * p.time_base), float(p.duration * p.time_base))
                for p in c.demux(audio=0) if p.pts is not None]


def assert_continuous(packets: list[tuple[float, float]]) -> None:
    """No gap or overlap between consecutive audio packets beyond one packet's duration."""
    assert len(packets) > 10
    for (t0, d0), (t1, _) in zip(packets, packets[1:], strict=False):
        assert abs((t1 - t0) - d0) <= d0 + 1e-6, (t0, t1, d0)


# -- inputs --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("formats")


@pytest.fixture(scope="module")
def pair(folder) -> SamplePair:
    return make_pair(folder, name="fmt", seconds=2.0, seed=11)


def with_pcm_audio(video: Path, target: Path, *, rate: int = 8000, seconds: float = 4.0) -> Path:
    """``video``'s video stream (copied) plus mono PCM whose sample n has the value n mod 32768.

    The value tells which source time a sample of the output came from.
    """
    with av.open(str(video)) as src, av.open(str(target), "w") as out:
        vi = src.streams.video[0]
        vo = out.add_stream_from_template(vi)
        a = out.add_stream("pcm_s16le", rate=rate)
        a.layout = "mono"
        for p in src.demux(vi):
            if p.dts is not None:
                p.stream = vo
                out.mux(p)
        n, block = int(seconds * rate), rate // 20
        samples = (np.arange(n) % 32768).astype(np.int16)
        for start in range(0, n, block):
            frame = av.AudioFrame.from_ndarray(samples[None, start : start + block], format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
            for p in a.encode(frame):
                out.mux(p)
        for p in a.encode(None):
            out.mux(p)
    return target


def reencode(path: Path, target: Path, codec: str, picture, options: dict[str, str] | None = None) -> Path:
    """``path``'s frames through ``picture(frame, k)`` into a yuv420p10le ``codec`` stream at ``target``."""
    with av.open(str(path)) as src, av.open(str(target), "w") as out:
        vi = src.streams.video[0]
        vs = out.add_stream(codec, rate=vi.average_rate, options=options or {})
        vs.width, vs.height, vs.pix_fmt = vi.codec_context.width, vi.codec_context.height, "yuv420p10le"
        vs.time_base = vi.time_base
        for k, f in enumerate(src.decode(vi)):
            g = picture(f, k)
            g.pts, g.time_base = f.pts, f.time_base
            g.pict_type = av.video.frame.PictureType.NONE
            for p in vs.encode(g):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    return target


def to_10bit(path: Path, target: Path) -> Path:
    """A lossless FFV1 yuv420p10le copy of ``path`` with real low bits: 4 * v + ((x + y + k) mod 4)."""

    def with_low_bits(f: av.VideoFrame, k: int) -> av.VideoFrame:
        a = f.to_ndarray(format="yuv420p").astype(np.uint16)
        yy, xx = np.mgrid[0 : a.shape[0], 0 : a.shape[1]]
        return av.VideoFrame.from_ndarray(a * 4 + ((xx + yy + k) % 4).astype(np.uint16), format="yuv420p10le")

    return reencode(path, target, "ffv1", with_low_bits)


@pytest.fixture(scope="module")
def pair10(folder, pair) -> tuple[Path, Path]:
    return to_10bit(pair.bg, folder / "bg10.mkv"), to_10bit(pair.fg, folder / "fg10.mkv")


# -- settings ------------------------------------------------------------------------------------


def test_the_build_has_the_encoders_the_codecs_need():
    assert {"h264", "hevc", "prores", "ffv1"} <= set(available_codecs())


@pytest.mark.parametrize(("settings", "name", "words"), [
    (OutputSettings("vp9"), "out.mp4", ["unknown codec", "h264", "ffv1"]),
    (OutputSettings("ffv1"), "out.mp4", ["cannot hold ffv1", "h264, hevc"]),
    (OutputSettings("prores"), "out.mp4", ["cannot hold prores", "h264, hevc"]),
    (OutputSettings("ffv1"), "out.mov", ["cannot hold ffv1", "prores"]),
    (OutputSettings("prores", crf=10), "out.mov", ["no crf"]),
    (OutputSettings("ffv1", preset="fast"), "out.mkv", ["no preset"]),
    (OutputSettings("h264", crf=99), "out.mp4", ["crf", "0 to 51"]),
    (OutputSettings("h264", preset="warp"), "out.mp4", ["unknown preset", "veryfast"]),
    (OutputSettings("h264", audio="both"), "out.mp4", ["audio", "fg, bg, none"]),
    (OutputSettings("h264", keyint=0), "out.mp4", ["keyint", "at least 1"]),
    (OutputSettings("h264"), "out.avi", ["extension", ".mp4"]),
])
def test_settings_that_cannot_be_honoured_are_refused_up_front(pair, tmp_path, settings, name, words):
    with pytest.raises(SettingsError) as err:
        validate_output(settings, tmp_path / name)
    assert all(w in str(err.value) for w in words), str(err.value)
    assert err.value.exit_code == 2
    with pytest.raises(SettingsError):
        composite(pair.bg, pair.fg, tmp_path / name, alignment_of(pair), settings=settings)
    assert list(tmp_path.iterdir()) == []  # refused before any file, temporary or not


@pytest.mark.parametrize(("codec", "name"), [("h264", "a.mp4"), ("hevc", "a.mov"), ("prores", "a.mov"),
                                             ("ffv1", "a.mkv"), ("h264", "A.MKV")])
def test_allowed_combinations_validate(tmp_path, codec, name):
    assert validate_output(OutputSettings(codec), tmp_path / name).suffix == Path(name).suffix.lower()


# -- pictures ------------------------------------------------------------------------------------


def test_default_call_writes_h264_mp4_at_fgs_timestamps(pair, tmp_path):
    out = composite(pair.bg, pair.fg, tmp_path / "out.mp4", alignment_of(pair), border=8, blend=False, comment=None)
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p"
    got, ref = decode_planes(out), reference(pair)
    assert len(got) == len(pair.frames)
    assert frame_times(out) == pytest.approx(frame_times(pair.fg), abs=1e-6)
    # crf 18 on this noisy texture sits at 42-44 dB from the lossless composite
    assert min(psnr(a[0], b[0]) for a, b in zip(got, ref, strict=True)) > 40.0


def test_lossless_output_equals_the_reference_composite_exactly(pair, tmp_path):
    out = composite(pair.bg, pair.fg, tmp_path / "out.mkv", alignment_of(pair), settings=OutputSettings("ffv1"))
    got, ref = decode_planes(out), reference(pair)
    assert len(got) == len(ref) == len(pair.frames)
    for a, b in zip(got, ref, strict=True):
        for pa, pb in zip(a, b, strict=True):
            np.testing.assert_array_equal(pa, pb)


@pytest.mark.parametrize("inputs", ["both", "bg_only"])
def test_ten_bit_in_ffv1_out_keeps_every_bit(pair, pair10, tmp_path, inputs):
    bg10, fg10 = pair10
    fg = fg10 if inputs == "both" else pair.fg
    out = composite(bg10, fg, tmp_path / "out.mkv", alignment_of(pair), settings=OutputSettings("ffv1"))
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.pix_fmt == "yuv420p10le"
    got = decode_planes(out, "yuv420p10le")
    ref = reference(pair, bg10, fg, "yuv420p10le")
    assert len(got) == len(ref)
    for a, b in zip(got, ref, strict=True):
        for pa, pb in zip(a, b, strict=True):
            np.testing.assert_array_equal(pa, pb)
    assert np.any(got[3][0] % 4 != 0)  # the low bits survived


@pytest.mark.parametrize(("ten_bit_in", "pix_fmt"), [(True, "yuv420p10le"), (False, "yuv420p")])
def test_hevc_follows_the_inputs_bit_depth(pair, pair10, tmp_path, ten_bit_in, pix_fmt):
    bg, fg = pair10 if ten_bit_in else (pair.bg, pair.fg)
    out = composite(bg, fg, tmp_path / "out.mp4", alignment_of(pair), settings=OutputSettings("hevc"))
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "hevc"
        assert c.streams.video[0].codec_context.pix_fmt == pix_fmt
    got = decode_planes(out, pix_fmt)
    ref = reference(pair, bg, fg, pix_fmt)
    peak = 1023.0 if ten_bit_in else 255.0
    assert len(got) == len(pair.frames)
    assert min(psnr(a[0], b[0], peak) for a, b in zip(got, ref, strict=True)) > 38.0


def test_prores_mov_is_hq_422_10bit_with_every_frame(pair, tmp_path):
    out = composite(pair.bg, pair.fg, tmp_path / "out.mov", alignment_of(pair), settings=OutputSettings("prores"))
    with av.open(str(out)) as c:
        vs = c.streams.video[0]
        assert vs.codec_context.name == "prores"
        assert vs.profile == "HQ"
        assert vs.codec_context.pix_fmt == "yuv422p10le"
    got = decode_planes(out)  # FFmpeg's own conversion back to 8-bit 4:2:0
    assert len(got) == len(pair.frames)
    assert frame_times(out) == pytest.approx(frame_times(pair.fg), abs=1e-6)
    assert min(psnr(a[0], b[0]) for a, b in zip(got, reference(pair), strict=True)) > 45.0


def tagged_copy(src_path: Path, target: Path, tags: tuple[int, int, int, int]) -> Path:
    """``src_path`` re-encoded with colour tags (primaries, trc, colorspace, range) on its stream."""
    with av.open(str(src_path)) as src, av.open(str(target), "w") as out:
        vi = src.streams.video[0]
        vs = out.add_stream("libx264", rate=vi.average_rate)
        vs.width, vs.height, vs.pix_fmt, vs.time_base = vi.width, vi.height, "yuv420p", vi.time_base
        cc = vs.codec_context
        cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = tags
        for f in src.decode(vi):
            f.pict_type = av.video.frame.PictureType.NONE
            for p in vs.encode(f):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    return target


@pytest.mark.parametrize("tags", [(1, 1, 1, 1), (9, 16, 9, 1)])  # BT.709; BT.2020 with PQ
@pytest.mark.parametrize(("codec", "name"), [("h264", "out.mp4"), ("prores", "out.mov"), ("ffv1", "out.mkv")])
def test_colour_tags_are_copied_from_bg(pair, tmp_path, tags, codec, name):
    bg = tagged_copy(pair.bg, tmp_path / "tagged.mp4", tags)
    out = composite(bg, pair.fg, tmp_path / name, alignment_of(pair), settings=OutputSettings(codec))
    with av.open(str(out)) as c:
        cc = c.streams.video[0].codec_context
        assert (cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range) == tags


# -- the container ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("codec", "name"), [("h264", "out.mp4"), ("prores", "out.mov")])
def test_mp4_and_mov_have_their_index_before_the_media(pair, tmp_path, codec, name):
    out = composite(pair.bg, pair.fg, tmp_path / name, alignment_of(pair), settings=OutputSettings(codec))
    atoms = top_level_atoms(out)
    assert "moov" in atoms and "mdat" in atoms
    assert atoms.index("moov") < atoms.index("mdat")


@pytest.fixture(scope="module")
def long_pair(folder) -> SamplePair:
    """16 s: longer than libavformat's 10 s interleaving window, so audio muxed last would show."""
    return make_pair(folder, name="long", bg_size=(128, 96), region=(32, 24, 64, 48), seconds=16.0, seed=12)


@pytest.mark.parametrize("audio", ["copied", "re-encoded"])
def test_audio_is_interleaved_with_the_video(long_pair, folder, tmp_path, audio):
    fg = long_pair.fg if audio == "copied" else with_pcm_audio(long_pair.fg, folder / "long_pcm.mkv", seconds=16)
    out = composite(long_pair.bg, fg, tmp_path / "out.mp4", alignment_of(long_pair))
    order = packets_in_file_order(out)
    kinds = [k for k, _, _ in order]
    first_audio = kinds.index("audio")
    last_video = len(kinds) - 1 - kinds[::-1].index("video")
    assert first_audio < last_video
    # at every point of the file, the audio is within a second of the video next to it
    video_t = None
    for kind, t, _ in order:
        if kind == "video":
            video_t = t
        elif video_t is not None:
            assert abs(t - video_t) < 1.0, (t, video_t)
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "aac"
    assert_continuous(audio_packets(out))


# -- which audio ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bg_with_audio(folder, pair) -> Path:
    return with_pcm_audio(pair.bg, folder / "bg_audio.mkv", seconds=2.2)


def stream_kinds(path) -> list[str]:
    with av.open(str(path)) as c:
        return [s.type for s in c.streams]


def test_audio_none_writes_video_only(pair, tmp_path):
    out = composite(pair.bg, pair.fg, tmp_path / "out.mp4", alignment_of(pair), settings=OutputSettings(audio="none"))
    assert stream_kinds(out) == ["video"]


def test_fg_audio_by_default(pair, bg_with_audio, tmp_path):
    out = composite(bg_with_audio, pair.fg, tmp_path / "out.mp4", alignment_of(pair))
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "aac"  # fg's tone, not bg's PCM (which would be re-encoded)
        assert c.streams.audio[0].codec_context.sample_rate == 48000


def bg_audio_check(out: Path, pair: SamplePair, bg_path: Path, rate: int = 8000) -> None:
    """bg's audio starts with the first mapped bg frame, on fg's clock, and stops with the video."""
    bg_start = frame_times(bg_path)[pair.frames[0]]
    fg_times = frame_times(out)
    packets = audio_packets(out)
    first_t, first_d = packets[0]
    with av.open(str(out)) as c:
        first = next(c.decode(audio=0)).to_ndarray()[0]
    source_t = int(first[0]) / rate  # the sample's value is its index in bg's audio
    assert bg_start - 1e-6 <= source_t <= bg_start + first_d + 1e-6
    assert first_t - fg_times[0] == pytest.approx(source_t - bg_start, abs=1.5 / rate)
    video_end = fg_times[-1] + (fg_times[-1] - fg_times[-2])
    last_t, last_d = packets[-1]
    ms = 2e-3  # Matroska keeps milliseconds
    assert video_end - last_d - ms <= last_t < video_end + ms
    assert_continuous(packets)


def test_bg_audio_when_asked_is_cut_to_the_output(pair, bg_with_audio, tmp_path):
    out = composite(bg_with_audio, pair.fg, tmp_path / "out.mkv", alignment_of(pair),
                    settings=OutputSettings(audio="bg"))
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "pcm_s16le"  # Matroska takes it as it is
    bg_audio_check(out, pair, bg_with_audio)


def test_bg_audio_when_fg_has_none(folder, tmp_path):
    mute = make_pair(folder, name="mute", seconds=2.0, seed=13, audio=False)
    bg = with_pcm_audio(mute.bg, folder / "mute_bg_audio.mkv", seconds=2.2)
    out = composite(bg, mute.fg, tmp_path / "out.mkv", alignment_of(mute))
    bg_audio_check(out, mute, bg)


def test_bg_audio_re_encoded_for_mp4_keeps_its_timing(pair, bg_with_audio, tmp_path):
    out = composite(bg_with_audio, pair.fg, tmp_path / "out.mp4", alignment_of(pair),
                    settings=OutputSettings(audio="bg"))
    with av.open(str(out)) as c:
        assert c.streams.audio[0].codec_context.name == "aac"
    packets = audio_packets(out)
    assert_continuous(packets)
    fg_times = frame_times(out)
    # AAC's priming packet starts before the first sample; the audible start is within a packet of the video's
    assert abs(packets[0][0] - fg_times[0]) <= 2 * packets[0][1]
    assert packets[-1][0] < fg_times[-1] + 0.1


def test_no_audio_at_all_gives_video_only(folder, tmp_path):
    mute = make_pair(folder, name="mute2", seconds=2.0, seed=14, audio=False)
    out = composite(mute.bg, mute.fg, tmp_path / "out.mp4", alignment_of(mute))
    assert stream_kinds(out) == ["video"]


def test_ten_bit_blend_feathers_like_the_eight_bit_one(pair, pair10, tmp_path):
    """The feathered edges computed on 16-bit planes agree with the 8-bit ones to within a level."""
    bg10, fg10 = pair10
    eight = composite(pair.bg, pair.fg, tmp_path / "8.mkv", alignment_of(pair), blend=True,
                      settings=OutputSettings("ffv1"))
    ten = composite(bg10, fg10, tmp_path / "10.mkv", alignment_of(pair), blend=True,
                    settings=OutputSettings("ffv1"))
    hard = composite(pair.bg, pair.fg, tmp_path / "hard.mkv", alignment_of(pair), settings=OutputSettings("ffv1"))
    a, b, h = decode_planes(eight)[5][0], decode_planes(ten, "yuv420p10le")[5][0], decode_planes(hard)[5][0]
    assert np.abs(a.astype(int) - h.astype(int)).max() > 5  # the blend did something
    assert np.abs(a.astype(int) - (b // 4).astype(int)).max() <= 1


def letterboxed(path: Path, target: Path, bars: int) -> Path:
    """A lossless copy of ``path`` with ``bars`` black rows above and below the picture."""
    with av.open(str(path)) as src, av.open(str(target), "w") as out:
        vi = src.streams.video[0]
        vs = out.add_stream("ffv1", rate=vi.average_rate)
        vs.width, vs.height, vs.pix_fmt = vi.codec_context.width, vi.codec_context.height + 2 * bars, "yuv420p"
        vs.time_base = vi.time_base
        for f in src.decode(vi):
            y, u, v = planes(f.to_ndarray(format="yuv420p"), f.height)
            pad = [np.pad(y, ((bars, bars), (0, 0)), constant_values=16)] + [
                np.pad(c, ((bars // 2, bars // 2), (0, 0)), constant_values=128) for c in (u, v)]
            g = av.VideoFrame.from_ndarray(np.concatenate([pad[0], pad[1].reshape(-1, pad[0].shape[1]),
                                                           pad[2].reshape(-1, pad[0].shape[1])]), format="yuv420p")
            g.pts, g.time_base = f.pts, f.time_base
            for p in vs.encode(g):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    return target


def test_only_fgs_active_picture_is_pasted(pair, folder, tmp_path):
    """fg inside black bars: ``Alignment.active`` names the picture, and only it lands on bg."""
    boxed = letterboxed(pair.fg, folder / "boxed.mkv", 20)
    w, h = 160, 120
    alignment = Alignment(Geometry(pair.x, pair.y, 1.0), 1.0, np.asarray(pair.frames), active=(0, 20, w, h))
    out = composite(pair.bg, boxed, tmp_path / "out.mkv", alignment, settings=OutputSettings("ffv1"))
    got, ref = decode_planes(out), reference(pair)
    assert len(got) == len(ref)
    for a, b in zip(got, ref, strict=True):
        for pa, pb in zip(a, b, strict=True):
            np.testing.assert_array_equal(pa, pb)


# -- bit depth (issue 20): what comes in at 10 bits leaves at 10 bits unless asked ---------------------------


def to_h264_10bit(path: Path, target: Path) -> Path:
    """A 10-bit H.264 (High 10, yuv420p10le) copy of a 10-bit file, as cameras and mezzanines write them."""
    return reencode(path, target, "libx264", lambda f, k: f, {"crf": "12", "preset": "veryfast"})


@pytest.fixture(scope="module")
def pair_h264_10(folder, pair10) -> tuple[Path, Path]:
    return tuple(to_h264_10bit(p, folder / f"{p.stem}.h264.mp4") for p in pair10)


def test_the_generated_pair_is_high_10(pair_h264_10):
    for path in pair_h264_10:
        with av.open(str(path)) as c:
            cc = c.streams.video[0].codec_context
            assert (cc.name, cc.pix_fmt, cc.profile) == ("h264", "yuv420p10le", "High 10")


@pytest.mark.parametrize(("bit_depth", "pix_fmt", "profile"), [(None, "yuv420p10le", "High 10"),
                                                                (10, "yuv420p10le", "High 10"),
                                                                (8, "yuv420p", "High")])
def test_h264_follows_the_inputs_bit_depth_unless_told(pair, pair_h264_10, tmp_path, bit_depth, pix_fmt, profile):
    """Planted fault it catches: h264 pinned to yuv420p (2.0's default) fails the None and 10 cases."""
    bg, fg = pair_h264_10
    out = composite(bg, fg, tmp_path / "out.mp4", alignment_of(pair), settings=OutputSettings(bit_depth=bit_depth))
    with av.open(str(out)) as c:
        cc = c.streams.video[0].codec_context
        assert (cc.name, cc.pix_fmt, cc.profile) == ("h264", pix_fmt, profile)
    got, ref = decode_planes(out, pix_fmt), reference(pair, bg, fg, pix_fmt)
    peak = 1023.0 if pix_fmt.endswith("10le") else 255.0
    assert len(got) == len(pair.frames)
    assert min(psnr(a[0], b[0], peak) for a, b in zip(got, ref, strict=True)) > 38.0
    if peak > 255:
        assert np.mean(got[3][0] % 4 != 0) > 0.5  # the two low bits are there, not zeros shifted up


@pytest.mark.parametrize(("codec", "inputs", "requested", "words"), [
    ("h264", ["yuv420p10le", "yuv420p"], None, None),
    ("h264", ["yuv420p10le", "yuv420p"], 8, ["8-bit h264", "--bit-depth 8", "10 bits"]),
    ("hevc", ["yuv420p"], None, None),
    ("prores", ["yuv420p12le"], None, ["10-bit prores", "12 bits"]),
    ("ffv1", ["yuv420p12le"], None, None),
    ("ffv1", ["yuv420p12le"], 10, ["10-bit ffv1", "12 bits"]),
])
def test_an_output_with_fewer_bits_than_its_inputs_is_said_in_one_line(codec, inputs, requested, words):
    line = depth_loss(codec, inputs, requested)
    if words is None:
        assert line is None
    else:
        assert line is not None and "\n" not in line and all(w in line for w in words)


@pytest.mark.parametrize(("settings", "words"), [
    (OutputSettings(bit_depth=9), ["bit depth", "8, 10"]),
    (OutputSettings("prores", bit_depth=8), ["prores", "10-bit"]),
])
def test_a_bit_depth_the_codec_cannot_write_is_refused(settings, words):
    with pytest.raises(SettingsError) as exc:
        validate_settings(settings)
    assert all(w in str(exc.value) for w in words)
