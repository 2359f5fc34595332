"""Pooling frame embeddings into time bins."""

from __future__ import annotations

import numpy as np

from vidkompy.alignment.bins import Bins, pool


def test_a_bin_is_the_unit_mean_of_its_frames_and_an_empty_bin_repeats_the_one_before():
    rng = np.random.default_rng(6)
    pts = np.r_[np.arange(0.0, 1.0, 0.04), np.arange(1.5, 2.5, 0.04)]  # nothing in [1.0, 1.5): bin 2 is empty
    emb = rng.normal(size=(len(pts), 40)).astype(np.float32)
    bins = Bins.covering(pts, 0.5)
    chunks = [(pts[a : a + 7], emb[a : a + 7]) for a in range(0, len(pts), 7)]  # bins straddle the chunks
    pooled = pool(chunks, bins)
    assert pooled.shape == (bins.n, 40)
    for q in range(bins.n):
        members = (pts >= q * 0.5 - 1e-9) & (pts < (q + 1) * 0.5 - 1e-9)
        if q == 2:
            assert not members.any()
            np.testing.assert_allclose(pooled[2], pooled[1])
            continue
        mean = emb[members].astype(np.float64).sum(axis=0)
        np.testing.assert_allclose(pooled[q], mean / np.linalg.norm(mean), atol=1e-6)
