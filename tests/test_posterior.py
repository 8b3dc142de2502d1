"""One posterior object: q(z|x) from VAE.encode draws z, gives its mode and its KL, and the ELBO parts
carry it, so training, evaluation and inspection draw the same numbers and encode an image once."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vae import explain, inspect
from vae.losses import elbo_parts, reconstruction_nll
from vae.models import VAE, ModelConfig
from vae.posterior import DiagonalGaussian


@pytest.fixture
def model() -> VAE:
    torch.manual_seed(0)
    return VAE(ModelConfig(image_shape=(1, 8, 8), latent_dim=3, hidden=(16,))).eval()


@pytest.fixture
def images() -> torch.Tensor:
    return torch.rand(5, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def seeded(seed: int = 7) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_encode_returns_the_posterior_a_torch_normal(model, images):
    posterior = model.encode(images)
    assert isinstance(posterior, DiagonalGaussian) and isinstance(posterior, Normal)
    assert posterior.mean.shape == posterior.stddev.shape == (5, 3)
    assert torch.equal(posterior.mode(), posterior.mean)


def test_a_seeded_sample_is_the_reparameterised_formula_written_out(model, images):
    posterior = model.encode(images)
    by_hand = posterior.mean + posterior.stddev * torch.randn((5, 3), generator=seeded())
    assert torch.equal(posterior.sample(generator=seeded()), by_hand)
    assert torch.equal(posterior.rsample(generator=seeded()), by_hand)
    several = posterior.mean + posterior.stddev * torch.randn((4, 5, 3), generator=seeded())
    assert torch.equal(posterior.sample((4,), generator=seeded()), several)
    assert not torch.equal(posterior.sample(generator=seeded(8)), by_hand)


def test_gradients_flow_through_a_sample_to_the_encoder(model, images):
    model.zero_grad()
    model.encode(images).sample(generator=seeded()).pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())


def test_kl_is_the_closed_form_to_the_standard_normal_per_dimension(model, images):
    posterior = model.encode(images)
    prior = Normal(torch.zeros(5, 3), torch.ones(5, 3))
    assert posterior.kl().shape == (5, 3)
    assert torch.allclose(posterior.kl(), kl_divergence(Normal(posterior.mean, posterior.stddev), prior), atol=1e-5)
    z = posterior.sample(generator=seeded())
    assert torch.allclose(posterior.log_prob(z), Normal(posterior.mean, posterior.stddev).log_prob(z))


@pytest.mark.parametrize("sample", [True, False])
def test_the_elbo_parts_carry_the_posterior_and_the_z_they_decoded(model, images, sample):
    parts = elbo_parts(model, images, sample=sample, generator=seeded())
    posterior = model.encode(images)
    assert torch.equal(parts.posterior.mean, posterior.mean) and torch.equal(parts.posterior.stddev, posterior.stddev)
    expected_z = posterior.sample(generator=seeded()) if sample else posterior.mode()
    assert torch.equal(parts.z, expected_z)
    assert torch.equal(parts.recon, reconstruction_nll(model.decode(parts.z), images, "bernoulli"))
    assert torch.equal(parts.kl_per_dim, parts.posterior.kl())


def count_encodes(model: VAE, monkeypatch) -> list:
    calls = []
    real = model.encode
    monkeypatch.setattr(model, "encode", lambda x: calls.append(len(x)) or real(x))
    return calls


def test_reconstructions_and_the_explain_trace_encode_each_image_once(model, images, monkeypatch):
    calls = count_encodes(model, monkeypatch)
    shown = inspect.reconstruct(model, images, samples=3, seed=2)
    assert calls == [5]
    assert shown.samples.shape == (3, 5, 1, 8, 8)
    calls.clear()
    trace = explain.forward_trace(model, images[:1], seed=4)
    assert calls == [1]
    posterior = model.encode(images[:1])
    assert trace.z == pytest.approx((posterior.mean + posterior.stddev * explain.epsilon(model, 4))[0].detach().numpy().astype(float))
