"""What a model makes of one new image: posterior, reconstruction, ELBO, typicality, neighbours, map place.

The ELBO here decodes the posterior mean (`elbo_parts(sample=False)`), the same deterministic
score the data set's codes were given in `vae.projection.encode_dataset`. That score bounds nothing,
so typicality ranks by the IWAE estimate of -log p(x) instead (K = `vae.likelihood.TYPICALITY_K`,
seeded), the upload's against every test image's with the same K.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vae.likelihood import TYPICALITY_K, iwae, iwae_of_test_split
from vae.losses import elbo_parts
from vae.projection import Placed, Projection, ProjectionStore


@dataclass(frozen=True)
class UploadReport:
    """One image x (1, C, H, W) seen by a model; nats are per image."""

    reconstruction: torch.Tensor  # (1, C, H, W) in [0, 1], decoded from the posterior mean
    mu: np.ndarray  # (D,)
    sigma: np.ndarray  # (D,)
    recon_nats: float
    kl_nats: float
    neg_elbo: float  # the posterior mean decoded: a score, not a bound
    # -IWAE_K: an estimate of -log p(x) from above (a lower bound on log p(x)), what typicality ranks by
    neg_iwae: float
    iwae_k: int
    less_typical_than: float  # % of test images with a better (lower) -IWAE_K
    neighbour_ids: np.ndarray  # (k,) global map ids, nearest first
    neighbour_distances: np.ndarray  # (k,) Euclidean distances between posterior means
    placed: Placed | None  # its place on the map, or None when no projection was given


def typicality_percentile(neg_log_px: float, test_neg_log_px: np.ndarray) -> float:
    """Percent of the test images whose -log p(x) estimate (nats, (N,)) is lower (more typical to the model)
    than `neg_log_px`, the same estimate of one image."""
    return float(100.0 * np.mean(np.asarray(test_neg_log_px) < neg_log_px))


def typicality_sentence(percent: float, noun: str = "images") -> str:
    """E.g. "less typical than 97% of test digits" (or "more typical than ..." below the median)."""
    if percent >= 50:
        return f"less typical than {percent:.0f}% of test {noun}"
    return f"more typical than {100 - percent:.0f}% of test {noun}"


@torch.no_grad()
def describe(store: ProjectionStore, x: torch.Tensor, projection: Projection | None = None, k: int = 5) -> UploadReport:
    """Everything the Upload page shows for one prepared image x (1, C, H, W) in [0, 1]."""
    model = store.model
    codes = store.codes()
    parts = elbo_parts(model, x, sample=False)
    posterior = parts.posterior
    mu = posterior.mean[0].numpy().astype(np.float32)
    ids, distances = codes.nearest(mu[None], k=k)
    neg_elbo = float(parts.total[0])
    neg_iwae = float(-iwae(model, x, TYPICALITY_K).bound[0])
    return UploadReport(
        reconstruction=model.images_from_decoded(parts.decoded), mu=mu,
        sigma=posterior.stddev[0].numpy().astype(np.float32), recon_nats=float(parts.recon[0]),
        kl_nats=float(parts.kl[0]), neg_elbo=neg_elbo, neg_iwae=neg_iwae, iwae_k=TYPICALITY_K,
        less_typical_than=typicality_percentile(neg_iwae, iwae_of_test_split(model, store.dataset.test_images)),
        neighbour_ids=ids[0], neighbour_distances=distances[0],
        placed=store.place(projection, mu[None]) if projection is not None else None,
    )
