"""k nearest bg frames for every fg frame: FAISS inner product on unit vectors (cosine)."""

from __future__ import annotations

import logging

import numpy as np

from vidkompy.device import CPU, Device

log = logging.getLogger("vidkompy")

K_NEIGHBOURS = 20


def nearest_frames(bg_emb: np.ndarray, fg_emb: np.ndarray, k: int = K_NEIGHBOURS,
                   device: Device = CPU) -> tuple[np.ndarray, np.ndarray]:
    """(knn_idx, knn_sim), each (n_fg, k'), k' = min(k, n_bg), best first."""
    import faiss

    bg = np.ascontiguousarray(bg_emb, dtype=np.float32)
    fg = np.ascontiguousarray(fg_emb, dtype=np.float32)
    k = min(k, len(bg))
    index = faiss.IndexFlatIP(bg.shape[1])
    if device.faiss_gpu:
        resources = faiss.StandardGpuResources()
        index = faiss.index_cpu_to_gpu(resources, 0, index)
    index.add(bg)
    sim, idx = index.search(fg, k)
    return idx.astype(np.int32), sim.astype(np.float32)
