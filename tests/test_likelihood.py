"""The IWAE bound, exact log p(x) on a grid, the bound ladder, reference points and the likelihood CLI."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT, SHIPPED
from vae import likelihood
from vae.baselines import bits_per_dim, independent_pixels, likelihood_floor, reference_points
from vae.configs import ModelConfig
from vae.losses import elbo_parts, reconstruction_nll
from vae.models import VAE


def tiny_model(latent_dim: int, seed: int = 0, likelihood_name: str = "bernoulli", decoder_scale: float = 3.0) -> VAE:
    torch.manual_seed(seed)
    model = VAE(ModelConfig(arch="mlp", image_shape=(1, 3, 3), latent_dim=latent_dim, hidden=(8,), likelihood=likelihood_name)).eval()
    with torch.no_grad():
        for parameter in model.decoder.parameters():
            parameter.mul_(decoder_scale)  # a posterior narrower than the prior and off-centre: a real test
    return model


def an_image(seed: int = 1) -> torch.Tensor:
    return torch.rand((1, 1, 3, 3), generator=torch.Generator().manual_seed(seed))


def exact_by_quadrature(model: VAE, x: torch.Tensor, reach: float = 9.0, points: int = 801) -> tuple[float, np.ndarray, np.ndarray]:
    """log p(x), and the posterior's mean and sd, by brute-force integration on a fine grid (the test's own)."""
    axes = [torch.linspace(-reach, reach, points, dtype=torch.float64)] * model.config.latent_dim
    z = torch.stack([g.flatten() for g in torch.meshgrid(*axes, indexing="ij")], 1)
    with torch.no_grad():
        log_joint = (-reconstruction_nll(model.decode(z.float()).double(), x.double().expand(len(z), -1, -1, -1), model.config.likelihood)
                     + torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1))
    cell = (2 * reach / (points - 1)) ** model.config.latent_dim
    log_px = float(torch.logsumexp(log_joint, 0)) + math.log(cell)
    weights = torch.exp(log_joint - torch.logsumexp(log_joint, 0))
    mean = (weights[:, None] * z).sum(0)
    sd = ((weights[:, None] * (z - mean) ** 2).sum(0)).sqrt()
    return log_px, mean.numpy(), sd.numpy()


def set_posterior(model: VAE, mean: np.ndarray, sd: np.ndarray) -> None:
    """Make q(z|x) = N(mean, sd^2) for every x: the proposal the true posterior's own moments suggest."""
    last = model.encoder[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor(np.concatenate([mean, 2 * np.log(sd)]), dtype=torch.float32))


def test_iwae_with_one_sample_is_the_elbo_in_expectation():
    model, x = tiny_model(2), an_image()
    draws = 20000
    iwae_1 = likelihood.log_weights(model, x, draws, seed=3)[:, 0]  # K = 1: each weight is one IWAE_1 draw
    with torch.no_grad():
        elbo = -elbo_parts(model, x.expand(draws, -1, -1, -1), generator=torch.Generator().manual_seed(4)).total
    standard_error = math.sqrt(float(iwae_1.var()) / draws + float(elbo.var()) / draws)
    assert abs(float(iwae_1.mean()) - float(elbo.mean())) < 4 * standard_error
    assert likelihood.iwae(model, x, 1, seed=3).ess.item() == pytest.approx(1.0)


def test_iwae_never_decreases_with_k_on_average():
    model, x = tiny_model(2, seed=2), an_image(5)
    weights = likelihood.log_weights(model, x, 40000, seed=0)[:, 0]
    means = []
    for k in (1, 4, 16, 64, 256, 1000):
        blocks = weights[: (len(weights) // k) * k].view(-1, k).T
        means.append(float(likelihood.iwae_from_log_weights(blocks)[0].mean()))
    assert all(later >= earlier - 1e-3 for earlier, later in zip(means, means[1:])), means
    assert means[-1] > means[0] + 0.01  # it really tightens for this model


@pytest.mark.parametrize("latent_dim", [1, 2])
def test_iwae_agrees_with_exact_integration_for_a_tiny_model(latent_dim):
    model, x = tiny_model(latent_dim, seed=latent_dim), an_image(latent_dim)
    exact, mean, sd = exact_by_quadrature(model, x, points=20001 if latent_dim == 1 else 601)
    set_posterior(model, mean, sd)
    # K = 50,000: the estimate's own noise is then a few thousandths of a nat (at K = 5,000 about 0.01 here).
    estimate = likelihood.iwae(model, x, 50000, seed=0)
    assert float(estimate.bound[0]) == pytest.approx(exact, abs=0.01)
    assert 1000 <= float(estimate.ess[0]) <= 50000  # a proposal this close to p(z|x) wastes few samples


def test_exact_grid_matches_brute_force_and_is_insensitive_to_halving_the_spacing():
    model, x = tiny_model(2, seed=7), an_image(3)
    brute, _, _ = exact_by_quadrature(model, x, points=601)
    grids = [likelihood.exact_log_likelihood(model, x, points=points) for points in (65, 129, 257)]
    for grid in grids:
        assert grid.log_px == pytest.approx(brute, abs=0.01)
        assert grid.edge_mass < 1e-6 and grid.halving_change < 1e-3
        cell = grid.spacing ** 2
        assert float(grid.posterior.sum() * cell) == pytest.approx(1.0, abs=1e-6)  # a density that integrates to 1
    assert grids[1].spacing == pytest.approx(grids[0].spacing / 2, rel=1e-4)
    assert abs(grids[0].log_px - grids[1].log_px) < 1e-3 and abs(grids[1].log_px - grids[2].log_px) < 1e-3


def test_a_too_coarse_grid_is_refined_until_its_checks_pass():
    model, x = tiny_model(2, seed=7), an_image(3)
    coarse = likelihood.exact_log_likelihood(model, x, points=5)
    assert len(coarse.z1) > 5 and coarse.halving_change < 1e-3
    assert coarse.log_px == pytest.approx(likelihood.exact_log_likelihood(model, x).log_px, abs=1e-3)


def test_refining_the_grid_decodes_only_the_new_points_and_gives_the_fresh_grids_answer(monkeypatch):
    model, x = tiny_model(2, seed=7), an_image(3)
    decoded = []
    log_joint = likelihood._log_joint
    monkeypatch.setattr(likelihood, "_log_joint", lambda model, x, z: decoded.append(len(z)) or log_joint(model, x, z))
    refined = likelihood.exact_log_likelihood(model, x, points=5)
    side = len(refined.z1)
    assert side > 5 and sum(decoded) == 71 ** 2 + side ** 2  # the search grid, then each point once
    fresh = likelihood.exact_log_likelihood(model, x, points=side)
    assert refined.log_px == pytest.approx(fresh.log_px, abs=1e-6)
    assert np.allclose(refined.posterior, fresh.posterior, rtol=1e-4, atol=1e-8)


def test_exact_integration_refuses_a_latent_that_is_not_two_dimensional():
    with pytest.raises(ValueError, match="2-D"):
        likelihood.exact_log_likelihood(tiny_model(3), an_image())


def test_log_weights_are_seeded_and_reject_zero_samples():
    model, x = tiny_model(2), an_image()
    assert torch.equal(likelihood.log_weights(model, x, 50, seed=1), likelihood.log_weights(model, x, 50, seed=1))
    assert not torch.equal(likelihood.log_weights(model, x, 50, seed=1), likelihood.log_weights(model, x, 50, seed=2))
    with pytest.raises(ValueError):
        likelihood.log_weights(model, x, 0)


def test_iwae_is_per_image_and_stays_finite_for_images_the_model_finds_very_unlikely():
    model = tiny_model(2)
    images = torch.stack([torch.zeros(1, 3, 3), torch.ones(1, 3, 3), an_image()[0]])
    result = likelihood.iwae(model, images, 100, batch_size=2)
    assert result.bound.shape == (3,) and result.ess.shape == (3,)
    assert torch.isfinite(result.bound).all() and (result.ess >= 1).all() and (result.ess <= 100 + 1e-6).all()


def test_bound_ladder_tightens_towards_exact_on_a_shipped_2d_model():
    from vae.checkpoints import load_checkpoint
    from vae.datasets import load_dataset

    checkpoint = load_checkpoint(SHIPPED / "digits-mlp-z2")
    x = load_dataset("digits").test_images[:1]
    ladder = likelihood.bound_ladder(checkpoint.model, x, ks=(1, 10, 100, 1000))
    exact = likelihood.exact_log_likelihood(checkpoint.model, x).log_px
    assert [rung.name for rung in ladder] == ["ELBO", "IWAE, K = 1", "IWAE, K = 10", "IWAE, K = 100", "IWAE, K = 1,000"]
    assert ladder[0].value == pytest.approx(ladder[1].value, abs=0.1)  # both estimate the ELBO
    assert ladder[-1].value <= exact + 0.01 and ladder[-1].value == pytest.approx(exact, abs=0.05)
    assert ladder[-1].value >= ladder[1].value


def test_reference_points_bracket_a_model():
    rng = torch.Generator().manual_seed(0)
    train, test = torch.rand((50, 1, 4, 4), generator=rng), torch.rand((20, 1, 4, 4), generator=rng)
    floor, baseline = likelihood_floor(test), independent_pixels(train, test)
    assert 0 < floor < baseline
    assert likelihood_floor(test.round()) == pytest.approx(0.0, abs=1e-6)  # black-and-white pixels cost nothing
    assert bits_per_dim(16 * math.log(2), 16) == pytest.approx(1.0)
    points = reference_points(train, test, "bernoulli", 0.1, "mnist5k", [("other", 123.0)])
    names = [point.name for point in points]
    assert names[:3] == ["independent pixels", "floor of the likelihood", "model other"]
    assert not points[-1].comparable and "K = 5,000" in points[-1].what  # published: only with its setting
    assert all(p.comparable for p in reference_points(train, test, "gaussian", 0.1, "digits"))


def test_likelihood_cli_prints_the_test_figures_of_a_shipped_model():
    result = subprocess.run([sys.executable, "-m", "vae.likelihood", str(SHIPPED / "digits-mlp-z2"), "--k", "20", "--limit", "3"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300, env={"OMP_NUM_THREADS": "1", "PATH": ""})
    assert result.returncode == 0, result.stdout + result.stderr
    for line in ("-ELBO", "-IWAE, K = 20", "-log p(x), exact (grid)", "bits/dim", "effective sample size"):
        assert line in result.stdout


def test_likelihood_cli_says_what_is_wrong_with_a_missing_checkpoint(tmp_path):
    result = subprocess.run([sys.executable, "-m", "vae.likelihood", str(tmp_path / "nothing")], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1 and result.stdout.startswith("error:") and "Traceback" not in result.stderr


def test_a_grid_that_cannot_be_made_fine_enough_is_an_error_not_a_number():
    with pytest.raises(likelihood.GridError, match="did not converge"):
        likelihood.exact_log_likelihood(tiny_model(2, seed=7), an_image(3), points=3, max_points=5)
