"""The grid on which fg and the bg region under it are compared, and picture NCC on it.

fg and the bg region it shows are resampled onto one grid over fg: the finest
that neither picture has to be enlarged for, so neither side invents detail.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vidkompy.alignment.resample import grid_map, valid_mask, warp
from vidkompy.models import Geometry


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
               grid: RegionGrid, *, blurred: bool = False, blur: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The bg region under fg, sampled on fg's grid, and the mask of grid pixels inside bg.

    ``blurred``: the frames are already anti-aliased for this sampling step.
    ``blur``: bg made this much blurrier first (sigma in grid pixels), to look like a softer fg.
    """
    bg_factor = (bg_size[0] / bg_frames.shape[2], bg_size[1] / bg_frames.shape[1])
    gm = grid_map(geometry.x, geometry.y, geometry.scale, grid.fg_factor, bg_factor)
    return (warp(bg_frames, gm, grid.shape, blurred=blurred, blur=blur * gm.shrink),
            valid_mask(gm, grid.shape, bg_frames.shape[1:]))


def normalised(stack: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N, pixels) rows of zero mean and unit norm over the mask: NCC becomes a dot product."""
    v = stack[:, mask].astype(np.float32)
    v -= v.mean(axis=1, keepdims=True)
    v /= np.linalg.norm(v, axis=1, keepdims=True) + 1e-6
    return v
