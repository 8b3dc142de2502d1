"""vae.inspect (numbers, picking test images, reconstructions) and vae.charts figures."""

from __future__ import annotations

import pytest
import torch

from conftest import SHIPPED
from vae import charts
from vae.checkpoints import load_checkpoint
from vae.datasets import load_dataset
from vae.history import read_history
from vae.inspect import SelectionError, final_numbers, pick_test_images, reconstruct
from vae.losses import elbo_parts, reconstruction_nll


@pytest.fixture(scope="module")
def digits_model():
    return load_checkpoint(SHIPPED / "digits-mlp-z2")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_final_numbers_are_the_last_epochs_test_terms(digits_model):
    numbers = final_numbers(read_history(digits_model.history))
    test = digits_model.history[-1]["test"]
    assert numbers.recon == test["recon"] and numbers.kl == test["kl"]
    assert numbers.elbo == pytest.approx(-test["total"])
    assert final_numbers([]) is None


def test_picking_test_images_random_by_label_and_by_index(digits):
    assert pick_test_images(digits, "random", 5, seed=3) == pick_test_images(digits, "random", 5, seed=3)
    assert pick_test_images(digits, "random", 5, seed=3) != pick_test_images(digits, "random", 5, seed=4)
    sevens = pick_test_images(digits, "label", 6, label=7)
    assert len(sevens) == 6 and all(int(digits.test_labels[i]) == 7 for i in sevens)
    assert pick_test_images(digits, "index", indices="4, 0 9") == [4, 0, 9]
    with pytest.raises(SelectionError, match="outside"):
        pick_test_images(digits, "index", indices=[len(digits.test_images)])
    with pytest.raises(SelectionError, match="whole numbers"):
        pick_test_images(digits, "index", indices="1, two")
    with pytest.raises(SelectionError, match="at least one"):
        pick_test_images(digits, "index", indices="")


def test_each_reconstruction_carries_its_own_score(digits_model, digits):
    model, images = digits_model.model, digits.test_images[:4]
    result = reconstruct(model, images, samples=3, seed=1)
    assert result.mean.shape == images.shape and result.samples.shape == (3, *images.shape)
    with torch.no_grad():
        mean_parts = elbo_parts(model, images, sample=False)
        # The score under a sampled picture is -log p(x|z) of exactly the code that drew it.
        generator = torch.Generator().manual_seed(1)
        posterior = model.encode(images)
        z = posterior.mean + posterior.stddev * torch.randn(posterior.mean.shape, generator=generator)
        first_sample_recon = reconstruction_nll(model.decode(z), images, model.config.likelihood)
    torch.testing.assert_close(result.mean_recon, mean_parts.recon)
    torch.testing.assert_close(result.kl, mean_parts.kl)
    torch.testing.assert_close(result.sample_recon[0], first_sample_recon)
    torch.testing.assert_close(result.samples[0], model.decode_images(z))
    assert reconstruct(model, images, samples=0).samples.shape == (0, *images.shape)


def test_loss_curves_draw_train_and_test_with_kl_on_its_own_panel(digits_model):
    history = digits_model.history
    figure = charts.loss_curves_figure(read_history(history), step_trace=[{"epoch": 0.5, "recon": 30.0, "kl": 1.0, "total": 31.0}])
    by_name = {trace.name: trace for trace in figure.data}
    assert {"−ELBO, train", "recon, test", "KL, train", "KL, test"} <= set(by_name)
    assert list(by_name["KL, test"].y) == [record["test"]["kl"] for record in history]
    assert by_name["KL, test"].xaxis == "x2" and by_name["recon, test"].xaxis == "x"
    one_epoch = charts.loss_curves_figure(read_history(history[:1]))
    assert all(len(trace.x) == 1 and "markers" in trace.mode for trace in one_epoch.data)


def test_kl_bars_mark_collapsed_dimensions():
    figure = charts.kl_per_dim_figure([2.0, 0.01, 0.5])
    assert charts.active_dimensions([2.0, 0.01, 0.5]) == [True, False, True]
    assert list(figure.data[0].customdata) == ["active", "collapsed", "active"]
    assert "2 of 3 dimensions active" in figure.layout.title.text
    assert list(figure.data[0].x) == ["z1", "z2", "z3"]  # named as everywhere else: z1..zD
    # One threshold for every page (vae.history.COLLAPSED_KL_NATS = 0.1 nats).
    assert charts.active_dimensions([0.05, 0.2]) == [False, True]
