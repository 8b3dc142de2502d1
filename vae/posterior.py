"""The posterior q(z|x) of a VAE: one diagonal Gaussian per image, and the one place z is drawn from it.

Shapes: a batch of N images has means and standard deviations (N, D); codes z are (N, D), or
(S, N, D) for S draws each. KL and log densities are in nats.
"""

from __future__ import annotations

import torch
from torch.distributions import Normal


class DiagonalGaussian(Normal):
    """q(z|x) = N(mu, diag(sigma^2)) for a batch: `mean` and `stddev` are (N, D).

    A torch Normal (so `log_prob`, `entropy` and `torch.distributions.kl_divergence` work as usual)
    with the operations a VAE needs, as in diffusers' `DiagonalGaussianDistribution`: `sample` draws
    z by the reparameterisation trick from a given generator, `mode` is mu, `kl` is the closed-form
    KL to the prior N(0, I) per dimension.
    """

    def sample(self, sample_shape: torch.Size | tuple = torch.Size(),
               generator: torch.Generator | None = None) -> torch.Tensor:
        """z = mu + sigma * eps with eps ~ N(0, I) from `generator`: (*sample_shape, N, D).

        The reparameterisation trick (Kingma & Welling 2014, eq. 4): z is a differentiable function of
        mu and sigma, so, unlike torch's `Normal.sample`, gradients flow through it (training uses it).
        The same generator state gives the same z on every call.
        """
        return self.sample_with_noise(sample_shape, generator)[0]

    def sample_with_noise(self, sample_shape: torch.Size | tuple = torch.Size(),
                          generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(z, eps), both (*sample_shape, N, D): `sample`'s draw and the standard normal noise behind it.

        For callers that need eps itself, e.g. log q(z|x) in closed form, where (z - mu) / sigma = eps.
        """
        eps = torch.randn(self._extended_shape(sample_shape), generator=generator, device=self.mean.device)
        return self.mean + self.stddev * eps, eps

    def rsample(self, sample_shape: torch.Size | tuple = torch.Size(),
                generator: torch.Generator | None = None) -> torch.Tensor:
        """The same draw as `sample` (torch's name for a reparameterised sample)."""
        return self.sample(sample_shape, generator)

    def mode(self) -> torch.Tensor:
        """The most likely code, mu (N, D): what a deterministic reconstruction decodes."""
        return self.mean

    def kl(self) -> torch.Tensor:
        """KL(q(z|x) || N(0, I)) per dimension, (N, D), in nats; sum over D for one image's KL.

        Closed form (Kingma & Welling 2014, Appendix B): 0.5 * (mu^2 + sigma^2 - 1 - log sigma^2).
        """
        return kl_to_standard_normal(self)


def kl_to_standard_normal(posterior: Normal) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) per dimension, (N, D), in nats (closed form), for any torch Normal."""
    mu, sigma = posterior.mean, posterior.stddev
    return 0.5 * (mu.pow(2) + sigma.pow(2) - 1.0 - 2.0 * torch.log(sigma))
