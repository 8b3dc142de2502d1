"""vae.explain (one image's forward trace, the architecture diagram) and the upload's typicality by IWAE."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import SHIPPED
from vae import explain
from vae.checkpoints import load_checkpoint
from vae.configs import ModelConfig
from vae.losses import elbo_parts
from vae.models import VAE
from vae.upload_report import typicality_percentile

SHIPPED_NAMES = sorted(p.name for p in SHIPPED.iterdir() if p.is_dir() and not p.name.startswith("."))


@pytest.fixture(scope="module", params=SHIPPED_NAMES)
def shipped(request):
    checkpoint = load_checkpoint(SHIPPED / request.param)
    x = torch.rand((1, *checkpoint.model.config.image_shape), generator=torch.Generator().manual_seed(0))
    return checkpoint.model, x


def test_the_trace_is_the_elbo_the_app_computes_for_the_same_draw(shipped):
    model, x = shipped
    trace = explain.forward_trace(model, x, seed=11)
    with torch.no_grad():
        parts = elbo_parts(model, x, generator=torch.Generator().manual_seed(11))
    assert trace.recon == pytest.approx(float(parts.recon[0]), rel=1e-5)
    assert trace.kl == pytest.approx(float(parts.kl[0]), rel=1e-5)
    assert np.allclose(trace.z, trace.mu + trace.sigma * trace.eps, atol=1e-6)
    assert np.allclose(trace.sigma, np.exp(0.5 * trace.log_var), rtol=1e-5)
    assert -trace.log_px_per_pixel.sum() == pytest.approx(trace.recon, rel=1e-5)
    assert trace.kl_per_dim.sum() == pytest.approx(trace.kl, rel=1e-5)
    assert trace.objective(1.0) == pytest.approx(-trace.elbo)
    assert trace.objective(0.0) == pytest.approx(trace.recon)


def test_a_new_epsilon_changes_z_and_the_decoded_image_and_the_same_seed_repeats(shipped):
    model, x = shipped
    first, again, other = (explain.forward_trace(model, x, seed) for seed in (1, 1, 2))
    assert np.array_equal(first.eps, again.eps) and np.array_equal(first.decoded, again.decoded)
    assert not np.allclose(first.eps, other.eps) and not np.allclose(first.z, other.z)
    assert not np.allclose(first.decoded, other.decoded)
    assert np.array_equal(first.mu, other.mu) and first.kl == other.kl  # the posterior does not depend on epsilon


def test_the_architecture_is_read_from_the_model(shipped):
    model, _ = shipped
    layers = explain.architecture(model)
    encoder = [layer for layer in layers if layer.part == "encoder"]
    decoder = [layer for layer in layers if layer.part == "decoder"]
    assert encoder[-1].output_shape == (2 * model.config.latent_dim,)  # mu and log sigma^2
    assert decoder[-1].output_shape == tuple(model.config.image_shape)
    assert len(layers) == len(model.encoder) + len(model.decoder)
    dot = explain.architecture_dot(model, current="z")
    assert dot.startswith("digraph") and dot.count("Linear") == sum(layer.kind == "Linear" for layer in layers)
    assert 'z [label="z = μ + σ·ε' in dot and "penwidth=3" in dot.split("z [label=")[1].split("\n")[0]


def test_another_architecture_draws_its_own_layers():
    model = VAE(ModelConfig(arch="conv", image_shape=(3, 32, 32), latent_dim=5, hidden=(64,), conv_channels=(8, 16, 24)))
    dot = explain.architecture_dot(model)
    assert dot.count("Conv2d ") == 3 and dot.count("ConvTranspose2d") == 3 and "3×32×32" in dot


def test_typicality_ranks_against_the_test_images_estimates():
    reference = np.array([10.0, 20.0, 30.0, 40.0])
    assert typicality_percentile(35.0, reference) == 75.0
    assert typicality_percentile(5.0, reference) == 0.0
