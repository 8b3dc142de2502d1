"""Tiny data sets written in the official formats (IDX, CIFAR-10's pickled batches), for the data set tests."""

from __future__ import annotations

import pickle  # only to write a fake CIFAR-10 in torchvision's own (pickled) batch format; the library never pickles
import struct
from pathlib import Path

import numpy as np

from vae.datasets.torchvision_sets import TORCHVISION_SETS


def write_idx(path: Path, array: np.ndarray) -> None:
    """An uncompressed IDX file: magic 0x00000803 (3-d uint8 images) or 0x00000801 (1-d uint8 labels), big-endian dims."""
    magic = 0x0800 | array.ndim
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_tiny_idx_set(root: Path, folder: str, train: int = 24, test: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    """A tiny MNIST-format set (all four files, uncompressed) in <root>/<folder>/raw/; returns what was written."""
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    written = {}
    for split, count in (("train", train), ("t10k", test)):
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = np.arange(count, dtype=np.uint8) % 10
        write_idx(raw / f"{split}-images-idx3-ubyte", images)
        write_idx(raw / f"{split}-labels-idx1-ubyte", labels)
        written[f"{split}_images"], written[f"{split}_labels"] = images, labels
    return written


def write_tiny_cifar10(root: Path, per_batch: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """A tiny CIFAR-10 in torchvision's format: pickled dicts in <root>/cifar-10-batches-py/."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    written = {"train": [], "test": []}
    for name in ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"):
        data = rng.integers(0, 256, size=(per_batch, 3 * 32 * 32), dtype=np.uint8)  # rows: R plane, G plane, B plane
        labels = list(rng.integers(0, 10, size=per_batch))
        with (folder / name).open("wb") as handle:
            pickle.dump({"data": data, "labels": [int(label) for label in labels]}, handle)
        written["test" if name == "test_batch" else "train"].append(data)
    with (folder / "batches.meta").open("wb") as handle:
        pickle.dump({"label_names": list(TORCHVISION_SETS["cifar10"].label_names)}, handle)
    return {split: np.concatenate(parts) for split, parts in written.items()}


def accept_fake_cifar10(monkeypatch) -> None:
    """torchvision checks each CIFAR-10 file's MD5 against the real one; let the fake files through in tests only."""
    from torchvision.datasets import CIFAR10

    monkeypatch.setattr(CIFAR10, "train_list", [[name, None] for name, _ in CIFAR10.train_list])
    monkeypatch.setattr(CIFAR10, "test_list", [[name, None] for name, _ in CIFAR10.test_list])
    monkeypatch.setattr(CIFAR10, "meta", {**CIFAR10.meta, "md5": None})
