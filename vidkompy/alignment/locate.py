"""Where fg sits in bg, to the working pixel, before anything is matched in time.

A crop cannot be matched in time against whole bg frames (measured on real
footage: 1-68% of frames right, offsets 2-333 px off during pans), so fg is
first located: a few fg frames spread in time are searched by normalised
cross-correlation in bg pictures spread in time, and the position where every
sample finds *some* matching bg picture wins the vote. During a pan a fg frame
also matches a wrong-time bg frame at a shifted position (0.98-0.999 NCC on real
footage); only the true position is right for all samples at once.

Only pictures are read, never whole videos: at most ``MAX_CANDIDATES`` bg
pictures at a coarse width, searched in chunks, then pictures near each
sample's best ones, densely, so that long videos (bg pictures seconds apart)
are located as well as short ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vidkompy.alignment.ncc import NccSearch, ncc_map
from vidkompy.alignment.resample import grid_map, rescale, warp
from vidkompy.alignment.source import FrameSource, read_frames
from vidkompy.models import Geometry

COARSE_WIDTH = 160  # px, the bg width of the coarse search
MIN_TEMPLATE = 8  # px, below this a template carries too little texture to match
ACCEPT_UNSCALED = 0.80  # NCC at which scale 1 is taken without a scale scan
SCALES = tuple(float(s) for s in np.geomspace(0.5, 2.0, 25))
MAX_CANDIDATES = 1200  # bg pictures of the coarse search (a constant cost, whatever the length)
QUICK_CANDIDATES = 100  # of the scale scan
SEARCH_CHUNK = 96  # bg pictures per FFT batch: bounds memory
DENSE_TOP = 3  # a sample's best coarse pictures, searched again around them frame by frame
SAMPLES = 5  # fg frames searched (more when fg is longer than bg)
MAX_SAMPLES = 25
AGREE = 0.6  # the share of samples whose agreement makes the vote
FOUND_ELSEWHERE = 0.85  # a sample's own best NCC at which it is found (coarse level)
ELSEWHERE_MARGIN = 0.2  # ... and by how much better than at the voted place, to count as placed elsewhere


class NotFoundError(ValueError):
    """fg cannot be placed inside bg at any scale tried."""


@dataclass(frozen=True)
class Located:
    geometry: Geometry
    score: float  # mean best NCC of the fg samples that agreed on the position
    bg_frames: tuple[int, ...]  # best bg frame of each of them
    fg_frames: tuple[int, ...]  # those fg samples
    elsewhere: int = 0  # samples that match clearly better at another place: the placement may move


def template(fg_img: np.ndarray, fg_factor: tuple[float, float], fg_size: tuple[int, int],
              bg_factor: tuple[float, float], scale: float) -> np.ndarray | None:
    """fg resampled to the pixel size of a bg level, as it would appear there at ``scale``."""
    out_factor = (bg_factor[0] * scale, bg_factor[1] * scale)
    tw = int(round(fg_size[0] / out_factor[0]))
    th = int(round(fg_size[1] / out_factor[1]))
    if min(tw, th) < MIN_TEMPLATE:
        return None
    return warp(fg_img, grid_map(0.0, 0.0, 1.0, out_factor, fg_factor), (th, tw))


class Pictures:
    """bg pictures at the coarse width, read once, searched in chunks."""

    def __init__(self, bg: FrameSource, indices: np.ndarray, shrink: float):
        self.indices = np.asarray(indices, dtype=np.int64)
        frames = read_frames(bg, self.indices)
        self.images = rescale(frames, shrink) if shrink > 1 else frames.astype(np.float32)

    def best(self, template: np.ndarray, subset: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per position: the best NCC over the pictures, and the bg frame that gave it."""
        return self.best_of([template], subset)[0]

    def best_of(self, templates: list[np.ndarray], subset: np.ndarray | None = None,
                profiles: list[np.ndarray] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
        """`best` for several templates, the pictures' spectra and tables computed once per chunk for all.

        ``profiles``, when given, receives each template's best NCC in every picture (anywhere in it).
        """
        rows = np.arange(len(self.indices)) if subset is None else subset
        out: list[tuple[np.ndarray, np.ndarray] | None] = [None] * len(templates)
        if profiles is not None:
            profiles[:] = [np.empty(len(rows), np.float32) for _ in templates]
        for a in range(0, len(rows), SEARCH_CHUNK):
            part = rows[a : a + SEARCH_CHUNK]
            search = NccSearch(self.images[part])
            for t, template in enumerate(templates):
                ncc = search(template)
                if profiles is not None:
                    profiles[t][a : a + len(part)] = ncc.reshape(len(part), -1).max(axis=1)
                m, k = ncc.max(axis=0), ncc.argmax(axis=0)
                frame = self.indices[part][k]
                if out[t] is None:
                    out[t] = (m, frame)
                else:
                    best, arg = out[t]
                    better = m > best
                    out[t] = (np.where(better, m, best), np.where(better, frame, arg))
        return out


def locate(
    bg: FrameSource,
    bg_size: tuple[int, int],
    fg: FrameSource,
    fg_size: tuple[int, int],
    *,
    length_ratio: float = 1.0,
    max_candidates: int = MAX_CANDIDATES,
) -> Located:
    """Find fg's region in bg to the working pixel: coarse search, then refinement.

    ``bg`` and ``fg`` are gray working copies ((N, h, w) uint8 array-likes: a
    Zarr array is read picture by picture) of videos whose full sizes are
    ``bg_size`` and ``fg_size`` (width, height). Scale 1 is tried first and kept
    when it matches well; otherwise a scale scan from 0.5 to 2 runs at the
    coarse level. Raises NotFoundError if fg cannot be placed inside bg at any scale.

    ``length_ratio`` is fg's duration over bg's: when fg is longer, most of it
    may have no counterpart in bg, so more frames are sampled and the vote needs
    fewer of them to agree.
    """
    n_bg, n_fg = len(bg), len(fg)
    bg_h, bg_w = bg.shape[1:]
    fg_h, fg_w = fg.shape[1:]
    bg_work_factor = (bg_size[0] / bg_w, bg_size[1] / bg_h)
    fg_factor = (fg_size[0] / fg_w, fg_size[1] / fg_h)
    stride = max(1 if n_bg < 60 else 2, math.ceil(n_bg / max_candidates))
    shrink = max(1.0, bg_w / COARSE_WIDTH)
    pictures = Pictures(bg, np.arange(0, n_bg, stride), shrink)
    coarse_h, coarse_w = pictures.images.shape[1:]
    coarse_factor = (bg_size[0] / coarse_w, bg_size[1] / coarse_h)
    longer = max(1.0, length_ratio)
    n_samples = int(np.clip(round(SAMPLES * longer), SAMPLES, MAX_SAMPLES))
    agree = max(2, round(AGREE * n_samples / longer))
    fg_idx = np.unique(np.linspace(0.08 * (n_fg - 1), 0.92 * (n_fg - 1), min(n_samples, n_fg)).round().astype(int))
    agree = min(agree, len(fg_idx))
    fg_imgs = {int(i): np.asarray(fg[int(i)]) for i in fg_idx}
    fits = min(bg_size[0] / fg_size[0], bg_size[1] / fg_size[1])  # the region fits at scale >= 1/fits
    quick_subset = np.unique(np.linspace(0, len(pictures.indices) - 1, QUICK_CANDIDATES).round().astype(int))

    def templates(scale: float, samples: Sequence[int]) -> list[np.ndarray] | None:
        out = []
        for i in samples:
            t = template(fg_imgs[int(i)], fg_factor, fg_size, coarse_factor, scale)
            if t is None or t.shape[0] > coarse_h or t.shape[1] > coarse_w:
                return None
            out.append(t)
        return out

    def vote(per_sample: list[tuple[np.ndarray, np.ndarray]], k: int | None = None
             ) -> tuple[float, tuple[int, int], list[int]]:
        """The position where the best ``k`` samples agree best; -1 for a sample that did not agree there.

        The best k, not all: a title card, an inserted shot or fg running past bg's end
        has no counterpart to agree on, and must not outvote the samples that do.
        """
        k = min(k or agree, len(per_sample))
        maps = np.stack([m for m, _ in per_sample])
        votes = np.sort(maps, axis=0)[-k:].mean(axis=0)
        py, px = np.unravel_index(int(np.argmax(votes)), votes.shape)
        at = maps[:, py, px]
        chosen = set(np.argsort(at)[-k:].tolist())
        frames = [int(f[py, px]) if s in chosen else -1 for s, (_, f) in enumerate(per_sample)]
        return float(votes[py, px]), (int(py), int(px)), frames

    # per full scale: the templates and every sample's best maps, which the dense vote reuses
    searched: dict[float, tuple[list[np.ndarray], list[tuple[np.ndarray, np.ndarray]]]] = {}

    def score_at(scale: float, quick: bool = False) -> tuple[float, tuple[int, int], list[int]] | None:
        """The vote at one scale; ``quick`` (the scale scan) uses 3 samples and ~100 bg pictures."""
        samples = fg_idx[::2] if quick else fg_idx
        ts = templates(scale, samples)
        if ts is None:
            return None
        per_sample = pictures.best_of(ts, quick_subset if quick else None)
        if not quick:
            searched[scale] = (ts, per_sample)
        return vote(per_sample, max(2, agree // 2) if quick else agree)

    tried: dict[float, tuple[float, tuple[int, int], list[int]]] = {}
    if fits >= 1.0 - 1e-9 and (r := score_at(1.0)) is not None:
        tried[1.0] = r
    if 1.0 not in tried or (tried[1.0][0] < ACCEPT_UNSCALED and not _placed_apart(searched[1.0][1], tried[1.0][1])):
        # a quick scan over scales, then the best three scored like scale 1 was
        scan = [s for s in SCALES if s * fits >= 1.0 - 1e-9]
        if fits < 1.0:
            scan.append(1.0 / fits)  # fg bigger than bg: the smallest scale at which it fits
        quick = {s: r for s in scan if (r := score_at(s, quick=True)) is not None}
        for s in sorted(quick, key=lambda k: quick[k][0], reverse=True)[:3]:
            if (r := score_at(s)) is not None:
                tried[s] = r
    if not tried:
        raise NotFoundError("fg cannot be placed inside bg at any scale from 0.5 to 2")
    best_scale = max(tried, key=lambda s: tried[s][0])
    if 1.0 in tried and tried[1.0][0] >= tried[best_scale][0] - 0.02:
        best_scale = 1.0  # prefer the plain crop when it fits as well
    if stride > 2:
        tried[best_scale] = _dense_vote(bg, *searched[best_scale], stride, shrink, tried[best_scale], vote)
    score, (py, px), bg_best_list = tried[best_scale]
    elsewhere = _elsewhere(searched[best_scale][1], (py, px)) if best_scale in searched else 0
    start = Geometry(px * coarse_factor[0], py * coarse_factor[1], best_scale)
    agreed = [(int(i), j) for i, j in zip(fg_idx, bg_best_list, strict=True) if j >= 0]
    geom = _refine_location(bg, bg_work_factor, fg_imgs, fg_factor, fg_size, [i for i, _ in agreed],
                            [j for _, j in agreed], start, radius=int(math.ceil(shrink)) + 2,
                            scale_search=best_scale != 1.0)
    return Located(geom, score, tuple(j for _, j in agreed), tuple(i for i, _ in agreed), elsewhere)


def _placed_apart(per_sample: list[tuple[np.ndarray, np.ndarray]], at: tuple[int, int]) -> bool:
    """Every sample matches well at scale 1, only not at one place (a reframed fg): no scale scan needed."""
    own = [float(m.max()) for m, _ in per_sample]
    return min(own) >= ACCEPT_UNSCALED and _elsewhere(per_sample, at) >= 2


def _elsewhere(per_sample: list[tuple[np.ndarray, np.ndarray]], at: tuple[int, int]) -> int:
    """Samples whose own best place matches well and clearly better than the voted one.

    In a fixed placement every sample matches at the voted place (a wrong-time bg
    picture may match elsewhere nearly as well during a pan, but never clearly
    better); a sample of a reframed shot matches there poorly and well elsewhere.
    """
    count = 0
    for m, _ in per_sample:
        own, there = float(m.max()), float(m[at])
        if own >= FOUND_ELSEWHERE and there < own - ELSEWHERE_MARGIN:
            count += 1
    return count


def _dense_vote(bg: FrameSource, ts: list[np.ndarray], searched: list[tuple[np.ndarray, np.ndarray]],
                stride: int, shrink: float, coarse: tuple[float, tuple[int, int], list[int]], vote):
    """The vote again, each sample now against bg pictures near its best coarse ones, a few frames apart.

    With a thousand pictures spread over an hour, the picture nearest a sample's
    moment can be seconds away from it; the position is usually already right,
    but the evidence (and so the score and each sample's best frame) is weak.
    ``searched``: each sample's best NCC and frame per position from the coarse
    search at this scale (searching the coarse pictures again, a template at a
    time, was half of locating a 10-minute pair), ``ts`` the templates it used.
    """
    step = max(1, stride // 8)
    per_sample = []
    for t, (m, f) in zip(ts, searched, strict=True):
        # the sample's best pictures anywhere in the frame, not only at the voted position
        order = np.argsort(-m, axis=None)
        frames: list[int] = []
        for flat in order:
            frame = int(f.flat[flat])
            if all(abs(frame - g) > stride for g in frames):
                frames.append(frame)
            if len(frames) == DENSE_TOP:
                break
        near = np.unique(np.concatenate([np.arange(g - stride, g + stride + 1, step) for g in frames]))
        near = near[(near >= 0) & (near < len(bg))]
        per_sample.append(Pictures(bg, near, shrink).best(t))
    dense = vote(per_sample)
    return dense if dense[0] >= coarse[0] else coarse


def _refine_location(bg: FrameSource, bg_factor: tuple[float, float], fg_imgs: dict[int, np.ndarray],
                     fg_factor: tuple[float, float], fg_size: tuple[int, int], fg_idx: Sequence[int],
                     bg_best: Sequence[int], start: Geometry, *, radius: int,
                     scale_search: bool) -> Geometry:
    """Whole-pixel search at working size around the coarse answer (and scale within +-6%).

    The same vote as the coarse search: each sample's best NCC over nearby bg
    frames, averaged over samples, per position.
    """
    n_bg = len(bg)
    bg_h, bg_w = bg.shape[1:]
    near = {j: read_frames(bg, np.arange(max(0, j - 2), min(n_bg, j + 3))) for j in set(bg_best)}
    scales = [start.scale * (1 + 0.015 * k) for k in range(-4, 5)] if scale_search else [start.scale]
    best: tuple[float, Geometry] = (-2.0, start)
    for scale in scales:
        votes = None
        for i, j in zip(fg_idx, bg_best, strict=True):
            t = template(fg_imgs[int(i)], fg_factor, fg_size, bg_factor, scale)
            if t is None:
                t = fg_imgs[int(i)].astype(np.float32)  # fg is already at (or below) working size
            th, tw = t.shape
            x0 = max(0, int(round(start.x / bg_factor[0])) - radius)
            y0 = max(0, int(round(start.y / bg_factor[1])) - radius)
            x1 = min(bg_w, x0 + tw + 2 * radius)
            y1 = min(bg_h, y0 + th + 2 * radius)
            if x1 - x0 < tw or y1 - y0 < th:
                votes = None
                break
            m = ncc_map(near[j][:, y0:y1, x0:x1], t).max(axis=0)
            votes = m if votes is None else votes + m
        if votes is None:
            continue
        py, px = np.unravel_index(int(np.argmax(votes)), votes.shape)
        score = float(votes[py, px]) / len(fg_idx)
        if score > best[0]:
            best = (score, Geometry((x0 + px) * bg_factor[0], (y0 + py) * bg_factor[1], scale))
    return best[1]
