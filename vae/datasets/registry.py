"""The data set registry.

Each entry turns a name into a `Dataset`: train and test images (N, C, H, W) float32 in [0, 1],
integer labels (N,) where there are any, and the image shape. Adding a data set is adding an
entry with `@register(...)` in its source's module (vae/datasets/); names that carry an argument
(e.g. `folder:PATH`) register a prefix. `vae.datasets` imports every source, so all are registered.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch


class DataError(RuntimeError):
    """A data set that cannot be loaded, with a message meant for the user."""


@dataclass(frozen=True, eq=False)
class Dataset:
    name: str
    train_images: torch.Tensor  # (N, C, H, W) float32 in [0, 1]
    test_images: torch.Tensor
    train_labels: torch.Tensor | None = None  # (N,) int64
    test_labels: torch.Tensor | None = None
    label_names: tuple[str, ...] | None = None
    # Extra per-image ground truth (e.g. the generative factors of `shapes`), name -> (N,) tensor.
    train_factors: dict[str, torch.Tensor] = field(default_factory=dict)
    test_factors: dict[str, torch.Tensor] = field(default_factory=dict)
    # What the loader wants the user to know, e.g. how many unreadable files it skipped; "" when nothing.
    notes: str = ""

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])

    def split(self, which: str) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(images, labels) of the "train" or "test" split."""
        if which == "train":
            return self.train_images, self.train_labels
        if which == "test":
            return self.test_images, self.test_labels
        raise ValueError(f"split must be 'train' or 'test', not {which!r}")


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    title: str
    source: str  # where the data comes from and its licence
    load: Callable[..., Dataset]
    embedded: bool = True  # ships with an installed package or is generated: always works offline
    prefix: bool = False  # name is "NAME:ARGUMENT"
    # The one spelling of an argument (e.g. a folder's resolved path, options in a fixed order), so a
    # cache keyed by the name holds one copy however the user typed it; raises DataError if invalid.
    canonical: Callable[[str | None], str] | None = None


REGISTRY: dict[str, DatasetEntry] = {}
DEFAULT_DATASET = "mnist5k"
DATA_DIR_ENV = "LATENT_LAB_DATA"  # overrides the default data folder


def default_data_dir() -> Path:
    """Where downloadable data sets live unless told otherwise: $LATENT_LAB_DATA, else ~/.cache/latent-lab/data."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "latent-lab" / "data"


def register(name: str, title: str, source: str, embedded: bool = True, prefix: bool = False,
             canonical: Callable[[str | None], str] | None = None):
    """Add a loader to the registry; it is called as load(argument=None, data_dir=None)."""

    def add(load: Callable[..., Dataset]) -> Callable[..., Dataset]:
        REGISTRY[name] = DatasetEntry(name, title, source, load, embedded, prefix, canonical)
        return load

    return add


def dataset_names() -> list[str]:
    """Registered names, the default first."""
    return sorted(REGISTRY, key=lambda n: (n != DEFAULT_DATASET, list(REGISTRY).index(n)))


def find_entry(name: str) -> tuple[DatasetEntry, str | None]:
    base, colon, argument = name.partition(":")
    entry = REGISTRY.get(base)
    if entry is None or entry.prefix != bool(colon):
        known = ", ".join(n + (":PATH" if REGISTRY[n].prefix else "") for n in dataset_names())
        raise DataError(f"Unknown data set '{name}'. Known: {known}.")
    return entry, (argument if colon else None)


@functools.lru_cache(maxsize=8)
def _load_cached(name: str, data_dir: str | None) -> Dataset:
    entry, argument = find_entry(name)
    kwargs = {"data_dir": data_dir}
    if entry.prefix:
        kwargs["argument"] = argument
    return entry.load(**kwargs)


def canonical_request(name: str, data_dir: str | Path | None = None) -> tuple[str, str | None]:
    """(name, data_dir) spelled one way, for cache keys: `folder:~/x/`, `folder:/home/me/x` and
    `folder:/home/me/x?size=28&color=gray` are one folder, so they are one entry. The data folder
    is dropped for data sets that do not read one, and resolved for those that do. A name that
    does not parse is returned as given (loading it raises the error)."""
    name = name.strip()
    try:
        entry, argument = find_entry(name)
        if entry.prefix and entry.canonical is not None:
            name = f"{entry.name}:{entry.canonical(argument)}"
    except DataError:
        return name, str(data_dir) if data_dir else None
    if entry.embedded:
        return name, None
    folder = str(data_dir).strip() if data_dir else ""
    return name, os.path.realpath(os.path.expanduser(folder) if folder else default_data_dir())


def load_dataset(name: str = DEFAULT_DATASET, data_dir: str | Path | None = None) -> Dataset:
    """Load (once per process) the named data set. Raises DataError with a user-facing message."""
    return _load_cached(*canonical_request(name, data_dir))


def stratified_split(labels: np.ndarray, test_per_class: Callable[[int], int],
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split keeping every class in both parts: (train indices, test indices), sorted."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        n_test = test_per_class(len(members))
        test.append(members[:n_test])
        train.append(members[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
