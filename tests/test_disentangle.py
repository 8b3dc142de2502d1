"""MI matrix and MIG (vae/disentangle.py) on codes whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from vae.disentangle import FactorError, discretise, disentanglement, factors_of_rows, mutual_information_matrix


def shapes_like_factors(n: int = 10_000, seed: int = 0) -> dict[str, np.ndarray]:
    """Independent factors like `shapes`': a categorical shape and four graded quantities."""
    rng = np.random.default_rng(seed)
    return {
        "shape": rng.integers(0, 4, n),
        "scale": rng.choice(np.linspace(0.5, 1.0, 5), n).astype(np.float32),
        "rotation": rng.choice(np.arange(10) * 36.0, n).astype(np.float32),
        "x": rng.integers(0, 10, n).astype(np.float32) + 9.5,
        "y": rng.integers(0, 10, n).astype(np.float32) + 9.5,
    }


def test_mig_is_near_one_when_each_factor_has_a_dimension_of_its_own_beside_noise_dimensions():
    factors = shapes_like_factors()
    rng = np.random.default_rng(1)
    noise = rng.normal(size=(10_000, 3))
    mu = np.column_stack([*(np.asarray(v, dtype=float) for v in factors.values()), noise])
    result = disentanglement(mu, factors)
    assert result.mig == pytest.approx(1.0, abs=0.02)
    assert result.mutual_information.shape == (5, 8)
    for k, name in enumerate(factors):
        assert result.factor_of(k) == (name, pytest.approx(1.0, abs=0.02))
    # a noise dimension knows (almost) nothing about any factor
    assert result.normalised[:, 5:].max() < 0.02


def test_mig_is_near_zero_for_codes_independent_of_the_factors():
    factors = shapes_like_factors()
    mu = np.random.default_rng(2).normal(size=(10_000, 6))
    result = disentanglement(mu, factors)
    assert result.mig == pytest.approx(0.0, abs=0.02)
    assert result.normalised.max() < 0.03


def test_mig_is_near_zero_when_two_dimensions_share_a_factor_equally():
    factors = shapes_like_factors()
    x = np.asarray(factors["x"], dtype=float)
    mu = np.column_stack([x, x])  # both dimensions know x completely: no gap
    result = disentanglement(mu, {"x": factors["x"]})
    assert result.gap[0] == pytest.approx(0.0, abs=1e-9)
    assert result.normalised[0] == pytest.approx([1.0, 1.0], abs=1e-6)


def test_mi_matrix_columns_follow_a_permutation_of_the_dimensions():
    factors = shapes_like_factors(n=4_000)
    rng = np.random.default_rng(3)
    mu = np.column_stack([np.asarray(factors["x"]) + rng.normal(scale=2.0, size=4_000),
                          np.asarray(factors["scale"]) * 3 + rng.normal(size=4_000),
                          rng.normal(size=4_000), np.asarray(factors["shape"]) + rng.normal(scale=0.3, size=4_000)])
    order = np.array([2, 0, 3, 1])
    original = mutual_information_matrix(mu, factors)
    permuted = mutual_information_matrix(mu[:, order], factors)
    np.testing.assert_allclose(permuted, original[:, order], atol=1e-12)
    assert disentanglement(mu[:, order], factors).mig == pytest.approx(disentanglement(mu, factors).mig, abs=1e-12)


def test_mi_is_in_nats_and_bounded_by_the_factor_entropy():
    factors = {"coin": np.tile([0, 1], 500)}
    result = disentanglement(np.tile([0.0, 1.0], 500)[:, None], factors)
    assert result.entropy[0] == pytest.approx(np.log(2), rel=1e-9)
    assert result.mutual_information[0, 0] == pytest.approx(np.log(2), rel=1e-9)


def test_no_factors_or_mismatched_lengths_are_refused_with_a_message():
    with pytest.raises(FactorError, match="no ground-truth factors"):
        disentanglement(np.zeros((5, 2)), {})
    with pytest.raises(FactorError, match="3 values for 5 codes"):
        disentanglement(np.zeros((5, 2)), {"x": np.arange(3)})


def test_a_constant_dimension_is_one_bin_and_knows_nothing():
    assert discretise(np.full(7, 2.5)).tolist() == [0] * 7
    result = disentanglement(np.column_stack([np.full(100, 1.0), np.arange(100.0)]), {"v": np.arange(100) % 4})
    assert result.mutual_information[0, 0] == 0.0


def test_factors_follow_the_rows_of_the_codes_and_a_folder_set_has_none():
    from vae.datasets import load_dataset

    shapes = load_dataset("shapes")
    split, index = np.array([0, 1, 0]), np.array([5, 2, 7])
    rows = factors_of_rows(shapes, split, index)
    assert list(rows) == ["shape", "scale", "rotation", "x", "y"]
    assert rows["x"][1] == float(shapes.test_factors["x"][2])
    assert rows["shape"][2] == int(shapes.train_labels[7])
    assert factors_of_rows(load_dataset("digits"), split, index) == {}
