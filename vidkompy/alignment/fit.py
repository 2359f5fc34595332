"""Sub-pixel geometry: phase correlation for a start, then a joint fit of x, y and scale.

In slow footage one frame of motion changes a match score about as much as
0.2-0.65 px of misregistration, so the geometry must reach about 0.1 px for
frames to come out exact (measured, see docs/architecture.md). Phase
correlation gives a sub-pixel translation from one pair; the joint
Gauss-Newton fit over a dozen pairs spread in time finishes x, y and scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np

from vidkompy.alignment.resample import GridMap, antialias, axis_samples, grid_map, rescale, sample_grid
from vidkompy.models import Geometry


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
    bg_blur: float = 0.0  # extra blur of bg (sigma, bg full pixels): see `vidkompy.alignment.spatial.softness`


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


def _around(bg: np.ndarray, gm: GridMap, shape: tuple[int, int], margin: int, factor: tuple[float, float]
            ) -> tuple[np.ndarray, tuple[float, float]]:
    """The part of a bg picture under fg (and ``margin`` pixels around it), and its origin in bg full pixels.

    Blurring and differentiating a whole 1080p bg picture for a region half its
    size doubled the full-size fit's cost; the fit moves a fraction of a pixel,
    far inside the margin.
    """
    h, w = shape
    y0 = max(0, int(np.floor(gm.cy)) - margin)
    y1 = min(bg.shape[0], int(np.ceil(gm.cy + gm.ay * (h - 1))) + margin + 2)
    x0 = max(0, int(np.floor(gm.cx)) - margin)
    x1 = min(bg.shape[1], int(np.ceil(gm.cx + gm.ax * (w - 1))) + margin + 2)
    if y1 - y0 < 4 or x1 - x0 < 4:
        return bg, (0.0, 0.0)
    return bg[y0:y1, x0:x1], (x0 * factor[0], y0 * factor[1])


def fit_geometry(pairs: list[FitPair], start: Geometry, *, fit_scale: bool = True, levels: int = 3,
                 finest: int = 0, max_iter: int = 25, tol: float = 0.005) -> Geometry:
    """Gauss-Newton fit of x, y and scale over matched pairs (Lucas & Kanade 1981).

    The model of a fg pixel is a*B + b + c*B^2 of the bg sample under it, per pair,
    which absorbs gain, offset and gamma; Huber weights keep occlusions and
    compression noise from pulling; coarse-to-fine over ``levels`` octaves,
    down to octave ``finest`` (1: fg at half size, a quarter of the pixels).
    Stops when a step moves less than ``tol`` bg pixels.
    """
    x, y, s = start.x, start.y, start.scale
    for level in range(levels - 1, finest - 1, -1):
        prepared = []
        for p in pairs:
            f = rescale(p.fg, 2**level) if level else p.fg.astype(np.float32)
            off = (p.fg.shape[1] / f.shape[1] * p.fg_factor[0], p.fg.shape[0] / f.shape[0] * p.fg_factor[1])
            gm = grid_map(x, y, s, off, p.bg_factor)
            bg, origin = _around(p.bg, gm, f.shape, margin=int(8 + 4 * gm.shrink), factor=p.bg_factor)
            b = antialias(bg, gm.shrink, p.bg_blur / p.bg_factor[0])
            gy, gx = np.gradient(b)
            prepared.append((f, off, p.bg_factor, np.stack([b, gx, gy]), origin))
        for _ in range(max_iter):
            h_mat = np.zeros((3, 3))
            g_vec = np.zeros(3)
            for f, off, bgf, planes, (ox, oy) in prepared:
                gm = grid_map(x - ox, y - oy, s, off, bgf)
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
