"""The ELBO parts: KL against its closed form and a Monte-Carlo estimate, the likelihoods, beta and warm-up."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from vae.losses import ELBOParts, elbo_parts, kl_to_standard_normal, kl_weight, reconstruction_nll
from vae.models import VAE, ModelConfig


def posterior(seed=0, n=6, d=4) -> Normal:
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(n, d, generator=g, dtype=torch.float64) * 1.5
    sigma = torch.exp(torch.randn(n, d, generator=g, dtype=torch.float64) * 0.7)
    return Normal(mu, sigma)


def test_kl_matches_the_closed_form_per_dimension():
    q = posterior()
    mu, sigma = q.mean, q.stddev
    by_hand = 0.5 * (mu**2 + sigma**2 - 1 - torch.log(sigma**2))
    kl = kl_to_standard_normal(q)
    assert kl.shape == (6, 4)
    assert torch.allclose(kl, by_hand)
    assert torch.allclose(kl, kl_divergence(q, Normal(torch.zeros_like(mu), torch.ones_like(sigma))))


def test_kl_is_zero_for_the_prior_itself_and_positive_elsewhere():
    assert torch.allclose(kl_to_standard_normal(Normal(torch.zeros(2, 3), torch.ones(2, 3))), torch.zeros(2, 3))
    assert (kl_to_standard_normal(posterior()) > 0).all()


def test_kl_matches_a_monte_carlo_estimate():
    q = posterior(seed=1, n=3, d=2)
    prior = Normal(torch.zeros_like(q.mean), torch.ones_like(q.stddev))
    torch.manual_seed(0)
    z = q.sample(torch.Size([200_000]))
    monte_carlo = (q.log_prob(z) - prior.log_prob(z)).mean(0)  # E_q[log q - log p], per dimension
    closed = kl_to_standard_normal(q)
    # The estimate's standard error is about 0.02 nats here; allow five of them.
    assert torch.allclose(monte_carlo, closed, atol=0.1, rtol=0.02)


def test_bernoulli_term_is_binary_cross_entropy_summed_per_image():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 1, 8, 8, generator=g) * 3
    x = torch.rand(5, 1, 8, 8, generator=g)
    nll = reconstruction_nll(logits, x, "bernoulli")
    assert nll.shape == (5,)
    expected = F.binary_cross_entropy(torch.sigmoid(logits), x, reduction="none").flatten(1).sum(1)
    assert torch.allclose(nll, expected, atol=1e-3)
    assert torch.allclose(nll.sum(), F.binary_cross_entropy_with_logits(logits, x, reduction="sum"))


def test_gaussian_term_is_the_normal_negative_log_likelihood_with_fixed_sigma():
    g = torch.Generator().manual_seed(0)
    means = torch.rand(4, 3, 2, 2, generator=g)
    x = torch.rand(4, 3, 2, 2, generator=g)
    for sigma in (0.1, 0.5):
        nll = reconstruction_nll(means, x, "gaussian", gaussian_sigma=sigma)
        expected = -Normal(means, sigma).log_prob(x).flatten(1).sum(1)
        assert torch.allclose(nll, expected, atol=1e-4)
    perfect = reconstruction_nll(x, x, "gaussian", gaussian_sigma=0.1)
    assert torch.allclose(perfect, torch.full((4,), 12 * (math.log(0.1) + 0.5 * math.log(2 * math.pi))))


def test_unknown_likelihood_is_refused():
    with pytest.raises(ValueError, match="unknown likelihood"):
        reconstruction_nll(torch.zeros(1, 4), torch.zeros(1, 4), "laplace")


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_elbo_parts_are_per_image_nats_and_add_up(likelihood):
    torch.manual_seed(0)
    model = VAE(ModelConfig(image_shape=(1, 8, 8), latent_dim=3, likelihood=likelihood))
    x = torch.rand(7, 1, 8, 8)
    parts = elbo_parts(model, x, sample=False)
    assert isinstance(parts, ELBOParts)
    assert parts.recon.shape == parts.kl.shape == parts.total.shape == (7,)
    assert parts.kl_per_dim.shape == (7, 3)
    assert torch.allclose(parts.kl, parts.kl_per_dim.sum(1))
    assert torch.allclose(parts.total, parts.recon + parts.kl)
    posterior = model.encode(x)
    expected_recon = reconstruction_nll(model.decode(posterior.mean), x, likelihood)
    assert torch.allclose(parts.recon, expected_recon)


def test_elbo_sampling_is_reparameterised_and_reproducible():
    torch.manual_seed(0)
    model = VAE(ModelConfig(image_shape=(1, 8, 8), latent_dim=3))
    x = torch.rand(4, 1, 8, 8)
    a = elbo_parts(model, x, generator=torch.Generator().manual_seed(5))
    b = elbo_parts(model, x, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.recon, b.recon)
    a.loss().backward()
    encoder_grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in encoder_grads)
    assert any(g.abs().sum() > 0 for g in encoder_grads)


def test_beta_weights_only_the_kl_term():
    recon, kl = torch.tensor([10.0, 20.0]), torch.tensor([1.0, 3.0])
    parts = ELBOParts(recon=recon, kl=kl, kl_per_dim=kl[:, None])
    assert parts.loss() == pytest.approx(17.0)  # beta 1: the negative ELBO
    assert parts.loss(beta=4.0) == pytest.approx(15.0 + 8.0)
    assert parts.loss(beta=0.0) == pytest.approx(15.0)
    assert torch.equal(parts.total, recon + kl)  # the reported total is always the beta=1 ELBO


def test_kl_warm_up_ramps_linearly_to_beta():
    assert kl_weight(2.0, 0, 0) == 2.0
    assert kl_weight(2.0, 4, 0) == 0.0
    assert kl_weight(2.0, 4, 1) == pytest.approx(0.5)
    assert kl_weight(2.0, 4, 2.5) == pytest.approx(1.25)
    assert kl_weight(2.0, 4, 4) == 2.0
    assert kl_weight(2.0, 4, 40) == 2.0
