"""The moving pairs' truth, shown right without the code that made it: fg frame i is bg frame ``frames[i]``
seen through ``placement[i]``, resampled here by PIL's affine transform (its own bicubic, its own pixel
convention) from what plain PyAV decodes, and a window one pixel off, or the neighbouring frame, is clearly
worse."""

from __future__ import annotations

import time
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from benchmarks.moving import MovingTruth
from tests.moving import BG_SIZE, FG_SIZE, moving_pair

SHIFTS = {"x + 1": (1.0, 0.0, 0.0), "y + 1": (0.0, 1.0, 0.0), "region 1 px narrower": (0.0, 0.0, 1.0)}


def luma(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="gray").astype(np.float32) for f in container.decode(video=0)]


def window(bg: np.ndarray, x: float, y: float, scale: float) -> np.ndarray:
    """The region at (x, y) of width fg_w / scale, scaled to fg's size: PIL maps output point (u, v) to input
    (x + u / scale, y + v / scale), pixel k covering [k, k + 1) on both sides."""
    img = Image.fromarray(bg, mode="F")
    inv = 1.0 / scale
    return np.asarray(img.transform(FG_SIZE, Image.Transform.AFFINE, (inv, 0.0, x, 0.0, inv, y),
                                    resample=Image.Resampling.BICUBIC))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / max(float(np.mean((a - b) ** 2)), 1e-12)))


@pytest.fixture(scope="module", params=["shots", "pan", "zoom"])
def decoded(request, tmp_path_factory) -> tuple[str, MovingTruth, list[np.ndarray], list[np.ndarray], float]:
    start = time.perf_counter()
    truth = moving_pair(tmp_path_factory.mktemp(f"moving-{request.param}"), request.param)
    took = time.perf_counter() - start
    return request.param, truth, luma(truth.bg), luma(truth.fg), took


def test_the_pair_is_small_and_its_windows_move_as_the_kind_says(decoded):
    kind, truth, bg, fg, took = decoded
    assert took < 3.0
    assert truth.bg_size == BG_SIZE and truth.fg_size == FG_SIZE and len(fg) == len(truth.frames) == 60
    assert len(bg) == len(truth.labels) == 60 and bg[0].shape == (BG_SIZE[1], BG_SIZE[0])
    x, y, s = truth.placement.T
    assert np.all(x >= 0) and np.all(y >= 0)
    assert np.all(x + FG_SIZE[0] / s <= BG_SIZE[0]) and np.all(y + FG_SIZE[1] / s <= BG_SIZE[1])
    steps = np.diff(truth.placement, axis=0)
    if kind == "shots":
        assert np.count_nonzero(np.abs(steps[:, :2]).sum(1)) == 2 and np.all(s == 1)
    elif kind == "pan":
        np.testing.assert_array_equal(steps[:35], np.tile([2.0, 1.0, 0.0], (35, 1)))
    else:
        assert s[0] == 1.0 and s[-1] == pytest.approx(1.15)
        centre = np.stack([x + FG_SIZE[0] / (2 * s), y + FG_SIZE[1] / (2 * s)], 1)
        np.testing.assert_allclose(centre, np.tile([200.0, 85.0], (60, 1)))


def test_fg_is_the_true_frame_through_the_true_window(decoded):
    _, truth, bg, fg, _ = decoded
    scores = [psnr(fg[i], window(bg[k], *truth.placement[i])) for i, k in enumerate(truth.frames)]
    assert min(scores) > 35, f"worst fg frame {int(np.argmin(scores))}: {min(scores):.1f} dB"


@pytest.mark.parametrize("shift", SHIFTS)
def test_a_window_one_pixel_off_scores_clearly_worse(decoded, shift):
    _, truth, bg, fg, _ = decoded
    dx, dy, narrower = SHIFTS[shift]
    right, off = [], []
    for i, k in enumerate(truth.frames):
        x, y, s = truth.placement[i]
        wrong_scale = FG_SIZE[0] / (FG_SIZE[0] / s - narrower)
        right.append(psnr(fg[i], window(bg[k], x, y, s)))
        off.append(psnr(fg[i], window(bg[k], x + dx, y + dy, wrong_scale)))
    # measured: 10-11 dB for a whole pixel in x or y, 7 dB for a region 1 px narrower (half a pixel on average)
    assert np.median(right) - np.median(off) > 5


def test_the_neighbouring_bg_frame_scores_worse(decoded):
    _, truth, bg, fg, _ = decoded
    gaps = [psnr(fg[i], window(bg[k], *truth.placement[i])) - psnr(fg[i], window(bg[k + 1], *truth.placement[i]))
            for i, k in enumerate(truth.frames[:-1]) if truth.labels[k] != truth.labels[k + 1]]
    assert np.median(gaps) > 6
