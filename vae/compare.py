"""Models side by side: whether they can be compared, their rate-distortion points, traversal codes.

Losses come from each checkpoint's history (per image, in nats). Codes z are (N, D); images
(N, C, H, W) in [0, 1]. Nothing here imports Streamlit; the figures are in vae/compare_charts.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vae.history import COLLAPSED_KL_NATS, EpochRecord, dimension_name, is_collapsed, read_history

MIN_MODELS, MAX_MODELS = 2, 6
TRAVERSAL_RANGE = 3.0  # prior standard deviations either side of the base code
TRAVERSAL_STEPS = 7  # -3, -2, ..., 3
MAX_TRAVERSAL_ROWS = 10


@dataclass(frozen=True)
class ComparedModel:
    """One checkpoint as the Compare page reads it from its config.json (no weights needed)."""

    name: str
    dataset: str
    likelihood: str
    arch: str
    latent_dim: int
    beta: float
    history: list[EpochRecord]

    @classmethod
    def from_config(cls, name: str, config: dict) -> "ComparedModel":
        model = config["model"]
        return cls(name=name, dataset=config["dataset"]["name"], likelihood=model.get("likelihood", "bernoulli"),
                   arch=model.get("arch", "mlp"), latent_dim=int(model["latent_dim"]),
                   beta=float(config["train"].get("beta", 1.0)), history=read_history(config["history"]))

    @property
    def label(self) -> str:
        return f"{self.name} (β = {self.beta:g}, z = {self.latent_dim})"


def comparability(models: list[ComparedModel]) -> tuple[bool, str]:
    """(comparable, one sentence for the learner): whether the models' nats measure the same thing.

    Losses in nats per image compare only on the same images (data set) and the same likelihood
    (a Gaussian's density and a Bernoulli's probability are different units of surprise).
    """
    datasets = sorted({m.dataset for m in models})
    likelihoods = sorted({m.likelihood for m in models})
    problems = []
    if len(datasets) > 1:
        problems.append(f"they were trained on different data sets ({', '.join(datasets)}), so their nats are per "
                        "image of different images")
    if len(likelihoods) > 1:
        problems.append(f"they use different likelihoods ({', '.join(likelihoods)}), "
                        "so their reconstruction terms are in different units")
    if problems:
        return False, ("These losses are not comparable: " + "; and ".join(problems)
                       + ". Compare shapes of curves, not heights.")
    betas = sorted({m.beta for m in models})
    sentence = (f"All {len(models)} models were trained on {datasets[0]} with the {likelihoods[0]} likelihood, so "
                "their nats per image compare directly.")
    if len(betas) > 1:
        sentence += (f" They differ in β ({', '.join(f'{b:g}' for b in betas)}); every loss shown is the plain −ELBO "
                     "(reconstruction + KL, β = 1), the number that says how well each model explains the data.")
    return True, sentence


def rate_distortion(history: list[EpochRecord], split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """(rate, distortion), each (epochs,): KL(q(z|x) || p(z)) and -E_q[log p(x|z)] per epoch, in nats per image.

    Alemi et al. 2018 ("Fixing a Broken ELBO") read every VAE as a point in this plane: -ELBO = D + R,
    so lines of equal -ELBO have slope -1, and beta > 1 buys a lower rate with a higher distortion.
    """
    losses = [record.test if split == "test" else record.train for record in history]
    rate = np.array([float(loss.kl) for loss in losses])
    distortion = np.array([float(loss.recon) for loss in losses])
    return rate, distortion


def equal_elbo_levels(totals: np.ndarray, lines: int = 5) -> np.ndarray:
    """Round -ELBO values (nats) for the plane's guide lines, spanning `totals` (any shape) and a bit beyond."""
    totals = np.asarray(totals, dtype=float)
    low, high = float(totals.min()), float(totals.max())
    span = max(high - low, 1.0)
    step = 10 ** np.floor(np.log10(span / lines))
    for multiple in (1, 2, 5, 10):
        if span / (step * multiple) <= lines:
            step *= multiple
            break
    start = np.floor((low - 0.5 * step) / step) * step
    return np.arange(start, high + step, step)


def active_dimensions(latent_dim: int, history: list[EpochRecord]) -> list[tuple[int, float]]:
    """(index, KL nats) of the dimensions above the collapse threshold, most KL first
    (vae.generate.dimensions_by_kl)."""
    from vae.generate import dimensions_by_kl

    return [(d.index, d.kl) for d in dimensions_by_kl(latent_dim, history)
            if d.kl is not None and not is_collapsed(d.kl, COLLAPSED_KL_NATS)]


def traversal_values(steps: int = TRAVERSAL_STEPS, reach: float = TRAVERSAL_RANGE) -> np.ndarray:
    """The values (steps,) one dimension takes across a traversal row: -reach .. reach."""
    return np.linspace(-reach, reach, steps)


def traversal_codes(base: np.ndarray, dimensions: list[int], values: np.ndarray) -> np.ndarray:
    """Codes (R * S, D) float32: row r sets dimension dimensions[r] to each of values (S,), the
    others staying at base (D,) (a posterior mean, or zeros for the prior's centre)."""
    base = np.asarray(base, dtype=np.float32).reshape(-1)
    values = np.asarray(values, dtype=np.float32)
    codes = np.repeat(base[None, :], len(dimensions) * len(values), axis=0)
    for row, dimension in enumerate(dimensions):
        codes[row * len(values):(row + 1) * len(values), dimension] = values
    return codes


@dataclass(frozen=True)
class Traversal:
    """A model's traversal grid: images (R * S, C, H, W) in [0, 1], row by row; one label per row."""

    images: "object"  # torch.Tensor (kept untyped so this module stays importable without torch)
    row_labels: list[str]
    values: np.ndarray
    dimensions: list[int]


def traverse(model, history: list[EpochRecord], base_image=None, factor_of=None,
             rows: int = MAX_TRAVERSAL_ROWS, steps: int = TRAVERSAL_STEPS) -> Traversal:
    """Decode a traversal grid: one row per active dimension (most KL first, at most `rows`),
    sweeping it over -3..3 with the others at base_image's posterior mean ((C, H, W) in [0, 1]), or 0 without one.

    factor_of: optional callable index -> (factor name, share of its entropy) (Disentanglement.factor_of)
    to label each row with the factor that dimension tracks most.
    """
    from vae.generate import decode, posterior_means

    latent_dim = model.config.latent_dim
    active = active_dimensions(latent_dim, history)[:rows]
    dimensions = [index for index, _ in active]
    values = traversal_values(steps)
    start = (np.zeros(latent_dim, dtype=np.float32) if base_image is None
             else posterior_means(model, base_image[None])[0].numpy())
    codes = traversal_codes(start, dimensions, values)
    images = decode(model, codes) if len(codes) else None
    labels = []
    for index, kl in active:
        label = f"{dimension_name(index)} · KL {kl:.2f}"
        if factor_of is not None:
            factor, share = factor_of(index)
            label += f" · {factor} ({share:.0%})"
        labels.append(label)
    return Traversal(images=images, row_labels=labels, values=values, dimensions=dimensions)


def reconstruction_grid(models: list, images):
    """Images (S, C, H, W) in [0, 1] over each model's posterior-mean reconstruction of them:
    ((1 + M) * S, C, H, W), row by row (originals first), for `vae.images.image_grid(..., columns=S)`."""
    import torch

    with torch.no_grad():
        rows = [images] + [model.reconstruct(images.to(model.device)).cpu() for model in models]
    return torch.cat(rows)
