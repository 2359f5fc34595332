"""Long footage with exact truth: minutes to hours of scenes, generated while they are encoded.

The source is a sequence of scenes, each 4-20 s long, each a camera pan (and
perhaps a zoom) over its own procedurally generated canvas with discs moving
across it, and a hard cut to the next. A scene's length and motion come from
``(seed, scene index)`` alone, so every length of one seed starts with the same
pictures (the length cases are the first N minutes of one sequence). The pan
moves at least one pixel a frame and never turns back, the discs move every
frame and every scene has a canvas of its own: no picture repeats anywhere, so
the true bg frame of every fg frame is unambiguous.

Memory does not grow with length: a canvas or two (a scene's, bounded by its
pan; the next one is made in a thread meanwhile) and a few frames are alive at
a time; bg and fg are written in one pass over the
source frames, as ``vidkompy.samples.make_pair`` does, and fg's AAC tone is
interleaved with its video as it goes. The texture has the look of
``vidkompy.samples._texture`` (multi-scale coloured noise with hard-edged
blocks), with its coarse layers made at a lower resolution and enlarged, which
keeps a 1080p canvas to about two seconds; it lives here so that footage cached
under ``CACHE/footage`` does not change when vidkompy's samples do.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from scipy import ndimage

from benchmarks.footage import SAME_PICTURE, Truth, true_frames

# Bump when the pictures, the timing or the encoding change: cached long footage is rebuilt.
VERSION = 2
SCENE_SECONDS = (4.0, 20.0)
MAX_ZOOM = 1.35  # the camera window is 1/zoom of the frame, enlarged to it
DISCS = 5  # moving discs a scene
TONE_RATE, TONE_BLOCK = 48000, 1024


@dataclass(frozen=True)
class Scene:
    """One shot: the canvas seed, the camera's path over it and the disc's path over the frame."""

    index: int
    n: int  # frames
    canvas: tuple[int, int]  # (width, height), at the frame's scale
    centre: tuple[float, float, float, float]  # camera window centre: x0, y0, x1, y1 (canvas pixels)
    zoom: tuple[float, float]  # at the first and the last frame
    # per disc: drift from (x0, y0) to (x1, y1) (frame pixels), radius, orbit radius, radians a frame, phase
    discs: tuple[tuple[float, ...], ...]


def plan_scene(index: int, seed: int, size: tuple[int, int], fps: float) -> Scene:
    """Scene ``index`` of the sequence ``seed``: depends on nothing else, so any length shares its start."""
    w, h = size
    rng = np.random.default_rng([seed, index, 1])
    n = max(2, int(round(rng.uniform(*SCENE_SECONDS) * fps)))
    # Whole-pixel crops: the window moves at least one pixel a frame along x (slower would repeat a
    # window), up to 3 at 1080p and 1.5 on small frames.
    vx = rng.uniform(1.0, max(1.5, 3.0 * w / 1920)) * (1 if rng.random() < 0.5 else -1)
    vy = abs(vx) * math.tan(rng.uniform(-0.5, 0.5))
    dx, dy = vx * (n - 1), vy * (n - 1)
    pad = 8
    cw, ch = w + int(math.ceil(abs(dx))) + 2 * pad, h + int(math.ceil(abs(dy))) + 2 * pad
    x0 = pad + w / 2 + (abs(dx) if dx < 0 else 0.0)
    y0 = pad + h / 2 + (abs(dy) if dy < 0 else 0.0)
    kind = rng.integers(3)  # a plain pan, a zoom in, a zoom out
    z = sorted(rng.uniform(1.0, MAX_ZOOM, 2))
    zoom = (1.0, 1.0) if kind == 0 else ((z[0], z[1]) if kind == 1 else (z[1], z[0]))
    # Discs that drift across the frame while they circle, fast (4-10 px a frame at 1080p), each its own
    # way: a pan makes frame k+1 look like frame k shifted, and only what moves against the camera (these,
    # a zoom) tells the two apart, so they cover a good part of the picture.
    discs = []
    for _ in range(DISCS):
        orbit = min(w, h) * rng.uniform(0.06, 0.15)
        discs.append((rng.uniform(0.2, 0.8) * w, rng.uniform(0.25, 0.75) * h, rng.uniform(0.2, 0.8) * w,
                      rng.uniform(0.25, 0.75) * h, max(3.0, min(w, h) * rng.uniform(0.06, 0.12)), orbit,
                      max(1.5, rng.uniform(4.0, 10.0) * w / 1920) / orbit * (1 if rng.random() < 0.5 else -1),
                      rng.uniform(0, 2 * math.pi)))
    return Scene(index, n, (cw, ch), (x0, y0, x0 + dx, y0 + dy), zoom, tuple(discs))


def scenes(seed: int, size: tuple[int, int], fps: float, n_frames: int) -> Iterator[Scene]:
    """The scenes covering the first ``n_frames`` frames (the last one cut short)."""
    done, index = 0, 0
    while done < n_frames:
        s = plan_scene(index, seed, size, fps)
        yield s
        done += s.n
        index += 1


def texture(height: int, width: int, rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """vidkompy.samples' look: coloured noise at four scales plus hard-edged blocks, every picture its own.

    The three coarse layers are made at half size and enlarged once
    (bilinear): the same spectrum for a fraction of the filtering.
    """
    (s1, w1), *coarse_layers = ((max(1.0, s * scale), wt) for s, wt in ((1.0, 0.35), (3.0, 0.6), (9.0, 1.0),
                                                                         (27.0, 1.4)))
    ch, cw = height // 2 + 2, width // 2 + 2
    coarse = np.zeros((ch, cw, 3), np.float32)
    for sigma, weight in coarse_layers:
        layer = ndimage.gaussian_filter(rng.standard_normal((ch, cw, 3), dtype=np.float32), (sigma / 2, sigma / 2, 0))
        layer *= weight / (layer[::2, ::2].std() + 1e-6)
        coarse += layer
    img = ndimage.zoom(coarse, (2, 2, 1), order=1, grid_mode=False)[:height, :width]
    del coarse, layer
    fine = ndimage.gaussian_filter(rng.standard_normal((height, width, 3), dtype=np.float32), (s1, s1, 0))
    fine *= w1 / (fine[::4, ::4].std() + 1e-6)
    img += fine
    del fine
    for _ in range(max(4, height * width // 6000)):
        bh, bw = rng.integers(4, max(5, int(180 * scale)), size=2)
        y, x = rng.integers(0, height - bh), rng.integers(0, width - bw)
        img[y : y + bh, x : x + bw] += rng.normal(0, 1.5, 3).astype(np.float32)
    mean, std = float(img[::4, ::4].mean()), float(img[::4, ::4].std())
    img -= mean
    img *= 40 / (std + 1e-6)
    img += 128
    return np.clip(img, 0, 255).astype(np.uint8)


def scene_canvas(scene: Scene, seed: int, size: tuple[int, int]) -> np.ndarray:
    """The picture the scene's camera moves over (RGB, at the frame's scale)."""
    return texture(scene.canvas[1], scene.canvas[0], np.random.default_rng([seed, scene.index, 2]), size[0] / 1920)


def _draw_disc(luma: np.ndarray, chroma: np.ndarray, cx: float, cy: float, r: float) -> None:
    """A disc of the picture turned over: luma inverted and compressed, chroma inverted (in place)."""
    ri = int(math.ceil(r))
    bx, by = max(0, int(cx) - ri), max(0, int(cy) - ri)
    box = luma[by : int(cy) + ri + 1, bx : int(cx) + ri + 1]
    yy, xx = np.ogrid[by : by + box.shape[0], bx : bx + box.shape[1]]
    disc = (xx - cx) ** 2 + (yy - cy) ** 2 < r * r
    box[disc] = (255 - box[disc]) // 2 + 60
    cbox = chroma[:, by // 2 : (int(cy) + ri) // 2 + 1, bx // 2 : (int(cx) + ri) // 2 + 1]
    yy, xx = np.ogrid[by // 2 : by // 2 + cbox.shape[1], bx // 2 : bx // 2 + cbox.shape[2]]
    cdisc = (2 * xx + 0.5 - cx) ** 2 + (2 * yy + 0.5 - cy) ** 2 < r * r
    cbox[:, cdisc] = 255 - cbox[:, cdisc]


def scene_frames(scene: Scene, canvas: np.ndarray, size: tuple[int, int], n: int | None = None) -> Iterator[np.ndarray]:
    """The scene's frames (its first ``n``) as yuv420p, planes stacked as PyAV's ``to_ndarray`` gives them.

    The camera window is cut from the RGB canvas and scaled and converted by
    FFmpeg in one call (its fast path); the discs are drawn on the planes.
    """
    w, h = size
    x0, y0, x1, y1 = scene.centre
    for j in range(scene.n if n is None else min(n, scene.n)):
        t = j / (scene.n - 1)
        z = scene.zoom[0] + (scene.zoom[1] - scene.zoom[0]) * t
        ww, wh = min(w, int(round(w / z))), min(h, int(round(h / z)))
        left = int(round(x0 + (x1 - x0) * t - ww / 2))
        top = int(round(y0 + (y1 - y0) * t - wh / 2))
        window = av.VideoFrame.from_ndarray(np.ascontiguousarray(canvas[top : top + wh, left : left + ww]),
                                            format="rgb24")
        yuv = window.reformat(width=w, height=h, format="yuv420p", interpolation="BILINEAR").to_ndarray()
        luma, chroma = yuv[:h], yuv[h:].reshape(2, h // 2, w // 2)
        for dx0, dy0, dx1, dy1, r, orbit, omega, phase in scene.discs:
            cx = dx0 + (dx1 - dx0) * t + orbit * math.cos(phase + omega * j)
            cy = dy0 + (dy1 - dy0) * t + orbit * math.sin(phase + omega * j)
            _draw_disc(luma, chroma, cx, cy, r)
        yield yuv


def source_frames(seed: int, size: tuple[int, int], fps: float, n_frames: int) -> Iterator[np.ndarray]:
    """The first ``n_frames`` frames of the sequence, scene after scene (hard cuts).

    The next scene's canvas is made in a thread while this scene is encoded
    (NumPy and SciPy release the GIL): two canvases alive at most.
    """
    plan = list(scenes(seed, size, fps, n_frames))
    left = n_frames
    with ThreadPoolExecutor(max_workers=1) as pool:
        upcoming = pool.submit(scene_canvas, plan[0], seed, size)
        for j, scene in enumerate(plan):
            canvas = upcoming.result()
            if j + 1 < len(plan):
                upcoming = pool.submit(scene_canvas, plan[j + 1], seed, size)
            yield from scene_frames(scene, canvas, size, left)
            left -= scene.n
            del canvas


def _open_encoder(path: Path, size: tuple[int, int], fps: Fraction, crf: int) -> tuple:
    out = av.open(str(path), mode="w")
    vs = out.add_stream("libx264", rate=fps)
    vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
    vs.options = {"crf": str(crf), "preset": "veryfast"}
    vs.codec_context.thread_type = "AUTO"  # frame threads (PyAV's default is slice threads)
    vs.codec_context.thread_count = 0
    return out, vs


def _crop_yuv(yuv: np.ndarray, size: tuple[int, int], region: tuple[int, int, int, int]) -> np.ndarray:
    """A region (even offset and size) of stacked yuv420p planes, stacked the same way."""
    w, h = size
    rx, ry, rw, rh = region
    chroma = yuv[h:].reshape(2, h // 2, w // 2)[:, ry // 2 : (ry + rh) // 2, rx // 2 : (rx + rw) // 2]
    return np.concatenate([yuv[ry : ry + rh, rx : rx + rw], chroma.reshape(rh // 2, rw)])


class _Tone:
    """A 440 Hz AAC tone written up to a time on demand: interleaved with the video, never held whole."""

    def __init__(self, out: av.container.OutputContainer) -> None:
        self.out = out
        self.stream = out.add_stream("aac", rate=TONE_RATE)
        self.stream.layout = "stereo"
        self.done = 0  # samples written

    def _mux(self, frame: av.AudioFrame | None) -> None:
        for packet in self.stream.encode(frame):
            self.out.mux(packet)

    def until(self, seconds: float) -> None:
        end = int(seconds * TONE_RATE)
        while self.done + TONE_BLOCK <= end:
            t = (self.done + np.arange(TONE_BLOCK)) / TONE_RATE
            chunk = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(np.stack([chunk, chunk]), format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = TONE_RATE, self.done
            self._mux(frame)
            self.done += TONE_BLOCK

    def close(self, seconds: float) -> None:
        self.until(seconds)
        self._mux(None)


def write_pair(folder: Path, name: str, *, seconds: float, bg_size: tuple[int, int] = (1920, 1080),
               bg_fps: float = 25, region: tuple[int, int, int, int] = (320, 180, 1280, 720), fg_fps: float = 30,
               bg_crf: int = 20, fg_crf: int = 22, audio: bool = True, seed: int = 0,
               log: Callable[[str], None] | None = None) -> Truth:
    """Write ``NAME.bg.mp4`` (every source frame) and ``NAME.fg.mp4`` (a crop, re-timed) and return the truth.

    fg frame i shows source frame ``floor((i/fg_fps)*bg_fps + 0.5 + 1e-6)``
    (`footage.true_frames`). Consecutive source frames closer than
    ``SAME_PICTURE`` would share a label; ``NAME.long.json`` records how close
    they came (``min_step``), the scenes and the generation speed.
    """
    start = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    n_src = int(round(seconds * bg_fps))
    rx, ry, rw, rh = region
    bg_rate, fg_rate = Fraction(bg_fps).limit_denominator(1001), Fraction(fg_fps).limit_denominator(1001)
    truth = true_frames(n_src, float(bg_rate), float(fg_rate), (0.0, 0.0))
    labels = np.zeros(n_src, np.int64)
    bg_path, fg_path = folder / f"{name}.bg.mp4", folder / f"{name}.fg.mp4"
    bg_out, bg_vs = _open_encoder(bg_path, bg_size, bg_rate, bg_crf)
    fg_out, fg_vs = _open_encoder(fg_path, (rw, rh), fg_rate, fg_crf)
    tone = _Tone(fg_out) if audio else None
    prev: np.ndarray | None = None
    min_step = math.inf
    i, k = 0, 0
    logged = start
    try:
        for k, src in enumerate(source_frames(seed, bg_size, float(bg_rate), n_src)):
            # luma, every 4th pixel: enough to tell a repeat (a repeat is identical) at a fraction of the cost
            cur = src[: bg_size[1] : 4, ::4].astype(np.int16)
            if prev is not None:
                step = float(np.abs(cur - prev).mean())
                min_step = min(min_step, step)
                labels[k] = labels[k - 1] + (step >= SAME_PICTURE)
            prev = cur
            frame = av.VideoFrame.from_ndarray(src, format="yuv420p")
            frame.pts = k
            for packet in bg_vs.encode(frame):
                bg_out.mux(packet)
            while i < len(truth) and truth[i] == k:
                crop = av.VideoFrame.from_ndarray(_crop_yuv(src, bg_size, region), format="yuv420p")
                crop.pts = i
                for packet in fg_vs.encode(crop):
                    fg_out.mux(packet)
                i += 1
                if tone is not None:
                    tone.until(i / float(fg_rate))
            if log is not None and time.perf_counter() - logged > 60:
                logged = time.perf_counter()
                rate = (k + 1) / (logged - start)
                log(f"footage {k + 1}/{n_src} frames, {rate:.0f} frames/s, {(n_src - k - 1) / rate / 60:.0f} min left")
        for packet in bg_vs.encode(None):
            bg_out.mux(packet)
        for packet in fg_vs.encode(None):
            fg_out.mux(packet)
        if tone is not None:
            tone.close(len(truth) / float(fg_rate))
    finally:
        bg_out.close()
        fg_out.close()
    if k + 1 != n_src or i != len(truth):
        raise RuntimeError(f"{name}: wrote {k + 1}/{n_src} bg and {i}/{len(truth)} fg frames")
    cuts = []
    at = 0
    for s in scenes(seed, bg_size, float(bg_rate), n_src):
        cuts.append(at)
        at += s.n
    took = time.perf_counter() - start
    (folder / f"{name}.long.json").write_text(json.dumps({
        "version": VERSION, "seconds": round(took, 1), "frames_per_s": round(n_src / took, 1),
        "n_bg": n_src, "n_fg": len(truth), "scenes": len(cuts), "min_step": round(min_step, 3),
        "distinct": bool(labels[-1] == n_src - 1), "cuts": cuts}))
    return Truth(bg_path, fg_path, float(rx), float(ry), 1.0, truth, labels, float(bg_rate), float(fg_rate),
                 bg_size, (rw, rh), audio)
