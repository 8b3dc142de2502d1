"""The generated `shapes` data set (vae.datasets.shapes): a full factor grid, drawn the same way every time."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from vae.datasets import load_dataset
from vae.datasets.shapes import SHAPE_NAMES, SHAPE_POSITIONS, SHAPE_ROTATIONS, SHAPE_SCALES, SHAPES_COUNT, generate_shapes


def test_same_seed_gives_the_same_shapes_and_another_seed_another_order():
    first, again = generate_shapes(400, seed=3), generate_shapes(400, seed=3)
    assert np.array_equal(first.images, again.images)
    assert all(np.array_equal(first.factors[k], again.factors[k]) for k in first.factors)
    other = generate_shapes(400, seed=4)
    assert not np.array_equal(first.images, other.images)


def _combinations(factors: dict[str, np.ndarray]) -> np.ndarray:
    return np.stack([factors[k] for k in ("shape", "scale", "rotation", "x", "y")], axis=1)


def test_every_factor_combination_appears_in_equal_proportion():
    shapes = generate_shapes()
    assert shapes.images.shape == (SHAPES_COUNT, 1, 28, 28) == (20_000, 1, 28, 28)
    combos, counts = np.unique(_combinations(shapes.factors), axis=0, return_counts=True)
    grid = len(SHAPE_NAMES) * len(SHAPE_SCALES) * len(SHAPE_ROTATIONS) * SHAPE_POSITIONS ** 2
    assert len(combos) == grid and set(counts) == {1}
    for name, values in (("shape", range(len(SHAPE_NAMES))), ("scale", SHAPE_SCALES), ("rotation", SHAPE_ROTATIONS)):
        assert {v: int((shapes.factors[name] == v).sum()) for v in values} == {v: SHAPES_COUNT // len(values) for v in values}
    assert np.unique(shapes.factors["x"], return_counts=True)[1].tolist() == [SHAPES_COUNT // SHAPE_POSITIONS] * SHAPE_POSITIONS


def test_twice_the_grid_repeats_each_combination_twice_and_a_sample_never_repeats():
    _, counts = np.unique(_combinations(generate_shapes(2 * SHAPES_COUNT).factors), axis=0, return_counts=True)
    assert set(counts) == {2} and len(counts) == SHAPES_COUNT
    _, counts = np.unique(_combinations(generate_shapes(1000, seed=1).factors), axis=0, return_counts=True)
    assert set(counts) == {1} and len(counts) == 1000


def _pick(shapes, **wanted) -> np.ndarray:
    mask = np.ones(len(shapes.images), dtype=bool)
    for name, value in wanted.items():
        mask &= shapes.factors[name] == value
    (index,) = np.flatnonzero(mask)
    return shapes.images[index, 0]


def test_shapes_are_drawn_with_the_right_area_place_and_soft_edges():
    shapes = generate_shapes()
    radius = 28 / 4  # scale 1.0
    square = _pick(shapes, shape=0, scale=1.0, rotation=0.0, x=12.5, y=15.5)
    # Side sqrt(2) r = 9.9 px; 4 samples per pixel put axis-aligned edges on a quarter-pixel grid.
    assert square.sum() == pytest.approx(2 * radius ** 2, rel=0.05)
    ellipse = _pick(shapes, shape=1, scale=0.5, rotation=72.0, x=16.5, y=10.5)
    assert ellipse.sum() == pytest.approx(np.pi * (0.5 * radius) * (0.25 * radius), rel=0.03)
    triangle = _pick(shapes, shape=2, scale=1.0, rotation=36.0, x=14.5, y=14.5)
    assert triangle.sum() == pytest.approx(3 * np.sqrt(3) / 4 * radius ** 2, rel=0.02)
    # The centre of mass of a square sits at its (x, y); x from the left, y from the bottom, in pixels.
    rows, columns = np.mgrid[0:28, 0:28] + 0.5
    assert (square * columns).sum() / square.sum() == pytest.approx(12.5, abs=0.01)
    assert 28 - (square * rows).sum() / square.sum() == pytest.approx(15.5, abs=0.01)
    # Rotated edges are anti-aliased: partly covered pixels exist; nothing leaves [0, 1] or touches the border.
    assert ((ellipse > 0.05) & (ellipse < 0.95)).any()
    assert shapes.images.min() == 0.0 and shapes.images.max() == 1.0
    assert shapes.images[:, 0, [0, -1], :].max() == 0 and shapes.images[:, 0, :, [0, -1]].max() == 0


def test_shapes_in_the_registry_carry_every_factor_with_the_shape_as_label():
    dataset = load_dataset("shapes")
    assert dataset.image_shape == (1, 28, 28)
    assert len(dataset.train_images) == 18_000 and len(dataset.test_images) == 2_000
    assert dataset.label_names == SHAPE_NAMES
    assert set(dataset.train_factors) == set(dataset.test_factors) == {"shape", "scale", "rotation", "x", "y"}
    assert torch.equal(dataset.train_labels, dataset.train_factors["shape"])
    assert torch.bincount(dataset.test_labels).tolist() == [500] * 4
    assert all(len(v) == 18_000 for v in dataset.train_factors.values())


def test_shapes_are_generated_bit_identically_to_the_shipped_models_data():
    # SHA-256 of the pixels and factors as vae/datasets_extra.py generated them before the move to
    # vae/datasets/shapes.py (the shipped shapes models were trained on these exact pictures).
    shapes = generate_shapes()
    assert shapes.images.dtype == np.float32
    assert hashlib.sha256(np.ascontiguousarray(shapes.images).tobytes()).hexdigest() == \
        "744dffc62332b41417106a1551952e4734dac79265319acb9c54202a96c21996"
    factors = b"".join(np.ascontiguousarray(shapes.factors[name]).tobytes() for name in sorted(shapes.factors))
    assert hashlib.sha256(factors).hexdigest() == "06b8d9d178fb831cc0f18c15ed5209d4243a12e7ae5861d08cd2ce8ec9ce59f8"
    dataset = load_dataset("shapes")
    assert hashlib.sha256(dataset.test_images.numpy().tobytes()).hexdigest() == \
        "bd9de8f26774630be06c91a721a4e4b546caab6f2d28c5e770895492b0805bb2"


def test_shapes64_is_the_same_factor_grid_and_split_drawn_at_dsprites_resolution():
    small, large = load_dataset("shapes"), load_dataset("shapes64")
    assert large.image_shape == (1, 64, 64) and large.label_names == SHAPE_NAMES
    for split in ("train", "test"):
        small_factors, large_factors = getattr(small, f"{split}_factors"), getattr(large, f"{split}_factors")
        for name in ("shape", "scale", "rotation"):
            assert torch.equal(small_factors[name], large_factors[name])  # the same images, row for row
        # Positions 2 pixels apart about the centre pixel of 64 (32.5), where shapes has 1 pixel about 14.5.
        assert torch.allclose(large_factors["x"] - 32.5, 2 * (small_factors["x"] - 14.5))
        assert torch.allclose(large_factors["y"] - 31.5, 2 * (small_factors["y"] - 13.5))
    # A shape covers (64 / 28)^2 = 5.2 times the pixels it covers at 28x28.
    ratio = large.test_images.sum((1, 2, 3)) / small.test_images.sum((1, 2, 3))
    assert ratio.mean().item() == pytest.approx((64 / 28) ** 2, rel=0.02)
    assert large.test_images.amax((1, 2, 3)).min() == 1.0
    assert hashlib.sha256(large.test_images.numpy().tobytes()).hexdigest() == \
        "a92fe066776596340ddacb50ccb325fa997bd800d128cd1fd30aef3355deb025"  # the shipped shapes64 models' pictures
