"""The ELBO and its parts, per image, in nats.

    ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z)),   z = mu + sigma * eps,  eps ~ N(0, I)

The expectation is estimated with one reparameterised sample (Kingma & Welling 2014, eq. 7);
the KL between q = N(mu, sigma^2) and p = N(0, 1) is in closed form, per latent dimension
(ibid., Appendix B):  KL = 0.5 * (mu^2 + sigma^2 - 1 - log sigma^2).  Both the draw of z and the KL
are the posterior's own (`vae.posterior.DiagonalGaussian.sample` and `.kl`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vae.models import VAE
from vae.posterior import DiagonalGaussian, kl_to_standard_normal  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class ELBOParts:
    """One batch's ELBO terms, per image in nats.

    recon: (N,) the reconstruction term -log p(x|z); kl: (N,) KL(q(z|x) || p(z));
    kl_per_dim: (N, D) the KL split over latent dimensions; total: (N,) recon + kl = -ELBO.
    posterior: q(z|x) of the batch, z: (N, D) the code that was decoded, and decoded: (N, C, H, W) what
    `VAE.decode` gave for it, so a caller that also needs mu, sigma, z or the picture
    (`VAE.images_from_decoded`) reads them here instead of encoding or decoding again.
    """

    recon: torch.Tensor
    kl: torch.Tensor
    kl_per_dim: torch.Tensor
    posterior: DiagonalGaussian | None = None
    z: torch.Tensor | None = None
    decoded: torch.Tensor | None = None

    @property
    def total(self) -> torch.Tensor:
        return self.recon + self.kl

    def loss(self, beta: float = 1.0) -> torch.Tensor:
        """The training objective, batch mean of recon + beta * KL (beta = 1 is the negative ELBO)."""
        return (self.recon + beta * self.kl).mean()


def reconstruction_nll_per_pixel(decoded: torch.Tensor, x: torch.Tensor, likelihood: str,
                                 gaussian_sigma: float = 0.1) -> torch.Tensor:
    """-log p(x_i|z) of every pixel value, shaped like x (N, C, H, W), in nats.

    decoded holds `VAE.decode` output: Bernoulli logits, or Gaussian means with a fixed sigma.
    """
    if likelihood == "bernoulli":
        return F.binary_cross_entropy_with_logits(decoded, x, reduction="none")
    if likelihood == "gaussian":
        return 0.5 * ((x - decoded) / gaussian_sigma).pow(2) + math.log(gaussian_sigma) + 0.5 * math.log(2 * math.pi)
    raise ValueError(f"unknown likelihood {likelihood!r}")


def reconstruction_nll(decoded: torch.Tensor, x: torch.Tensor, likelihood: str,
                       gaussian_sigma: float = 0.1) -> torch.Tensor:
    """-log p(x|z) per image, (N,), in nats, summed over pixels (see reconstruction_nll_per_pixel)."""
    return reconstruction_nll_per_pixel(decoded, x, likelihood, gaussian_sigma).flatten(1).sum(1)


def elbo_parts(model: VAE, x: torch.Tensor, sample: bool = True, generator: torch.Generator | None = None) -> ELBOParts:
    """ELBO terms for images x (N, C, H, W) in [0, 1].

    sample=True estimates E_q with one reparameterised draw from `generator` (training, evaluation);
    sample=False decodes the posterior mean (a deterministic score, e.g. for an upload).
    The parts carry the posterior and the decoded z.
    """
    posterior = model.encode(x)
    z = posterior.sample(generator=generator) if sample else posterior.mode()
    decoded = model.decode(z)
    recon = reconstruction_nll(decoded, x, model.config.likelihood, model.config.gaussian_sigma)
    kl_per_dim = posterior.kl()
    return ELBOParts(recon=recon, kl=kl_per_dim.sum(1), kl_per_dim=kl_per_dim, posterior=posterior, z=z,
                     decoded=decoded)


def kl_weight(beta: float, warmup_epochs: float, epochs_done: float) -> float:
    """beta, ramped linearly from 0 over the first `warmup_epochs` epochs (0 means no warm-up)."""
    if warmup_epochs <= 0:
        return beta
    return beta * min(1.0, epochs_done / warmup_epochs)
