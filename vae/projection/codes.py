"""A data set encoded once by a model: the codes every map of it is drawn from.

`encode_dataset` encodes the train and test images (a seeded subset of at most `MAX_POINTS`) into
posterior means and sigmas, z as (N, D), and their -ELBO; `LatentCodes` holds them with the label,
split and row of each image, so a point on any map names its image.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from vae.losses import elbo_parts
from vae.map_options import METHODS, MethodOption, distinct_codes, method_options
from vae.models import VAE

MAX_POINTS = 10_000  # larger data sets are mapped through a seeded random subset of this size
NEIGHBOURS_FOR_PLACING = 5


@dataclass(frozen=True, eq=False)
class LatentCodes:
    """A data set encoded by one model; row i is one image, its global id on the map is i.

    mu, sigma: (N, D) posterior means and standard deviations; labels: (N,) (-1 without labels);
    split: (N,) 0 for train, 1 for test; index: (N,) the row in its split; neg_elbo: (N,) the
    deterministic -ELBO (posterior mean decoded) in nats per image, for typicality percentiles.
    """

    mu: np.ndarray
    sigma: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    index: np.ndarray
    neg_elbo: np.ndarray
    total_images: int  # images in the data set, before any subsampling to MAX_POINTS

    ARRAYS: ClassVar[tuple[str, ...]] = ("mu", "sigma", "labels", "split", "index", "neg_elbo")

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The arrays of the cache file `codes.npz` (plain arrays, no pickles)."""
        return {name: getattr(self, name) for name in self.ARRAYS} | {"total_images": np.array(self.total_images)}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> LatentCodes | None:
        """The codes a cache file holds (`to_arrays`), or None when an array is missing or mu is not (N, D)."""
        if not all(name in arrays for name in (*cls.ARRAYS, "total_images")) or arrays["mu"].ndim != 2:
            return None
        return cls(**{name: arrays[name] for name in cls.ARRAYS}, total_images=int(arrays["total_images"]))

    @property
    def latent_dim(self) -> int:
        return int(self.mu.shape[1])

    def __len__(self) -> int:
        return int(self.mu.shape[0])

    @functools.cached_property
    def distinct(self) -> int:
        """How many different codes there are (images with identical codes count once)."""
        return distinct_codes(self.mu)

    def options(self) -> list[MethodOption]:
        """Every projection method, offered or with the sentence saying why not (`vae.map_options`)."""
        return method_options(METHODS, len(self), self.latent_dim, self.distinct)

    def rows_of(self, which: str) -> np.ndarray:
        """Global ids of the "train", "test" or "all" rows."""
        if which == "all":
            return np.arange(len(self))
        return np.flatnonzero(self.split == {"train": 0, "test": 1}[which])

    def nearest(self, mu: np.ndarray, k: int = NEIGHBOURS_FOR_PLACING) -> tuple[np.ndarray, np.ndarray]:
        """(ids, distances), each (M, min(k, N)): the codes nearest to each row of mu (M, D), Euclidean,
        nearest first; codes at equal distance (twins) in id order."""
        mu = np.atleast_2d(np.asarray(mu, dtype=np.float64))
        codes = self.mu.astype(np.float64)
        k = min(k, len(self))
        # |a - b|^2 = |a|^2 - 2ab + |b|^2 in float64: in float32 the cancellation blurs the order of
        # close neighbours; the data sets here are small enough for one matrix product.
        squared = (mu**2).sum(1, keepdims=True) - 2.0 * mu @ codes.T + (codes**2).sum(1)[None, :]
        squared = np.maximum(squared, 0.0)
        ids = np.argsort(squared, axis=1, kind="stable")[:, :k]
        distances = np.sqrt(np.maximum(np.take_along_axis(squared, ids, axis=1), 0.0))
        return ids, distances


def _subset(n: int, limit: int = MAX_POINTS) -> np.ndarray | None:
    """Seeded random rows when a split is too large to map whole, else None (use them all)."""
    if n <= limit:
        return None
    return np.sort(np.random.default_rng(0).choice(n, size=limit, replace=False))


def encoded_rows(sizes: tuple[int, int], max_points: int = MAX_POINTS) -> list[np.ndarray]:
    """The rows of the train and test splits (of these sizes) that a map encodes: all of them, or a
    seeded share of each when there are more than `max_points` in all."""
    total = sum(sizes)
    share = max_points / total if total > max_points else 1.0
    rows = []
    for size in sizes:
        keep = _subset(size, max(1, int(size * share)))
        rows.append(np.arange(size) if keep is None else keep)
    return rows


def data_fingerprint(dataset, max_points: int = MAX_POINTS) -> str:
    """Identifies the images a map is made of: a hash of the encoded images, their labels and the
    split sizes. A `folder:` set can change under a checkpoint (pictures added or removed); its old
    codes would then point at other images, or past the end."""
    splits = [dataset.split("train"), dataset.split("test")]
    digest = hashlib.sha256(repr([tuple(images.shape) for images, _ in splits]).encode())
    for (images, labels), rows in zip(splits, encoded_rows((len(splits[0][0]), len(splits[1][0])), max_points)):
        picked = torch.from_numpy(rows)
        digest.update(np.ascontiguousarray(images[picked].float().numpy()).tobytes())
        digest.update(b"-" if labels is None else np.ascontiguousarray(labels[picked].numpy()).tobytes())
    return digest.hexdigest()[:32]


@torch.no_grad()
def encode_dataset(model: VAE, dataset, batch_size: int = 500, max_points: int = MAX_POINTS) -> LatentCodes:
    """Encode train and test images of `dataset` (at most `max_points` in all, seeded) with `model`."""
    train_images, train_labels = dataset.split("train")
    test_images, test_labels = dataset.split("test")
    total = len(train_images) + len(test_images)
    rows = encoded_rows((len(train_images), len(test_images)), max_points)
    parts = []
    for split_id, (images, labels) in enumerate(((train_images, train_labels), (test_images, test_labels))):
        index = rows[split_id]
        mus, sigmas, nelbos = [], [], []
        for start in range(0, len(index), batch_size):
            batch = images[torch.from_numpy(index[start:start + batch_size])].float()
            elbo = elbo_parts(model, batch, sample=False)  # carries the posterior: each batch is encoded once
            mus.append(elbo.posterior.mean.numpy())
            sigmas.append(elbo.posterior.stddev.numpy())
            nelbos.append(elbo.total.numpy())
        label_array = labels.numpy()[index] if labels is not None else np.full(len(index), -1)
        parts.append((np.concatenate(mus), np.concatenate(sigmas), label_array, np.full(len(index), split_id), index,
                      np.concatenate(nelbos)))
    mu, sigma, labels, split, index, neg_elbo = (np.concatenate(column) for column in zip(*parts))
    return LatentCodes(mu=mu.astype(np.float32), sigma=sigma.astype(np.float32), labels=labels.astype(np.int64),
                       split=split.astype(np.int8), index=index.astype(np.int64), neg_elbo=neg_elbo.astype(np.float32),
                       total_images=total)
