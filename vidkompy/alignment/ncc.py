"""Normalised cross-correlation of a template at every position of an image stack, via the FFT.

Window statistics come from summed-area tables (Lewis, "Fast Normalized
Cross-Correlation", 1995). The images' spectra and tables are computed once and
reused for every template: locating fg correlates several fg frames, and the
scale scan dozens of templates, with the same bg pictures.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import fft as sfft


class NccSearch:
    """NCC of templates against a fixed stack of images ((N, H, W), or one (H, W) image)."""

    def __init__(self, images: np.ndarray):
        stack = np.asarray(images, dtype=np.float32)
        self.single = stack.ndim == 2
        self.images = stack[None] if self.single else stack
        self.shape = self.images.shape[1:]
        self.spectra = sfft.rfft2(self.images, s=self.shape, workers=-1)
        pad = [(0, 0), (1, 0), (1, 0)]
        self.sum1 = np.pad(np.cumsum(np.cumsum(self.images, axis=1, dtype=np.float64), axis=2), pad)
        self.sum2 = np.pad(np.cumsum(np.cumsum(self.images.astype(np.float64) ** 2, axis=1), axis=2), pad)
        self._norms: dict[tuple[int, int], np.ndarray] = {}  # window norms per template shape: many templates share one

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
        norm = self._norms.get((th, tw))
        if norm is None:
            s1 = self._box(self.sum1, th, tw)
            norm = self._norms[(th, tw)] = np.sqrt(np.maximum(self._box(self.sum2, th, tw) - s1 * s1 / (th * tw), 0.0))
        out = np.clip(corr / (norm * t_norm + 1e-6), -1.0, 1.0).astype(np.float32)
        return out[0] if self.single else out


def ncc_map(images: np.ndarray, template: np.ndarray) -> np.ndarray:
    """NCC of one template at every valid position of each image (see `NccSearch`)."""
    return NccSearch(images)(template)
