"""Which map projections a model's codes allow, and why the others are not offered.

One place for the rules, used by `vae.projection.compute_projection` (which refuses with the same
sentence), by the pages (which offer only what works and say why the rest is missing) and by
`python -m vae.projection`. The limits come from the methods themselves:

    latent   the code itself: a 1-D latent is drawn as a strip (z1 across, one row per label),
             a 2-D latent as the plane; wider latents cannot be drawn as themselves
    dims     two of the latent's dimensions: needs at least three (two are the latent itself)
    pca      two principal components: needs a latent of at least 2-D and codes that differ
    umap     needs more images than its 15 neighbours + 1 (McInnes et al. 2018, the k-NN graph)
    tsne     perplexity min(30, (N - 1) / 3) must be at least 2, so at least 7 images
             (scikit-learn requires perplexity < N; van der Maaten & Hinton 2008)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vae.history import EpochRecord

METHODS = ("latent", "dims", "pca", "umap", "tsne")  # each a class in `vae.projection.methods`
UMAP_NEIGHBOURS = 15
TSNE_PERPLEXITY = 30.0
TSNE_MIN_PERPLEXITY = 2.0


@dataclass(frozen=True)
class MethodOption:
    """One projection method for one set of codes: offered when `reason` is None."""

    method: str
    reason: str | None = None

    @property
    def offered(self) -> bool:
        return self.reason is None


def tsne_perplexity(points: int) -> float:
    """The perplexity t-SNE uses for `points` codes: 30, or less for small data sets."""
    return min(TSNE_PERPLEXITY, (points - 1) / 3.0)


def distinct_codes(mu: np.ndarray) -> int:
    """How many different rows mu (N, D) holds (twins count once)."""
    return int(len(np.unique(np.asarray(mu), axis=0))) if len(mu) else 0


def why_not(method: str, points: int, latent_dim: int, distinct: int) -> str | None:
    """None when `method` can map `points` codes of a `latent_dim`-D latent, `distinct` of them
    different; otherwise the sentence a person reads."""
    flat = "a 1-D latent is drawn as itself: a map to two dimensions adds nothing to one number per image"
    if method == "latent":
        if latent_dim > 2:
            return f"a {latent_dim}-D latent cannot be drawn as itself; choose two of its dimensions or a projection"
        return None
    if method == "dims":
        if latent_dim < 3:
            return f"a {latent_dim}-D latent is drawn as itself already"
        return None
    if latent_dim < 2:
        return flat
    if distinct < 2:
        return "every image has the same code, so there is nothing to spread out"
    if method == "umap" and points <= UMAP_NEIGHBOURS + 1:
        return (f"it links each image to its {UMAP_NEIGHBOURS} nearest, so it needs at least {UMAP_NEIGHBOURS + 2} "
                f"images; this data set has {points}")
    if method == "tsne" and tsne_perplexity(points) < TSNE_MIN_PERPLEXITY:
        least = int(3 * TSNE_MIN_PERPLEXITY + 1)
        return (f"it needs at least {least} images for a perplexity of {TSNE_MIN_PERPLEXITY:g}; this data set has "
                f"{points}")
    return None


def method_options(methods: tuple[str, ...], points: int, latent_dim: int, distinct: int) -> list[MethodOption]:
    """Every method in `methods`, each offered or with the reason it is not."""
    return [MethodOption(method, why_not(method, points, latent_dim, distinct)) for method in methods]


def not_offered_sentence(options: list[MethodOption], titles: dict[str, str]) -> str:
    """One sentence naming every method not offered and why, methods with the same reason together
    ("" when all are offered)."""
    reasons: dict[str, list[str]] = {}
    for option in options:
        if not option.offered:
            reasons.setdefault(option.reason, []).append(titles[option.method])
    parts = []
    for reason, names in reasons.items():
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        parts.append(f"{listed}: {reason}")
    return ("Not offered for this model: " + "; ".join(parts) + ".") if parts else ""


def default_method(latent_dim: int) -> str:
    """What a model's map opens on: the latent itself when it is 1-D or 2-D, else PCA (quick;
    UMAP and t-SNE can take minutes on a cold server, so nobody lands in one by default)."""
    return "latent" if latent_dim <= 2 else "pca"


def default_dims(latent_dim: int, history: list[EpochRecord]) -> tuple[int, int]:
    """The two latent dimensions (0-based) with the most KL at the last epoch, most first: the
    two the encoder uses most (`vae.generate.dimensions_by_kl`); 0 and 1 without a history."""
    from vae.generate import dimensions_by_kl

    order = dimensions_by_kl(latent_dim, history)
    return (order[0].index, order[1].index) if latent_dim >= 2 else (0, 0)
