"""The k nearest bg vectors of every fg vector: FAISS inner product on unit vectors (cosine).

Used on the bins of `vidkompy.alignment.bins` (at most 8192 a video), so the exact
flat index is both the fastest to build and fast to search; a GPU index when
FAISS sees a GPU.
"""

from __future__ import annotations

import numpy as np

from vidkompy.device import CPU, Device

K_NEIGHBOURS = 20


def nearest(bg: np.ndarray, fg: np.ndarray, k: int = K_NEIGHBOURS,
            device: Device = CPU) -> tuple[np.ndarray, np.ndarray]:
    """(idx, sim), each (n_fg, k'), k' = min(k, n_bg), best first."""
    import faiss

    bg = np.ascontiguousarray(bg, dtype=np.float32)
    fg = np.ascontiguousarray(fg, dtype=np.float32)
    k = min(k, len(bg))
    index = faiss.IndexFlatIP(bg.shape[1])
    if device.faiss_gpu:
        resources = faiss.StandardGpuResources()
        index = faiss.index_cpu_to_gpu(resources, 0, index)
    index.add(bg)
    sim, idx = index.search(fg, k)
    return idx.astype(np.int32), sim.astype(np.float32)
