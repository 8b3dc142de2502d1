"""'Is my number good?': reference points for a model's test -log p(x), on the same test images.

Every value is per image in nats (lower is better), with its bits per dimension:
nats / (pixels * ln 2). A -log p(x) means little alone; beside these it does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from vae.losses import reconstruction_nll


@dataclass(frozen=True)
class ReferencePoint:
    """One figure to compare with: `nats` per image (lower is better) and what it is, in words."""

    name: str
    nats: float
    what: str
    comparable: bool = True  # False: a published figure in another setting, shown for scale only


def bits_per_dim(nats: float, pixels: int) -> float:
    """Nats per image as bits per pixel value: nats / (pixels * ln 2)."""
    return nats / (pixels * math.log(2))


def independent_pixels(train_images: torch.Tensor, test_images: torch.Tensor, likelihood: str = "bernoulli",
                       gaussian_sigma: float = 0.1) -> float:
    """-log p(x) per test image (nats) of the model with no latent at all: every pixel on its own, with the
    training set's mean as its Bernoulli (or fixed-sigma Gaussian) mean; images (N, C, H, W) in [0, 1]."""
    mean = train_images.float().mean(0, keepdim=True).clamp(1e-4, 1 - 1e-4)
    parameters = torch.logit(mean) if likelihood == "bernoulli" else mean
    return float(reconstruction_nll(parameters.expand_as(test_images), test_images.float(), likelihood,
                                    gaussian_sigma).mean())


def likelihood_floor(test_images: torch.Tensor, likelihood: str = "bernoulli", gaussian_sigma: float = 0.1) -> float:
    """The best -log p(x|z) any decoder can reach on these images (nats per image): its output equal to x.

    For the Bernoulli likelihood on grey levels x in (0, 1) this is the pixels' own entropy,
    sum -x log x - (1 - x) log(1 - x), which is zero only for black-and-white images: grey pixels cost
    nats that no model can remove. For the fixed-sigma Gaussian it is pixels * (log sigma + log(2 pi) / 2).
    """
    x = test_images.float().flatten(1)
    if likelihood == "bernoulli":
        entropy = -(torch.special.xlogy(x, x) + torch.special.xlogy(1 - x, 1 - x))
        return float(entropy.sum(1).mean())
    return float(x.shape[1] * (math.log(gaussian_sigma) + 0.5 * math.log(2 * math.pi)))


# Burda, Grosse & Salakhutdinov (2015), Table 1: a VAE (trained on the ELBO, k = 1) with one stochastic layer of
# 50 units, on the 60,000 dynamically binarised MNIST training images; -log p(x) of the 10,000 test images
# estimated by IWAE with K = 5000.
PUBLISHED_BINARISED_MNIST = ReferencePoint(
    "published: VAE on binarised MNIST", 86.76,
    "Burda et al. 2015, Table 1: a VAE with 50 latent dimensions trained on all 60,000 MNIST training images, "
    "binarised (each pixel redrawn as 0 or 1), test -log p(x) by IWAE with K = 5,000. Not comparable: black-and-"
    "white pixels have entropy 0, while here grey pixels cost nats no model can remove, and the training and test "
    "images differ.",
    comparable=False,
)


def reference_points(train_images: torch.Tensor, test_images: torch.Tensor, likelihood: str, gaussian_sigma: float,
                     dataset_name: str, other_models: list[tuple[str, float]] | None = None) -> list[ReferencePoint]:
    """The reference points for a model of `dataset_name`: the independent-pixel baseline, the floor the
    likelihood puts on these pixels, `other_models` (name, test -ELBO) trained on the same data, and, for
    MNIST, a published figure with its setting."""
    points = [
        ReferencePoint("independent pixels", independent_pixels(train_images, test_images, likelihood, gaussian_sigma),
                       "no latent code: each pixel on its own, at the training set's mean. A VAE must beat this."),
        ReferencePoint("floor of the likelihood", likelihood_floor(test_images, likelihood, gaussian_sigma),
                       "the decoder's output equal to the image itself: no model can go lower"
                       + (" (the grey pixels' own entropy)." if likelihood == "bernoulli" else ".")),
    ]
    points += other_model_points(other_models or [])
    if dataset_name.startswith("mnist") and likelihood == "bernoulli":
        points.append(PUBLISHED_BINARISED_MNIST)
    return points


def other_model_points(other_models: list[tuple[str, float]]) -> list[ReferencePoint]:
    """A reference point per (name, test -ELBO in nats per image) of other models of the same data set."""
    return [ReferencePoint(f"model {name}", nats, "another model of the same data set: its test -ELBO after training.")
            for name, nats in other_models]
