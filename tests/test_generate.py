"""vae.generate: latent dimensions by KL, prior samples, interpolation, the decoder export for the browser."""

from __future__ import annotations

import base64
import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from vae import generate
from vae.history import EpochLosses, EpochRecord
from vae.models import ModelConfig, build_model


def small_model(arch: str = "mlp", latent_dim: int = 3, seed: int = 0):
    torch.manual_seed(seed)
    config = ModelConfig(arch=arch, image_shape=(1, 8, 8), latent_dim=latent_dim, hidden=(16,),
                         conv_channels=(4, 8) if arch == "conv" else ())
    return build_model(config).eval()


def kl_history(*kl_per_epoch):
    """A history whose epochs differ only in their KL per dimension (None: not recorded)."""
    zero = EpochLosses(recon=0.0, kl=0.0, total=0.0)
    return [EpochRecord(epoch=number, train=zero, test=zero, kl_per_dim=kl) for number, kl in enumerate(kl_per_epoch, 1)]


def test_dimensions_are_ordered_by_last_epoch_kl_and_collapsed_ones_marked_unused():
    history = kl_history([9.0, 9.0, 9.0, 9.0], [0.5, 0.004, 2.0, 0.2])
    dims = generate.dimensions_by_kl(4, history)
    assert [d.index for d in dims] == [2, 0, 3, 1]
    assert [d.unused for d in dims] == [False, False, False, True]
    assert dims[0].kl == 2.0
    assert "collapsed" in dims[-1].label and "collapsed" not in dims[0].label


def test_dimensions_keep_natural_order_without_a_usable_history():
    for history in ([], kl_history([1.0]), kl_history(None)):
        dims = generate.dimensions_by_kl(3, history)
        assert [d.index for d in dims] == [0, 1, 2]
        assert not any(d.unused for d in dims) and all(d.kl is None for d in dims)
        assert dims[0].label == "z1"


def test_dimensions_are_named_z1_to_zD_as_the_maths_writes_them():
    dims = generate.dimensions_by_kl(3, kl_history([0.5, 3.0, 1.0]))
    assert [d.label.split(" ·")[0] for d in dims] == ["z2", "z3", "z1"]
    assert [d.name for d in dims] == ["z2", "z3", "z1"]


def test_generate_and_the_kl_charts_share_one_collapse_threshold():
    from vae import charts
    from vae.history import COLLAPSED_KL_NATS

    # Between the two old thresholds (0.01 on Generate, 0.1 on Train and Loss curves) the pages disagreed.
    kl = [0.05, 0.009, 2.0, COLLAPSED_KL_NATS, 0.099, 0.5]
    dims = sorted(generate.dimensions_by_kl(len(kl), kl_history(kl)), key=lambda d: d.index)
    assert [not d.unused for d in dims] == charts.active_dimensions(kl) == [False, False, True, True, False, True]
    assert not hasattr(generate, "UNUSED_KL_NATS")


@pytest.mark.parametrize("kl, expected", [
    ([2.3, 2.9], (0, 1)),  # a 2-D latent is always z1 across and z2 up, whichever carries more KL
    ([0.9, 0.8], (0, 1)),
    ([0.01, 3.0, 0.02, 2.0], (1, 3)),  # the two most informative, the lower index across
    ([0.5, 0.01, 0.02, 2.0], (0, 3)),
])
def test_the_two_dimensions_a_2d_view_starts_on(kl, expected):
    assert generate.default_pair(generate.dimensions_by_kl(len(kl), kl_history(kl))) == expected


def test_prior_codes_repeat_for_a_seed_and_differ_between_seeds():
    assert torch.equal(generate.prior_codes(5, 7, seed=3), generate.prior_codes(5, 7, seed=3))
    assert not torch.equal(generate.prior_codes(5, 7, seed=3), generate.prior_codes(5, 7, seed=4))
    assert generate.prior_codes(5, 7, seed=3).shape == (7, 5)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_prior_samples_are_images_of_the_model_shape(arch):
    images = generate.prior_samples(small_model(arch), 6, seed=1)
    assert images.shape == (6, 1, 8, 8)
    assert images.min() >= 0 and images.max() <= 1
    assert torch.equal(images, generate.prior_samples(small_model(arch), 6, seed=1))


def test_posterior_means_are_the_encoders_means():
    model = small_model()
    images = torch.rand(4, 1, 8, 8)
    with torch.no_grad():
        expected = model.encode(images).mean
    assert torch.allclose(generate.posterior_means(model, images), expected)


def test_decode_accepts_one_code_or_a_batch():
    model = small_model()
    z = torch.randn(2, 3)
    # Float results compare with a tolerance: a batch of one and a batch of two may take different
    # kernels (blocking, SIMD tails) and differ in the last bits on some CPUs.
    torch.testing.assert_close(generate.decode(model, z[0]), generate.decode(model, z)[:1], atol=1e-6, rtol=0)
    assert generate.decode(model, z[0].tolist()).shape == (1, 1, 8, 8)


@pytest.mark.parametrize("method", generate.INTERPOLATIONS)
def test_interpolation_starts_and_ends_at_the_two_codes(method):
    a, b = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([-0.5, 3.0, 1.0])
    path = generate.interpolate(a, b, 7, method)
    assert path.shape == (7, 3)
    assert torch.allclose(path[0], a, atol=1e-6) and torch.allclose(path[-1], b, atol=1e-6)


def test_linear_interpolation_passes_through_the_midpoint_and_shrinks_the_norm():
    a, b = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 2.0])
    path = generate.interpolate(a, b, 3, "linear")
    assert torch.allclose(path[1], torch.tensor([1.0, 1.0]))
    assert generate.code_norms(path)[1] < 2.0 - 0.5


def test_spherical_interpolation_keeps_the_norm_of_equal_length_ends():
    a, b = torch.tensor([2.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, -2.0])
    norms = generate.code_norms(generate.interpolate(a, b, 9, "spherical"))
    assert torch.allclose(norms, torch.full((9,), 2.0), atol=1e-5)


def test_spherical_interpolation_of_parallel_codes_falls_back_to_linear():
    a, b = torch.tensor([1.0, 1.0]), torch.tensor([2.0, 2.0])
    assert torch.allclose(generate.interpolate(a, b, 5, "spherical"), generate.interpolate(a, b, 5, "linear"))
    zero = torch.zeros(2)
    assert torch.isfinite(generate.interpolate(zero, b, 5, "spherical")).all()


def test_interpolation_refuses_bad_arguments():
    a = torch.zeros(3)
    with pytest.raises(ValueError, match="method"):
        generate.interpolate(a, a, 5, "cubic")
    with pytest.raises(ValueError, match="2 steps"):
        generate.interpolate(a, a, 1)
    with pytest.raises(ValueError, match="differ in length"):
        generate.interpolate(a, torch.zeros(4), 5)


def test_default_interpolation_ends_differ_in_label():
    assert generate.contrasting_pair(torch.tensor([0, 0, 0, 7, 1])) == (0, 3)
    assert generate.contrasting_pair(torch.tensor([2, 2, 2])) == (0, 1)
    assert generate.contrasting_pair(None) == (0, 1)


def test_typical_norm_is_square_root_of_the_dimension():
    assert generate.typical_norm(16) == 4.0
    assert math.isclose(generate.code_norms(torch.full((1, 4), 0.5))[0].item(), 1.0)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_browser_decoder_carries_every_decoder_tensor_exactly(arch):
    model = small_model(arch)
    exported = generate.browser_decoder(model)
    weights = np.frombuffer(base64.b64decode(exported.weights), dtype="<f4")
    state = model.state_dict()
    spec = model.decoder_spec()
    assert [op["op"] for op in exported.spec] == [op["op"] for op in spec]
    seen = 0
    for mine, original in zip(exported.spec, spec):
        for field in ("weight", "bias"):
            if field in original:
                offset, length = mine[field]
                tensor = state[original[field]]
                assert length == tensor.numel()
                assert np.array_equal(weights[offset:offset + length], tensor.flatten().numpy())
                seen += length
    assert seen == len(weights)
    data = exported.as_data()
    assert data["latent_dim"] == 3 and data["image_shape"] == [1, 8, 8] and data["key"] == exported.key


def test_browser_decoder_is_made_once_per_model_and_keyed_by_content():
    model, other = small_model(seed=0), small_model(seed=1)
    assert generate.browser_decoder(model) is generate.browser_decoder(model)
    assert generate.browser_decoder(model).key != generate.browser_decoder(other).key
    twin = small_model(seed=0)
    assert generate.browser_decoder(twin).key == generate.browser_decoder(model).key


def test_image_png_is_a_png_of_the_asked_width_without_blur():
    image = torch.zeros(1, 4, 4)
    image[0, 0, 0] = 1.0
    picture = Image.open(io.BytesIO(generate.image_png(image, width=40)))
    assert picture.format == "PNG" and picture.size == (40, 40)
    pixels = np.asarray(picture.convert("L"))
    assert set(np.unique(pixels)) == {0, 255}  # nearest neighbour: no grey from smoothing
    assert pixels[:10, :10].min() == 255 and pixels[10:, :].max() == 0 and pixels[:, 10:].max() == 0
