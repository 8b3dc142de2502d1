"""Looking inside a trained VAE: its headline numbers, chosen test images and their reconstructions.

Numbers are per image, in nats. Images are (N, C, H, W) in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vae.datasets import Dataset
from vae.history import ELBONumbers, final_numbers  # noqa: F401 (re-exported)
from vae.losses import elbo_parts, reconstruction_nll
from vae.models import VAE


class SelectionError(ValueError):
    """Test images asked for that do not exist; the message is meant for the user."""


def pick_test_images(dataset: Dataset, how: str, count: int = 8, seed: int = 0, label: int | None = None,
                     indices: str | list[int] | None = None) -> list[int]:
    """Indices into the test split: how = "random" (seeded), "label" (the first `count` with that label,
    in a seeded order) or "index" (a list, or text like "0, 5, 17")."""
    size = len(dataset.test_images)
    generator = torch.Generator().manual_seed(int(seed))
    if how == "random":
        return torch.randperm(size, generator=generator)[:count].tolist()
    if how == "label":
        if dataset.test_labels is None:
            raise SelectionError(f"The data set '{dataset.name}' has no labels; pick images at random or by index.")
        members = torch.nonzero(dataset.test_labels == int(label)).flatten()
        if len(members) == 0:
            raise SelectionError(f"No test image has label {label}.")
        return members[torch.randperm(len(members), generator=generator)][:count].tolist()
    if how == "index":
        if isinstance(indices, str):
            try:
                indices = [int(part) for part in indices.replace(",", " ").split()]
            except ValueError:
                raise SelectionError(f"'{indices}' is not a list of whole numbers like 0, 5, 17.") from None
        indices = list(indices or [])
        if not indices:
            raise SelectionError("Give at least one index, e.g. 0, 5, 17.")
        outside = [index for index in indices if not 0 <= index < size]
        if outside:
            raise SelectionError(f"The test set has images 0 to {size - 1}; {outside[0]} is outside.")
        return indices[:64]
    raise SelectionError(f"Unknown way to pick images: {how!r}.")


@dataclass(frozen=True)
class Reconstructions:
    """Test images and what the model makes of them.

    originals (N, C, H, W); mean (N, C, H, W) decoded from the posterior mean; samples (S, N, C, H, W)
    decoded from S draws z ~ q(z|x). mean_recon (N,) and sample_recon (S, N) are -log p(x|z) of each
    decoding in nats; kl (N,) is KL(q(z|x) || p(z)), the same for all of one image's decodings.
    """

    originals: torch.Tensor
    mean: torch.Tensor
    samples: torch.Tensor
    mean_recon: torch.Tensor
    sample_recon: torch.Tensor
    kl: torch.Tensor


@torch.no_grad()
def reconstruct(model: VAE, images: torch.Tensor, samples: int = 3, seed: int = 0) -> Reconstructions:
    """Reconstruct `images` from the posterior mean and from `samples` posterior draws, with their scores."""
    images = images.to(model.device)
    mean_parts = elbo_parts(model, images, sample=False)
    posterior = mean_parts.posterior  # encoded once, for the mean and every draw
    mean = model.images_from_decoded(mean_parts.decoded)
    generator = torch.Generator(device=model.device).manual_seed(int(seed))
    sampled, sampled_recon = [], []
    for _ in range(samples):
        # Same generator for the code and the score, so each picture's number belongs to it.
        decoded = model.decode(posterior.sample(generator=generator))
        sampled.append(model.images_from_decoded(decoded))
        sampled_recon.append(reconstruction_nll(decoded, images, model.config.likelihood, model.config.gaussian_sigma))
    shape = (0, *images.shape)
    return Reconstructions(
        originals=images.cpu(), mean=mean.cpu(),
        samples=torch.stack(sampled).cpu() if sampled else torch.empty(shape),
        mean_recon=mean_parts.recon.cpu(),
        sample_recon=torch.stack(sampled_recon).cpu() if sampled else torch.empty(0, len(images)),
        kl=mean_parts.kl.cpu(),
    )

