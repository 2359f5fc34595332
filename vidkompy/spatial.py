"""Where fg sits in bg: coarse location, sub-pixel phase correlation, joint fit.

The order matters and was measured on real footage (see DESIGN.md): a crop
cannot be matched in time against whole bg frames, so fg is first *located* in
bg by normalised cross-correlation of a few fg frames against many bg
thumbnails; frames are matched inside that region; then x, y and scale are
fitted jointly to sub-pixel accuracy on matched pairs. In slow footage one
frame of motion changes a match score about as much as 0.2-0.65 px of
misregistration, so the fit must reach about 0.1 px for frames to come out exact.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from types import ModuleType

import numpy as np
from scipy import fft as sfft

from vidkompy.models import Geometry
from vidkompy.resample import antialias, axis_samples, grid_map, rescale, sample_grid, valid_mask, warp

log = logging.getLogger("vidkompy")

COARSE_WIDTH = 160  # px, the bg width of the coarse search
MIN_TEMPLATE = 8  # px, below this a template carries too little texture to match
ACCEPT_UNSCALED = 0.80  # NCC at which scale 1 is taken without a scale scan
SCALES = tuple(float(s) for s in np.geomspace(0.5, 2.0, 25))


@dataclass(frozen=True)
class Located:
    geometry: Geometry
    score: float  # median best NCC of the sampled fg frames
    bg_frames: tuple[int, ...]  # best bg frame of each sampled fg frame
    fg_frames: tuple[int, ...]


# -- normalised cross-correlation -------------------------------------------------------------


class NccSearch:
    """Normalised cross-correlation of templates against a fixed stack of images.

    Computed in the Fourier domain with window statistics from summed-area tables
    (Lewis, "Fast Normalized Cross-Correlation", 1995). The images' spectra and
    tables are computed once and reused for every template: the scale scan
    correlates dozens of templates with the same bg thumbnails.
    """

    def __init__(self, images: np.ndarray):
        stack = np.asarray(images, dtype=np.float32)
        self.single = stack.ndim == 2
        self.images = stack[None] if self.single else stack
        self.shape = self.images.shape[1:]
        self.spectra = sfft.rfft2(self.images, s=self.shape, workers=-1)
        pad = [(0, 0), (1, 0), (1, 0)]
        self.sum1 = np.pad(np.cumsum(np.cumsum(self.images, axis=1, dtype=np.float64), axis=2), pad)
        self.sum2 = np.pad(np.cumsum(np.cumsum(self.images.astype(np.float64) ** 2, axis=1), axis=2), pad)

    @staticmethod
    def _box(c: np.ndarray, th: int, tw: int) -> np.ndarray:
        return c[:, th:, tw:] - c[:, :-th, tw:] - c[:, th:, :-tw] + c[:, :-th, :-tw]

    def __call__(self, template: np.ndarray) -> np.ndarray:
        """(N, H - th + 1, W - tw + 1) NCC in [-1, 1] (2-D for a single image)."""
        h, w = self.shape
        th, tw = template.shape
        t = template.astype(np.float64) - template.mean()
        t_norm = math.sqrt(float((t * t).sum())) or 1.0
        f_t = sfft.rfft2(t.astype(np.float32), s=self.shape, workers=-1)
        corr = sfft.irfft2(self.spectra * np.conj(f_t), s=self.shape, workers=-1)[:, : h - th + 1, : w - tw + 1]
        s1 = self._box(self.sum1, th, tw)
        var = np.maximum(self._box(self.sum2, th, tw) - s1 * s1 / (th * tw), 0.0)
        out = np.clip(corr / (np.sqrt(var) * t_norm + 1e-6), -1.0, 1.0).astype(np.float32)
        return out[0] if self.single else out


def ncc_map(images: np.ndarray, template: np.ndarray) -> np.ndarray:
    """NCC of one template at every valid position of each image (see `NccSearch`)."""
    return NccSearch(images)(template)


def _template(fg_img: np.ndarray, fg_factor: tuple[float, float], fg_size: tuple[int, int],
              bg_factor: tuple[float, float], scale: float) -> np.ndarray | None:
    """fg resampled to the pixel size of a bg level, as it would appear there at ``scale``."""
    out_factor = (bg_factor[0] * scale, bg_factor[1] * scale)
    tw = int(round(fg_size[0] / out_factor[0]))
    th = int(round(fg_size[1] / out_factor[1]))
    if min(tw, th) < MIN_TEMPLATE:
        return None
    return warp(fg_img, grid_map(0.0, 0.0, 1.0, out_factor, fg_factor), (th, tw))


def _best(ncc: np.ndarray) -> tuple[float, int, int, int]:
    flat = int(np.argmax(ncc))
    j, py, px = np.unravel_index(flat, ncc.shape)
    return float(ncc.flat[flat]), int(j), int(py), int(px)


# -- locate ------------------------------------------------------------------------------------


def locate(
    bg_frames: np.ndarray,
    bg_size: tuple[int, int],
    fg_frames: np.ndarray,
    fg_size: tuple[int, int],
    *,
    n_samples: int = 5,
    max_candidates: int = 400,
) -> Located:
    """Find fg's region in bg to the working pixel: coarse search, then refinement.

    ``bg_frames`` and ``fg_frames`` are gray working copies ((N, h, w) uint8) of
    videos whose full sizes are ``bg_size`` and ``fg_size`` (width, height).
    Scale 1 is tried first and kept when it matches well; otherwise a scale scan
    from 0.5 to 2 runs at the coarse level. Raises ValueError if fg cannot be
    placed inside bg at any scale.
    """
    bg_work_factor = (bg_size[0] / bg_frames.shape[2], bg_size[1] / bg_frames.shape[1])
    fg_factor = (fg_size[0] / fg_frames.shape[2], fg_size[1] / fg_frames.shape[1])
    n_bg, n_fg = len(bg_frames), len(fg_frames)
    stride = max(1 if n_bg < 60 else 2, math.ceil(n_bg / max_candidates))
    cand = np.arange(0, n_bg, stride)
    shrink = max(1.0, bg_frames.shape[2] / COARSE_WIDTH)
    coarse = rescale(bg_frames[cand], shrink) if shrink > 1 else bg_frames[cand].astype(np.float32)
    coarse_factor = (bg_size[0] / coarse.shape[2], bg_size[1] / coarse.shape[1])
    fg_idx = np.unique(np.linspace(0.08 * (n_fg - 1), 0.92 * (n_fg - 1), min(n_samples, n_fg)).round().astype(int))

    fits = min(bg_size[0] / fg_size[0], bg_size[1] / fg_size[1])  # largest region fits at scale >= 1/fits

    quick_step = max(1, math.ceil(len(cand) / 100))
    searchers: dict[int, NccSearch] = {}

    def score_at(scale: float, quick: bool = False) -> tuple[float, tuple[int, int], list[int]] | None:
        """Vote across samples: the position where every sample finds *some* bg frame that matches.

        During a pan a fg frame also matches a wrong-time bg frame at a shifted
        position (0.98-0.999 NCC on real footage); only the true position is right
        for all samples at once. ``quick`` (for the scale scan) uses 3 samples and
        at most ~100 bg candidates.
        """
        per_position, per_frame = [], []
        samples = fg_idx[:: 2] if quick else fg_idx
        step = quick_step if quick else 1
        for i in samples:
            t = _template(fg_frames[i], fg_factor, fg_size, coarse_factor, scale)
            if t is None or t.shape[0] > coarse.shape[1] or t.shape[1] > coarse.shape[2]:
                return None
            if step not in searchers:
                searchers[step] = NccSearch(coarse[::step])
            ncc = searchers[step](t)
            per_position.append(ncc.max(axis=0))
            per_frame.append(ncc)
        votes = np.mean(per_position, axis=0)
        py, px = np.unravel_index(int(np.argmax(votes)), votes.shape)
        frames = [int(cand[::step][int(np.argmax(n[:, py, px]))]) for n in per_frame]
        return float(np.median([m[py, px] for m in per_position])), (int(py), int(px)), frames

    tried: dict[float, tuple[float, tuple[int, int], list[int]]] = {}
    if fits >= 1.0 - 1e-9:
        r = score_at(1.0)
        if r is not None:
            tried[1.0] = r
    if 1.0 not in tried or tried[1.0][0] < ACCEPT_UNSCALED:
        # a quick scan over scales, then the best three scored like scale 1 was
        scan = [s for s in SCALES if s * fits >= 1.0 - 1e-9]
        if fits < 1.0:
            scan.append(1.0 / fits)  # fg bigger than bg: the smallest scale at which it fits
        quick = {s: r for s in scan if (r := score_at(s, quick=True)) is not None}
        for s in sorted(quick, key=lambda k: quick[k][0], reverse=True)[:3]:
            r = score_at(s)
            if r is not None:
                tried[s] = r
    if not tried:
        raise ValueError("fg cannot be placed inside bg at any scale from 0.5 to 2")
    best_scale = max(tried, key=lambda s: tried[s][0])
    if 1.0 in tried and tried[1.0][0] >= tried[best_scale][0] - 0.02:
        best_scale = 1.0  # prefer the plain crop when it fits as well
    score, (py, px), bg_best_list = tried[best_scale]
    start = Geometry(px * coarse_factor[0], py * coarse_factor[1], best_scale)
    bg_best = tuple(bg_best_list)
    geom = _refine_location(bg_frames, bg_work_factor, fg_frames, fg_factor, fg_size, fg_idx, bg_best,
                            start, radius=int(math.ceil(shrink)) + 2, scale_search=best_scale != 1.0)
    return Located(geom, score, bg_best, tuple(int(i) for i in fg_idx))


def _refine_location(bg_frames: np.ndarray, bg_factor: tuple[float, float], fg_frames: np.ndarray,
                     fg_factor: tuple[float, float], fg_size: tuple[int, int], fg_idx: np.ndarray,
                     bg_best: tuple[int, ...], start: Geometry, *, radius: int,
                     scale_search: bool) -> Geometry:
    """Whole-pixel search at working size around the coarse answer (and scale within +-6%).

    The same vote as the coarse search: each sample's best NCC over nearby bg
    frames, averaged over samples, per position.
    """
    n_bg = len(bg_frames)
    scales = [start.scale * (1 + 0.015 * k) for k in range(-4, 5)] if scale_search else [start.scale]
    best: tuple[float, Geometry] = (-2.0, start)
    for scale in scales:
        votes = None
        for i, j in zip(fg_idx, bg_best, strict=True):
            t = _template(fg_frames[i], fg_factor, fg_size, bg_factor, scale)
            if t is None:
                t = fg_frames[i].astype(np.float32)  # fg is already at (or below) working size
            th, tw = t.shape
            x0 = max(0, int(round(start.x / bg_factor[0])) - radius)
            y0 = max(0, int(round(start.y / bg_factor[1])) - radius)
            x1 = min(bg_frames.shape[2], x0 + tw + 2 * radius)
            y1 = min(bg_frames.shape[1], y0 + th + 2 * radius)
            if x1 - x0 < tw or y1 - y0 < th:
                votes = None
                break
            frames = bg_frames[max(0, j - 2) : min(n_bg, j + 3), y0:y1, x0:x1]
            m = ncc_map(frames, t).max(axis=0)
            votes = m if votes is None else votes + m
        if votes is None:
            continue
        py, px = np.unravel_index(int(np.argmax(votes)), votes.shape)
        score = float(votes[py, px]) / len(fg_idx)
        if score > best[0]:
            best = (score, Geometry((x0 + px) * bg_factor[0], (y0 + py) * bg_factor[1], scale))
    return best[1]


# -- phase correlation -------------------------------------------------------------------------


def phase_correlate(reference: np.ndarray, moving: np.ndarray, *, xp: ModuleType = np) -> tuple[float, float, float]:
    """Sub-pixel shift (dy, dx) that moves ``reference`` onto ``moving``, and the peak ratio.

    The cross-power spectrum is normalised so only phase is compared (Kuglin &
    Hines 1975); the peak is refined by a parabola through its neighbours. The
    peak ratio (peak / next-best peak away from it) is a confidence: near 1 for
    unrelated pictures. ``xp`` is numpy or cupy (cuFFT).
    """
    a = xp.asarray(reference, dtype=xp.float32)
    b = xp.asarray(moving, dtype=xp.float32)
    win = xp.asarray(np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1])).astype(np.float32))
    fa = xp.fft.fft2((a - a.mean()) * win)
    fb = xp.fft.fft2((b - b.mean()) * win)
    cross = fb * xp.conj(fa)
    cross /= xp.abs(cross) + 1e-9
    surface = xp.fft.ifft2(cross).real
    surface = np.asarray(surface.get() if hasattr(surface, "get") else surface)
    h, w = surface.shape
    py, px = np.unravel_index(int(np.argmax(surface)), surface.shape)
    peak = float(surface[py, px])

    def vertex(m: float, c: float, p: float) -> float:
        d = m - 2 * c + p
        return 0.0 if abs(d) < 1e-12 else 0.5 * (m - p) / d

    dy = py + vertex(surface[(py - 1) % h, px], peak, surface[(py + 1) % h, px])
    dx = px + vertex(surface[py, (px - 1) % w], peak, surface[py, (px + 1) % w])
    dy = dy - h if dy > h / 2 else dy
    dx = dx - w if dx > w / 2 else dx
    masked = surface.copy()
    masked[np.ix_([(py + k) % h for k in range(-2, 3)], [(px + k) % w for k in range(-2, 3)])] = -np.inf
    second = float(masked.max())
    ratio = peak / second if second > 1e-9 else float("inf")
    return float(dy), float(dx), ratio


# -- joint sub-pixel fit -----------------------------------------------------------------------


@dataclass(frozen=True)
class FitPair:
    """One matched pair: a fg picture on a grid over fg, a bg picture with its pixel size."""

    fg: np.ndarray  # (h, w)
    fg_factor: tuple[float, float]  # fg full pixels per fg picture pixel
    bg: np.ndarray  # (H, W)
    bg_factor: tuple[float, float]  # bg full pixels per bg picture pixel


def _huber_weights(r: np.ndarray) -> np.ndarray:
    sigma = 1.4826 * float(np.median(np.abs(r))) + 1e-6  # residuals are centred by the brightness fit
    k = 1.345 * sigma
    a = np.abs(r)
    return np.where(a <= k, 1.0, k / np.maximum(a, 1e-12))


def _solve_brightness(bn: np.ndarray, fv: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """Weighted least squares of fv ~ a*bn + b + c*bn^2 by its 3x3 normal equations."""
    basis = np.stack([bn.ravel(), np.ones(bn.size, bn.dtype), (bn * bn).ravel()])
    wb = basis if w is None else basis * w.ravel()
    m = wb @ basis.T
    v = wb @ fv.ravel()
    try:
        return np.linalg.solve(m + 1e-9 * np.eye(3), v)
    except np.linalg.LinAlgError:
        return np.array([1.0, 0.0, 0.0])


def fit_geometry(pairs: list[FitPair], start: Geometry, *, fit_scale: bool = True, levels: int = 3,
                 max_iter: int = 25, tol: float = 0.005) -> Geometry:
    """Gauss-Newton fit of x, y and scale over matched pairs (Lucas & Kanade 1981).

    The model of a fg pixel is a*B + b + c*B^2 of the bg sample under it, per pair,
    which absorbs gain, offset and gamma; Huber weights keep occlusions and
    compression noise from pulling; coarse-to-fine over ``levels`` octaves.
    Stops when a step moves less than ``tol`` bg pixels.
    """
    x, y, s = start.x, start.y, start.scale
    for level in range(levels - 1, -1, -1):
        prepared = []
        for p in pairs:
            f = rescale(p.fg, 2**level) if level else p.fg.astype(np.float32)
            off = (p.fg.shape[1] / f.shape[1] * p.fg_factor[0], p.fg.shape[0] / f.shape[0] * p.fg_factor[1])
            b = antialias(p.bg, grid_map(x, y, s, off, p.bg_factor).shrink)
            gy, gx = np.gradient(b)
            prepared.append((f, off, p.bg_factor, np.stack([b, gx, gy])))
        for _ in range(max_iter):
            h_mat = np.zeros((3, 3))
            g_vec = np.zeros(3)
            for f, off, bgf, planes in prepared:
                gm = grid_map(x, y, s, off, bgf)
                hgt, wid = f.shape
                # grid pixels whose sample lies inside bg, less a one-pixel frame of compression edge
                v = np.arange(hgt)[1:-1]
                u = np.arange(wid)[1:-1]
                v = v[(gm.ay * v + gm.cy >= 0) & (gm.ay * v + gm.cy <= planes.shape[1] - 1)]
                u = u[(gm.ax * u + gm.cx >= 0) & (gm.ax * u + gm.cx <= planes.shape[2] - 1)]
                if len(v) < 4 or len(u) < 4:
                    continue
                ys = axis_samples(gm.ay, gm.cy + gm.ay * v[0], len(v), planes.shape[1])
                xs = axis_samples(gm.ax, gm.cx + gm.ax * u[0], len(u), planes.shape[2])
                bv, bx, by = sample_grid(planes, ys, xs)
                fv = f[v[0] : v[-1] + 1, u[0] : u[-1] + 1]
                bn = bv / 255.0
                coef = _solve_brightness(bn, fv, None)
                r = fv - (coef[0] * bn + coef[1] + coef[2] * bn * bn)
                wts = _huber_weights(r)
                coef = _solve_brightness(bn, fv, wts)
                r = fv - (coef[0] * bn + coef[1] + coef[2] * bn * bn)
                gain = (coef[0] + 2 * coef[2] * bn) / 255.0
                dxs = (-((u + 0.5) * off[0]) / (s * s * bgf[0]))[None, :]
                dys = (-((v + 0.5) * off[1]) / (s * s * bgf[1]))[:, None]
                jx = gain * bx / bgf[0]
                jy = gain * by / bgf[1]
                js = gain * (bx * dxs + by * dys) if fit_scale else np.zeros_like(jx)
                cols = (jx, jy, js)
                for i_ in range(3):
                    wi = wts * cols[i_]
                    g_vec[i_] += float(np.sum(wi * r))
                    for j_ in range(i_, 3):
                        h_mat[i_, j_] += float(np.sum(wi * cols[j_]))
            h_mat = np.triu(h_mat) + np.triu(h_mat, 1).T
            if not fit_scale:
                h_mat[2, 2] = 1.0
            try:
                step = np.linalg.solve(h_mat + 1e-9 * np.eye(3), g_vec)
            except np.linalg.LinAlgError:
                break
            x, y, s = x + step[0], y + step[1], s + step[2]
            if max(abs(step[0]), abs(step[1]), abs(step[2]) * 1000) < tol * 2**level:
                break
    return Geometry(float(x), float(y), float(s))


# -- frame match inside the region -------------------------------------------------------------


@dataclass(frozen=True)
class RegionGrid:
    """The grid on which fg and the bg region under it are compared, and both stacks on it."""

    shape: tuple[int, int]
    fg_factor: tuple[float, float]  # fg full pixels per grid pixel


def comparison_grid(fg_size: tuple[int, int], fg_work_factor: tuple[float, float],
                    bg_work_factor: tuple[float, float], scale: float, max_width: int | None = None) -> RegionGrid:
    """The finest grid that neither picture has to be enlarged for."""
    f = max(fg_work_factor[0], bg_work_factor[0] * scale)
    if max_width:
        f = max(f, fg_size[0] / max_width)
    w = max(1, int(round(fg_size[0] / f)))
    h = max(1, int(round(fg_size[1] / f)))
    return RegionGrid((h, w), (fg_size[0] / w, fg_size[1] / h))


def fg_on_grid(fg_frames: np.ndarray, fg_size: tuple[int, int], grid: RegionGrid) -> np.ndarray:
    fg_factor = (fg_size[0] / fg_frames.shape[2], fg_size[1] / fg_frames.shape[1])
    return warp(fg_frames, grid_map(0.0, 0.0, 1.0, grid.fg_factor, fg_factor), grid.shape)


def bg_on_grid(bg_frames: np.ndarray, bg_size: tuple[int, int], geometry: Geometry,
               grid: RegionGrid, *, blurred: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The bg region under fg, sampled on fg's grid, and the mask of grid pixels inside bg.

    ``blurred``: the frames are already anti-aliased for this sampling step.
    """
    bg_factor = (bg_size[0] / bg_frames.shape[2], bg_size[1] / bg_frames.shape[1])
    gm = grid_map(geometry.x, geometry.y, geometry.scale, grid.fg_factor, bg_factor)
    return warp(bg_frames, gm, grid.shape, blurred=blurred), valid_mask(gm, grid.shape, bg_frames.shape[1:])


def _normalise(stack: np.ndarray, mask: np.ndarray) -> np.ndarray:
    v = stack[:, mask].astype(np.float32)
    v -= v.mean(axis=1, keepdims=True)
    v /= np.linalg.norm(v, axis=1, keepdims=True) + 1e-6
    return v


def band_ncc(fg_grid: np.ndarray, bg_grid: np.ndarray, mask: np.ndarray, lo: np.ndarray, width: int,
             chunk: int = 64) -> np.ndarray:
    """NCC of fg frame i with bg frames lo[i] .. lo[i] + width - 1 (-1 outside bg).

    The band follows a monotonic path, so a chunk of fg frames meets a short run of
    bg frames: one matrix product (BLAS) per chunk instead of a gather per offset.
    """
    fv = _normalise(fg_grid, mask)
    bv = _normalise(bg_grid, mask)
    n_fg, n_bg = len(fv), len(bv)
    out = np.full((n_fg, width), -1.0, dtype=np.float32)
    ks = np.arange(width)
    for a in range(0, n_fg, chunk):
        b = min(n_fg, a + chunk)
        j = lo[a:b, None] + ks[None, :]
        r0, r1 = max(0, int(j.min())), min(n_bg, int(j.max()) + 1)
        if r1 <= r0:
            continue
        block = fv[a:b] @ bv[r0:r1].T
        ok = (j >= r0) & (j < r1)
        rows = np.broadcast_to(np.arange(b - a)[:, None], j.shape)
        out[a:b][ok] = block[rows[ok], j[ok] - r0]
    return out
