"""UMAP over codes with identical twins (shapes: a square at r and r + 180 degrees is the same picture)."""

from __future__ import annotations

import numpy as np

from vae.projection import LatentCodes, compute_projection


def test_umap_maps_codes_that_repeat_including_more_twins_than_neighbours():
    rng = np.random.default_rng(0)
    distinct = rng.normal(size=(60, 4)).astype(np.float32)
    mu = np.concatenate([np.repeat(distinct, 3, axis=0), np.repeat(distinct[:1], 20, axis=0)])  # 20 > 15 neighbours + 1
    n = len(mu)
    codes = LatentCodes(mu=mu, sigma=np.ones_like(mu), labels=np.zeros(n, dtype=np.int64), split=np.zeros(n, dtype=np.int8),
                        index=np.arange(n), neg_elbo=np.zeros(n, dtype=np.float32), total_images=n)
    projection = compute_projection(codes, "umap")  # before the fix: "Non-zero distances from samples to themselves!"
    assert projection.coords.shape == (n, 2) and np.isfinite(projection.coords).all()
    # twins land together
    twins = projection.coords[3:6]
    assert np.linalg.norm(twins - twins.mean(0), axis=1).max() < np.ptp(projection.coords, axis=0).max() / 10
