"""Do a `shapes` model's reconstructions show the right shape? Per shape and per scale, on the test split.

A test image's reconstruction (from the posterior mean) counts as the right shape when every
training image of another shape at the same scale, x and y (any rotation) is at least RATIO times
further from it (L2) than the original is. The nearest wrong-shape picture is the blob or outline
a blurry model would draw instead, so this score agrees with what a class sees in the pictures.
Also prints the test recon + KL and the MIG the Compare page shows (its 10,000 codes).

    PYTHONPATH=. python bench/shapes_recognisable.py checkpoints/shapes64-conv-z10-beta1 checkpoints/shapes64-conv-z10-beta4
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
import torch

from vae.checkpoints import load_checkpoint
from vae.datasets import load_dataset
from vae.datasets.shapes import SHAPE_NAMES, SHAPE_SCALES
from vae.disentangle import disentanglement, factors_of_rows
from vae.losses import elbo_parts
from vae.projection import ProjectionStore

RATIO = 1.5


def recognisable(reconstructions: torch.Tensor, dataset) -> np.ndarray:
    """(N,) bool: is each test reconstruction RATIO times nearer its original than any other shape's picture?"""
    train = dataset.train_images.flatten(1)
    train_factors = {name: values.numpy() for name, values in dataset.train_factors.items()}
    test_factors = {name: values.numpy() for name, values in dataset.test_factors.items()}
    rows_at = defaultdict(list)  # (scale, x, y) -> training rows drawn there
    for row, key in enumerate(zip(train_factors["scale"], train_factors["x"], train_factors["y"])):
        rows_at[key].append(row)
    originals, drawn = dataset.test_images.flatten(1), reconstructions.flatten(1)
    right = np.zeros(len(drawn), dtype=bool)
    for i in range(len(drawn)):
        rows = rows_at[(test_factors["scale"][i], test_factors["x"][i], test_factors["y"][i])]
        other_shape = train_factors["shape"][rows] != test_factors["shape"][i]
        to_others = torch.cdist(drawn[i:i + 1], train[rows][other_shape]).min().item()
        to_original = (drawn[i] - originals[i]).norm().item()
        right[i] = to_others >= RATIO * max(to_original, 1e-6)
    return right


def report(path: str) -> None:
    checkpoint = load_checkpoint(path)
    dataset = load_dataset(checkpoint.dataset_name)  # shapes or shapes64
    model = checkpoint.model
    with torch.no_grad():
        parts = elbo_parts(model, dataset.test_images, sample=True, generator=torch.Generator().manual_seed(0))
        right = recognisable(model.reconstruct(dataset.test_images), dataset)
    codes = ProjectionStore(checkpoint.path, model, dataset).codes()
    mig = disentanglement(codes.mu, factors_of_rows(dataset, codes.split, codes.index)).mig
    recon, kl = parts.recon.mean().item(), parts.kl.mean().item()
    print(f"{path}: test recon {recon:.2f} + KL {kl:.2f} = -ELBO {recon + kl:.2f} nats/image; MIG {mig:.3f}; "
          f"right shape {right.mean():.2f} of {len(right)} test images")
    shape, scale = dataset.test_factors["shape"].numpy(), dataset.test_factors["scale"].numpy()
    print(f"  {'shape':9s}  all  " + "  ".join(f"{'s=' + format(s, 'g'):>7s}" for s in SHAPE_SCALES))
    for index, name in enumerate(SHAPE_NAMES):
        by_scale = [right[(shape == index) & np.isclose(scale, s)].mean() for s in SHAPE_SCALES]
        print(f"  {name:9s} {right[shape == index].mean():.2f}  " + "  ".join(f"{v:7.2f}" for v in by_scale))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", help="checkpoint folders of models trained on shapes")
    args = parser.parse_args()
    for path in args.checkpoints:
        report(path)


if __name__ == "__main__":
    main()
