"""The written overlay: fg's frames, rate, timestamps and audio over the right bg frames."""

from __future__ import annotations

import numpy as np
import pytest

import vidkompy
from tests.helpers import decode_all, psnr, stream_types, timestamps, video_rate
from tests.reference import assert_planes_within, decode_planes, pasted
from vidkompy.samples import make_pair


def reference_composite(pair) -> list[np.ndarray]:
    """fg pasted at the true offset over the true bg frames, made independently of vidkompy."""
    bg, fg = decode_all(pair.bg), decode_all(pair.fg)
    x, y = int(pair.x), int(pair.y)
    out = []
    for i, f in enumerate(fg):
        frame = bg[pair.frames[i]].copy()
        frame[y : y + f.shape[0], x : x + f.shape[1]] = f
        out.append(frame)
    return out


@pytest.mark.parametrize("case", ["crop", "three_edges"])
def test_overlay_matches_reference_composite(samples, case, tmp_path, request):
    """crop's alignment comes from the store (`crop_cache`): the composite is the point; three_edges' is
    computed here."""
    pair = samples[case]
    out = tmp_path / "out.mp4"
    cache = request.getfixturevalue("crop_cache") if case == "crop" else tmp_path / "cache"
    result = vidkompy.compose(pair.bg, pair.fg, out, gpu=False, cache_dir=cache)

    assert result.output == str(out)
    frames = decode_all(out)
    assert len(frames) == len(pair.frames)
    assert video_rate(out) == pytest.approx(video_rate(pair.fg))
    assert timestamps(out) == pytest.approx(timestamps(pair.fg), abs=1e-3)
    assert frames[0].shape[:2] == decode_all(pair.bg)[0].shape[:2]
    reference = reference_composite(pair)
    worst = min(psnr(a, b) for a, b in zip(frames, reference, strict=True))
    assert worst > 32.0


def test_audio_is_carried_over_when_fg_has_it(crop, crop_cache, tmp_path):
    out = tmp_path / "out.mp4"
    vidkompy.compose(crop.bg, crop.fg, out, gpu=False, cache_dir=crop_cache)
    assert stream_types(out) == ["video", "audio"]


def test_no_audio_stream_when_fg_has_none(tmp_path):
    pair = make_pair(tmp_path, name="mute", audio=False, seconds=2.0, seed=5)
    out = tmp_path / "out.mp4"
    vidkompy.compose(pair.bg, pair.fg, out, gpu=False, cache_dir=tmp_path / "cache")
    assert stream_types(out) == ["video"]


def test_blend_feathers_only_visible_edges(tmp_path):
    """A brighter band shows bg above and below only: only its top and bottom rows are feathered."""
    pair = make_pair(tmp_path, name="bright", region=(0, 72, 320, 96), fg_fps=25, seconds=2.0, grade=(1.0, 40.0),
                     seed=6)
    hard, soft = tmp_path / "hard.mp4", tmp_path / "soft.mp4"
    vidkompy.compose(pair.bg, pair.fg, hard, gpu=False, cache_dir=tmp_path / "cache")
    vidkompy.compose(pair.bg, pair.fg, soft, border=8, blend=True, gpu=False, cache_dir=tmp_path / "cache")
    a, b = decode_all(hard, "gray")[5].astype(int), decode_all(soft, "gray")[5].astype(int)
    y0, h = int(pair.y), 96
    top_strip = np.abs(a[y0 : y0 + 4] - b[y0 : y0 + 4]).mean()
    middle = np.abs(a[y0 + 20 : y0 + h - 20] - b[y0 + 20 : y0 + h - 20]).mean()
    left_edge = np.abs(a[y0 + 20 : y0 + h - 20, :4] - b[y0 + 20 : y0 + h - 20, :4]).mean()
    assert top_strip > 15.0  # feathered into the darker bg
    assert middle < 3.0  # untouched (up to re-encoding noise) away from the visible edges
    assert left_edge < 3.0  # fg's left edge touches the canvas: no bg beside it, no ramp


def test_fg_larger_than_bg_is_scaled_to_fit_the_canvas(samples, tmp_path):
    """fg is all of bg at 1.5x: the lossless overlay is fg shrunk to the canvas, within a level of the NumPy
    bicubic (`tests.reference`), on the true frames. Planted faults it catches: a scale found half a pixel
    wide (fg shrunk to 322 x 242 instead of 320 x 240), fg left at its own size and cropped."""
    pair = samples["larger"]
    out = tmp_path / "out.mkv"
    result = vidkompy.compose(pair.bg, pair.fg, out, codec="ffv1", gpu=False, cache_dir=tmp_path / "cache")
    assert result.scale == pytest.approx(1.5, rel=1e-3)
    assert np.array_equal(result.frames, pair.frames)
    assert_planes_within(decode_planes(out), pasted(pair.bg, pair.fg, pair.frames, 0, 0, (320, 240)), 1)


def test_a_ten_bit_h264_pair_composes_to_ten_bits_and_a_forced_eight_says_so(crop, tmp_path, caplog):
    """Issue 20: High 10 in gave 8-bit out without a word. Planted fault: h264 pinned to yuv420p."""
    import av

    from tests.overlay.test_output_formats import to_10bit, to_h264_10bit

    bg, fg = (to_h264_10bit(to_10bit(p, tmp_path / f"{p.stem}.10.mkv"), tmp_path / f"{p.stem}.10.mp4")
              for p in (crop.bg, crop.fg))
    cache = tmp_path / "cache"
    result = vidkompy.compose(bg, fg, tmp_path / "ten.mp4", gpu=False, cache_dir=cache)
    assert np.array_equal(result.frames, crop.frames)
    assert not [r for r in caplog.records if "bits per sample" in r.getMessage()]
    caplog.clear()
    vidkompy.compose(bg, fg, tmp_path / "eight.mp4", gpu=False, cache_dir=cache, bit_depth=8)
    said = [r.getMessage() for r in caplog.records if "bits per sample" in r.getMessage()]
    assert said == ["the output is 8-bit h264 (as --bit-depth 8 asks); the inputs have 10 bits per sample"]
    for name, pix_fmt in (("ten.mp4", "yuv420p10le"), ("eight.mp4", "yuv420p")):
        with av.open(str(tmp_path / name)) as c:
            assert c.streams.video[0].codec_context.pix_fmt == pix_fmt
