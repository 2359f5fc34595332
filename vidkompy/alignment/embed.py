"""Frame embeddings for matching in time: MobileNetV3-Small, or one weight-free fallback.

Pretrained weights are used only when they are on disk (a path the user gives,
``$VIDKOMPY_MOBILENET_WEIGHTS``, or torchvision's cache); nothing is ever
downloaded. Without them the fallback runs: normalised multi-scale luma and
gradient thumbnails, which inside the located region put 98-100% of frames
on the right bg frame in our measurements. One path, one fallback.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from vidkompy.alignment.region import RegionGrid
from vidkompy.alignment.resample import rescale
from vidkompy.alignment.source import FrameSource
from vidkompy.device import CPU, Device
from vidkompy.digest import file_sha256
from vidkompy.errors import InputError
from vidkompy.parallel import WORKERS, ordered_map
from vidkompy.progress import stage

log = logging.getLogger("vidkompy")

WEIGHTS_ENV = "VIDKOMPY_MOBILENET_WEIGHTS"
EMBED_WIDTH = 64  # px, region thumbnails for the first frame path
WINDOW = 64  # pictures resampled and embedded at once
FALLBACK_ID = "luma-gradient-v1"
_announced: set[str] = set()
_announce_lock = threading.Lock()
# torchvision's file name for MobileNet_V3_Small_Weights.IMAGENET1K_V1; spelled out so that
# looking for it does not cost a torch import (about 3 s) on runs that use the fallback.
TORCHVISION_FILE = "mobilenet_v3_small-047dcff4.pth"


def _torch_hub_dir() -> Path:
    """torch.hub.get_dir() without importing torch: $TORCH_HOME/hub or ~/.cache/torch/hub."""
    if os.environ.get("TORCH_HOME"):
        return Path(os.environ["TORCH_HOME"]) / "hub"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "torch" / "hub"


def find_weights(explicit: str | os.PathLike | None = None) -> Path | None:
    """The first MobileNetV3-Small weight file that exists: given path, env, torchvision's cache."""
    candidates: list[Path] = []
    if explicit:
        candidates.append(Path(explicit))
    if os.environ.get(WEIGHTS_ENV):
        candidates.append(Path(os.environ[WEIGHTS_ENV]))
    candidates.append(_torch_hub_dir() / "checkpoints" / TORCHVISION_FILE)
    return next((c for c in candidates if c.is_file()), None)


def _announce(message: str) -> None:
    with _announce_lock:  # both embed stages start at once, in two threads
        if message in _announced:
            return
        _announced.add(message)
    log.info(message)


class FrameEmbedder:
    """Turns (N, h, w) gray region thumbnails into (N, d) L2-normalised float32 vectors."""

    def __init__(self, device: Device = CPU, weights: str | os.PathLike | None = None, batch_size: int = 128):
        self.device = device
        self.batch_size = batch_size
        if weights and not Path(weights).is_file():
            # a mistyped path must not quietly become another embedding (and another cache key)
            raise InputError(weights, "no such MobileNetV3-Small weights file")
        self.weights = find_weights(weights)
        self._model = None
        if self.weights is not None:
            self.model_id = f"mobilenet_v3_small:{file_sha256(self.weights)[:16]}"
            _announce(f"embedding with MobileNetV3-Small ({self.weights})")
        else:
            self.model_id = FALLBACK_ID
            _announce("no MobileNetV3-Small weights on disk: embedding with the weight-free fallback")

    def embed(self, frames: np.ndarray) -> np.ndarray:
        """(N, d) unit vectors of (N, h, w) gray pictures."""
        out = []
        for start in range(0, len(frames), self.batch_size):
            batch = frames[start : start + self.batch_size]
            out.append(fallback_embedding(batch) if self.weights is None else self._mobilenet(batch))
        return np.concatenate(out) if out else np.zeros((0, 1), np.float32)

    def embed_video(self, frames: FrameSource, to_grid: Callable[[np.ndarray], np.ndarray], *, start: int = 0,
                    block: int = 256, label: str = "embed") -> Iterator[np.ndarray]:
        """The embeddings of ``frames[start:]``, a block at a time, each picture mapped by ``to_grid`` first.

        Windows of a block are resampled and embedded on a few threads (the
        fallback is NumPy work); MobileNet runs on one, as torch spreads each of
        its operations over the cores itself.
        """
        def window(span: tuple[int, int]) -> tuple[int, np.ndarray]:
            return span[1], self.embed(to_grid(np.asarray(frames[span[0] : span[1]])))

        n = len(frames)
        # windows, not whole blocks: float32 pictures of a whole block took 200 MB more at its peak
        spans = ((c, min(a + block, n, c + WINDOW)) for a in range(start, n, block)
                 for c in range(a, min(a + block, n), WINDOW))
        workers = WORKERS if self.weights is None else 1
        with stage(label, n) as bar:
            bar.advance(start)
            parts, done = [], start
            for stop, emb in ordered_map(window, spans, workers):
                parts.append(emb)
                if stop == n or (stop - start) % block == 0:  # a block complete: written as one
                    bar.advance(stop - done)
                    done = stop
                    yield np.concatenate(parts)
                    parts = []

    def _load(self):
        import torch
        from torchvision.models import mobilenet_v3_small

        model = mobilenet_v3_small(weights=None)
        state = torch.load(self.weights, map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        model = model.features.eval().to(self.device.torch_device)
        self._model = model
        return model

    def _mobilenet(self, frames: np.ndarray) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        model = self._model or self._load()
        mean = torch.tensor([0.485, 0.456, 0.406], device=self.device.torch_device).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], device=self.device.torch_device).view(1, 3, 1, 1)
        out = []
        with torch.inference_mode():
            for start in range(0, len(frames), self.batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(frames[start : start + self.batch_size], np.float32))
                x = batch.to(self.device.torch_device).unsqueeze(1) / 255.0
                h, w = x.shape[-2:]
                if w < 160:  # MobileNet downsamples 32x: give it enough pixels to see texture
                    x = F.interpolate(x, size=(max(32, round(h * 160 / w)), 160), mode="bilinear",
                                      align_corners=False)
                x = (x.expand(-1, 3, -1, -1) - mean) / std
                feats = model(x).mean(dim=(2, 3))
                out.append(F.normalize(feats, dim=1).float().cpu().numpy())
        return np.concatenate(out).astype(np.float32)


def _unit_rows(a: np.ndarray) -> np.ndarray:
    a = a.reshape(len(a), -1).astype(np.float32)
    a -= a.mean(axis=1, keepdims=True)
    return a / (np.linalg.norm(a, axis=1, keepdims=True) + 1e-6)


def fallback_embedding(frames: np.ndarray) -> np.ndarray:
    """Normalised luma at two scales plus gradient magnitude, concatenated and L2-normalised.

    Zero-mean, unit-norm blocks make it blind to gain and offset (fg is often
    graded differently); the gradient block keeps edges when colours shift.
    """
    f = np.asarray(frames, dtype=np.float32)
    half = rescale(f, 2.0)
    quarter = rescale(f, 4.0)
    gy, gx = np.gradient(half, axis=(1, 2))
    parts = [_unit_rows(half), _unit_rows(quarter), _unit_rows(np.hypot(gx, gy))]
    emb = np.concatenate(parts, axis=1)
    return (emb / (np.linalg.norm(emb, axis=1, keepdims=True) + 1e-6)).astype(np.float32)


def embedding_grid(fg_size: tuple[int, int], width: int = EMBED_WIDTH) -> RegionGrid:
    """The small grid over fg on which both videos are embedded (64 px wide by default)."""
    fw, fh = fg_size
    w = min(width, fw)
    h = max(1, round(fh * w / fw))
    return RegionGrid((h, w), (fw / w, fh / h))
