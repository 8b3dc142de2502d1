"""The VAE module: both architectures on every image shape, latent bounds, the model API, decoder_spec."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.distributions import Normal

from vae.models import MAX_LATENT_DIM, VAE, ModelConfig, ModelConfigError, build_model

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 64, 64)]
ARCHS = ["mlp", "conv"]


def images(shape, n=3, seed=0):
    return torch.rand((n, *shape), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("shape", SHAPES)
def test_every_image_shape_round_trips_through_both_architectures(arch, shape):
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch=arch, image_shape=shape, latent_dim=5)).eval()
    x = images(shape)
    with torch.no_grad():
        posterior = model.encode(x)
        assert isinstance(posterior, Normal)
        assert posterior.mean.shape == (3, 5) and posterior.stddev.shape == (3, 5)
        assert (posterior.stddev > 0).all()
        assert model.decode(posterior.mean).shape == (3, *shape)
        recon = model.reconstruct(x)
        samples = model.sample(4)
    assert recon.shape == (3, *shape) and samples.shape == (4, *shape)
    for out in (recon, samples):
        assert out.dtype == torch.float32
        assert out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("latent_dim", [1, 2, 64, MAX_LATENT_DIM])
@pytest.mark.parametrize("arch", ARCHS)
def test_latent_dimensions_from_1_to_128_are_built(arch, latent_dim):
    model = VAE(ModelConfig(arch=arch, image_shape=(1, 8, 8), latent_dim=latent_dim))
    with torch.no_grad():
        assert model.encode(images((1, 8, 8))).mean.shape == (3, latent_dim)
        assert model.sample(2).shape == (2, 1, 8, 8)


@pytest.mark.parametrize("latent_dim", [0, -1, MAX_LATENT_DIM + 1, 2.5, True, "4"])
def test_latent_dimension_outside_1_to_128_is_refused(latent_dim):
    with pytest.raises(ModelConfigError, match="Latent dimension"):
        ModelConfig(latent_dim=latent_dim)


@pytest.mark.parametrize("settings, message", [
    ({"arch": "transformer"}, "Unknown architecture"),
    ({"likelihood": "poisson"}, "Unknown likelihood"),
    ({"image_shape": (28, 28)}, "Image shape"),
    ({"image_shape": (1, 0, 28)}, "Image shape"),
    ({"hidden": (400, 200, 100)}, "hidden layers"),
    ({"hidden": (0,)}, "hidden layers"),
    ({"arch": "conv", "image_shape": (1, 30, 30)}, "multiples of"),
    ({"gaussian_sigma": 0.0}, "sigma"),
])
def test_bad_model_settings_are_refused_with_a_reason(settings, message):
    with pytest.raises(ModelConfigError, match=message):
        ModelConfig(**settings)


def test_conv_refuses_shapes_its_strides_cannot_halve_and_names_the_multiple():
    config = ModelConfig(arch="conv", image_shape=(1, 28, 28))
    step = 2 ** len(config.conv_channels)
    assert 28 % step == 0
    with pytest.raises(ModelConfigError, match=f"multiples of {step}"):
        ModelConfig(arch="conv", image_shape=(1, 28 + step // 2, 28))


def test_a_64_pixel_conv_model_has_the_beta_vae_papers_four_convolutions_down_to_4x4():
    model = build_model(ModelConfig(arch="conv", image_shape=(1, 64, 64), latent_dim=10))
    assert model.config.conv_channels == (32, 32, 64, 64)  # Higgins et al. 2017, Burgess et al. 2018
    assert ModelConfig(arch="conv", image_shape=(3, 32, 32)).conv_channels == (32, 64)  # 32 and below: as before
    x = torch.rand(2, 1, 64, 64)
    assert model.encode(x).mean.shape == (2, 10) and model.reconstruct(x).shape == (2, 1, 64, 64)
    assert sum(p.numel() for p in model.parameters()) < 1_000_000  # a 2.5 MB checkpoint, not 17 MB


def test_config_round_trips_through_a_plain_dict():
    config = ModelConfig(arch="conv", image_shape=(3, 32, 32), latent_dim=7, likelihood="gaussian", hidden=(128,))
    data = config.to_dict()
    assert ModelConfig.from_dict(data) == config
    with pytest.raises(ModelConfigError, match="Unknown model settings"):
        ModelConfig.from_dict({**data, "dropout": 0.5})


def test_bernoulli_decode_gives_logits_and_gaussian_decode_gives_means_in_0_1():
    z = torch.randn(4, 3) * 5
    torch.manual_seed(0)
    bernoulli = VAE(ModelConfig(image_shape=(1, 8, 8), latent_dim=3))
    torch.manual_seed(0)
    gaussian = VAE(ModelConfig(image_shape=(1, 8, 8), latent_dim=3, likelihood="gaussian"))
    with torch.no_grad():
        logits = bernoulli.decode(z)
        means = gaussian.decode(z)
        assert torch.allclose(torch.sigmoid(logits), means)
        assert torch.allclose(bernoulli.decode_images(z), means)
    assert means.min() >= 0 and means.max() <= 1


def test_reconstruct_uses_the_posterior_mean_unless_sampling_is_asked():
    torch.manual_seed(0)
    model = VAE(ModelConfig(image_shape=(1, 8, 8), latent_dim=3)).eval()
    x = images((1, 8, 8))
    with torch.no_grad():
        expected = model.decode_images(model.encode(x).mean)
        assert torch.equal(model.reconstruct(x), expected)
        a = model.reconstruct(x, sample=True, generator=torch.Generator().manual_seed(1))
        b = model.reconstruct(x, sample=True, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, expected)


def test_sample_with_a_generator_is_reproducible():
    model = VAE(ModelConfig(image_shape=(1, 8, 8), latent_dim=3)).eval()
    with torch.no_grad():
        a = model.sample(5, generator=torch.Generator().manual_seed(3))
        b = model.sample(5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_extreme_encoder_output_still_gives_a_finite_posterior():
    model = VAE(ModelConfig(image_shape=(1, 8, 8), latent_dim=2))
    with torch.no_grad():
        model.encoder[-1].bias.fill_(1e4)
        posterior = model.encode(images((1, 8, 8)))
    assert torch.isfinite(posterior.stddev).all() and (posterior.stddev > 0).all()


def run_spec(model: VAE, z: torch.Tensor) -> torch.Tensor:
    """Decode z with nothing but the ops of decoder_spec(), as a decoder in another language would."""
    weights = model.state_dict()
    h = z
    for op in model.decoder_spec():
        kind = op["op"]
        if kind == "linear":
            assert weights[op["weight"]].shape == (op["out"], op["in"])
            h = h @ weights[op["weight"]].T + weights[op["bias"]]
        elif kind == "relu":
            h = h.clamp_min(0)
        elif kind == "reshape":
            h = h.reshape(len(h), *op["shape"])
        elif kind == "conv_transpose2d":
            weight = weights[op["weight"]]
            assert weight.shape == (op["in"], op["out"], op["kernel"], op["kernel"])
            h = torch.nn.functional.conv_transpose2d(h, weight, weights[op["bias"]], stride=op["stride"], padding=op["padding"])
        elif kind == "sigmoid":
            h = torch.sigmoid(h)
        else:
            raise AssertionError(f"unexpected op {kind}")
    return h


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("shape", SHAPES)
def test_decoder_spec_uses_only_the_five_ops_and_reproduces_decode_images(arch, shape):
    torch.manual_seed(1)
    model = VAE(ModelConfig(arch=arch, image_shape=shape, latent_dim=4)).eval()
    spec = model.decoder_spec()
    assert {op["op"] for op in spec} <= {"linear", "relu", "reshape", "conv_transpose2d", "sigmoid"}
    assert spec[-1] == {"op": "sigmoid"}
    if arch == "conv":
        assert any(op["op"] == "conv_transpose2d" for op in spec)
    assert all(isinstance(layer, (nn.Linear, nn.ReLU, nn.Unflatten, nn.ConvTranspose2d)) for layer in model.decoder)
    z = torch.randn(3, 4)
    with torch.no_grad():
        assert torch.allclose(run_spec(model, z), model.decode_images(z), atol=1e-6)


def test_decoder_spec_is_plain_json():
    import json

    spec = VAE(ModelConfig(arch="conv", image_shape=(1, 28, 28), latent_dim=16)).decoder_spec()
    assert json.loads(json.dumps(spec)) == spec


def test_conv_output_starts_at_the_log_odds_of_each_channels_mean_pixel():
    torch.manual_seed(0)
    x = torch.rand(50, 3, 32, 32) * torch.tensor([0.1, 0.5, 0.9])[:, None, None]
    model = VAE(ModelConfig(arch="conv", image_shape=(3, 32, 32), latent_dim=4))
    model.start_output_at_mean(x)
    expected = torch.logit(x.mean(dim=(0, 2, 3)))
    assert torch.allclose(model.decoder[-1].bias, expected, atol=1e-5)
    with torch.no_grad():  # a zero-weight decoder would now draw exactly the mean image
        model.decoder[-1].weight.zero_()
        assert torch.allclose(model.decode_images(torch.zeros(1, 4))[0].mean(dim=(1, 2)), x.mean(dim=(0, 2, 3)), atol=1e-5)


def test_mlp_output_keeps_pytorchs_default_start_and_black_images_stay_finite():
    torch.manual_seed(0)
    model = VAE(ModelConfig(arch="mlp", image_shape=(1, 8, 8), latent_dim=2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.start_output_at_mean(torch.rand(10, 1, 8, 8))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    conv = VAE(ModelConfig(arch="conv", image_shape=(1, 8, 8), latent_dim=2))
    conv.start_output_at_mean(torch.zeros(10, 1, 8, 8))
    assert torch.isfinite(conv.decoder[-1].bias).all()


@pytest.mark.parametrize("arch", ARCHS)
def test_two_dense_layers_are_built_and_described_in_the_spec(arch):
    model = VAE(ModelConfig(arch=arch, image_shape=(1, 28, 28), latent_dim=3, hidden=(512, 128))).eval()
    linears = [op for op in model.decoder_spec() if op["op"] == "linear"]
    assert [(op["in"], op["out"]) for op in linears][:2] == [(3, 128), (128, 512)]
    z = torch.randn(2, 3)
    with torch.no_grad():
        assert torch.allclose(run_spec(model, z), model.decode_images(z), atol=1e-6)
