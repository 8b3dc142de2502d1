"""The evaluation-only fast decoder and the IWAE built on it give the plain model's numbers (within 1e-4 nats)."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal

from vae import likelihood
from vae.configs import ModelConfig
from vae.fast_decoder import FastDecoder, log_px_given_z
from vae.losses import elbo_parts, reconstruction_nll
from vae.models import VAE

NATS = 1e-4  # the fast path may differ from the plain one by float rounding only...
RELATIVE = 1e-6  # ...which for a Gaussian's thousands of nats is float32's own step (about 5e-4 at 4,000)


def close(fast: torch.Tensor, plain: torch.Tensor) -> bool:
    return bool(((fast - plain).abs() <= NATS + RELATIVE * plain.abs()).all())


def a_model(arch: str, image_shape=(1, 8, 8), latent_dim: int = 3, likelihood_name: str = "bernoulli",
            conv_channels=(4, 8), seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    model = VAE(ModelConfig(arch=arch, image_shape=image_shape, latent_dim=latent_dim, hidden=(16,),
                            conv_channels=conv_channels, likelihood=likelihood_name)).eval()
    with torch.no_grad():
        for parameter in model.decoder.parameters():
            parameter.mul_(3.0)  # logits of several units: rounding differences would show
    return model


def some_images(model: VAE, n: int, seed: int = 1) -> torch.Tensor:
    return torch.rand((n, *model.config.image_shape), generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def plain_log_weights(model: VAE, x: torch.Tensor, samples: int, seed: int) -> torch.Tensor:
    """The IWAE's log weights as first written: the model's decoder, the loss module's -log p(x|z) on x
    repeated for every sample, and the Normals' own log densities; all draws in one call."""
    posterior = model.encode(x)
    prior = Normal(torch.zeros_like(posterior.mean), torch.ones_like(posterior.stddev))
    eps = torch.randn((samples, *posterior.mean.shape), generator=torch.Generator().manual_seed(seed))
    z = posterior.mean + posterior.stddev * eps
    decoded = model.decode(z.flatten(0, 1))
    targets = x.expand(samples, *x.shape).flatten(0, 1)
    log_px_given_z = -reconstruction_nll(decoded, targets, model.config.likelihood, model.config.gaussian_sigma).view(samples, len(x))
    return log_px_given_z + prior.log_prob(z).sum(-1) - posterior.log_prob(z).sum(-1)


CONV_LAYOUTS = [  # image shape, conv channels: one, two and three transposed convolutions; grey and colour
    ((1, 8, 8), (4, 8)),
    ((1, 28, 28), (32, 64)),
    ((3, 16, 16), (4,)),
    ((3, 32, 32), (4, 8, 8)),
]


@pytest.mark.parametrize("image_shape, conv_channels", CONV_LAYOUTS)
def test_fast_decoder_gives_the_conv_models_own_logits(image_shape, conv_channels):
    model = a_model("conv", image_shape, conv_channels=conv_channels)
    z = torch.randn((37, model.config.latent_dim), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        plain = model.decode_logits(z)
        fast = FastDecoder(model).decode_logits(z)
    assert fast.shape == plain.shape
    assert torch.allclose(fast, plain, atol=1e-4, rtol=0)


def test_fast_decoder_runs_an_mlp_decoder_as_it_is():
    model = a_model("mlp")
    z = torch.randn((5, 3), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(FastDecoder(model).decode_logits(z), model.decode_logits(z))


@pytest.mark.parametrize("likelihood_name", ["bernoulli", "gaussian"])
def test_fused_log_likelihood_equals_the_loss_modules_per_sample(likelihood_name):
    logits = 4 * torch.randn((6, 2, 20), generator=torch.Generator().manual_seed(3))
    x = torch.rand((2, 20), generator=torch.Generator().manual_seed(4))
    decoded = logits if likelihood_name == "bernoulli" else torch.sigmoid(logits)  # what VAE.decode returns
    plain = -reconstruction_nll(decoded.reshape(12, 20), x.expand(6, 2, 20).reshape(12, 20), likelihood_name).view(6, 2)
    assert close(log_px_given_z(logits, x, likelihood_name), plain)
    with pytest.raises(ValueError, match="unknown likelihood"):
        log_px_given_z(logits, x, "poisson")


@pytest.mark.parametrize("arch, likelihood_name, image_shape, conv_channels", [
    ("conv", "bernoulli", (1, 8, 8), (4, 8)),
    ("conv", "gaussian", (3, 16, 16), (4, 8)),
    ("mlp", "bernoulli", (1, 8, 8), (4, 8)),
    ("mlp", "gaussian", (1, 8, 8), (4, 8)),
])
def test_log_weights_and_iwae_equal_the_plain_computation_per_image(arch, likelihood_name, image_shape, conv_channels):
    model = a_model(arch, image_shape, likelihood_name=likelihood_name, conv_channels=conv_channels)
    x = some_images(model, 4)
    samples = 50  # 200 codes: one chunk, so both draw eps in one call
    fast = likelihood.log_weights(model, x, samples, seed=5)
    plain = plain_log_weights(model, x, samples, seed=5)
    assert fast.shape == (samples, 4)
    assert close(fast, plain)
    fast_bound, _ = likelihood.iwae_from_log_weights(fast)
    plain_bound, _ = likelihood.iwae_from_log_weights(plain)
    assert close(fast_bound, plain_bound)


def test_iwae_over_several_chunks_equals_the_plain_computation_for_a_16_dimensional_conv_model():
    # 600 draws of 5 images are three chunks of decodes; with 16 latent dimensions every chunk's draws
    # continue the one-call sequence of the CPU generator, so the plain computation sees the same z.
    model = a_model("conv", (1, 28, 28), latent_dim=16, conv_channels=(32, 64))
    x = some_images(model, 5)
    fast, _ = likelihood.iwae_from_log_weights(likelihood.log_weights(model, x, 600, seed=7))
    plain, _ = likelihood.iwae_from_log_weights(plain_log_weights(model, x, 600, seed=7))
    assert close(fast, plain)


@pytest.mark.parametrize("arch", ["conv", "mlp"])
def test_the_ladders_elbo_row_is_elbo_parts_on_the_same_draws(arch):
    model = a_model(arch)
    x = some_images(model, 1)
    ladder = likelihood.bound_ladder(model, x, ks=(1, 10), seed=3)
    with torch.no_grad():
        parts = elbo_parts(model, x.expand(10, *x.shape[1:]), generator=torch.Generator().manual_seed(4))
    assert ladder[0].name == "ELBO"
    assert abs(ladder[0].value - -float(parts.total.mean())) < NATS


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")
def test_the_fast_path_runs_on_cuda():
    model = a_model("conv", (1, 28, 28), latent_dim=16, conv_channels=(32, 64)).to("cuda")
    z = torch.randn((50, 16), generator=torch.Generator().manual_seed(3)).to("cuda")
    with torch.no_grad():  # cuDNN may use TF32 for the model's own convolutions: a loose comparison
        assert torch.allclose(FastDecoder(model).decode_logits(z), model.decode_logits(z), atol=0.05, rtol=0.01)
    result = likelihood.iwae(model, some_images(model, 3), 200, seed=2)
    assert result.bound.device.type == "cpu" and result.bound.shape == (3,) and torch.isfinite(result.bound).all()
