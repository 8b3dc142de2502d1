"""The projection methods: each turns codes (N, D) into map coordinates (N, 2) and places new codes.

    latent   the code itself (2-D latents; a 1-D latent as a strip)       `LatentProjection`
    dims     two chosen latent dimensions                                  `DimsProjection`
    pca      principal components (sklearn), explained variance reported   `PcaProjection`
    umap     UMAP (umap-learn); new points go through `transform`          `UmapProjection`
    tsne     t-SNE (sklearn); it has no transform, so new points are       `TsneProjection`
             placed at the mean map position of their nearest neighbours
             in latent space (and the app says so)

Each class fits itself (`fit`), places new codes (`place`), and, for the methods worth caching
(`saved`), turns itself into the arrays of its cache file and back (`to_arrays`, `from_arrays`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from vae.history import dimension_name
from vae.map_options import METHODS, TSNE_PERPLEXITY, tsne_perplexity, why_not
from vae.projection.libraries import import_lock
from vae.projection.umap_map import UMAP_SETTINGS, UmapMap

if TYPE_CHECKING:
    from vae.projection.codes import LatentCodes

# METHODS, the names, is declared in `vae.map_options` with the rules of which a model's codes allow.
METHOD_TITLES = {
    "latent": "the latent code itself",
    "dims": "two latent dimensions",
    "pca": "PCA",
    "umap": "UMAP",
    "tsne": "t-SNE",
}
SLOW_METHODS = ("umap", "tsne")
TSNE_SETTINGS = {"perplexity": TSNE_PERPLEXITY, "init": "pca", "random_state": 0}
STRIP_NEW_ROW = -1.0  # the row of a 1-D strip where new (unlabelled) images are placed


class ProjectionError(RuntimeError):
    """A projection that cannot be made (e.g. 'latent' on a 10-D model); the message is for the user."""


@dataclass(frozen=True)
class Placed:
    """New points on a map: coords (M, 2) and how they got there ("exact", "transform", "nearest")."""

    coords: np.ndarray
    how: str
    note: str


@dataclass(eq=False)
class Projection:
    """2-D coordinates (N, 2) of every row of a `LatentCodes`, with what is needed to place new codes.

    Each method is a subclass: how it fits, how it places new codes (exactly, by its transform, or
    by nearest neighbours in latent space, `_by_neighbours`) and, when `saved`, its cache file's arrays.
    """

    method: str
    key: str
    coords: np.ndarray
    axis_titles: tuple[str, str]
    note: str = ""
    seconds: float = 0.0
    source: str = "computed"  # "computed" here, or "disk"
    dims: tuple[int, int] | None = None

    METHOD: ClassVar[str] = ""  # the method's name in METHODS
    AXES: ClassVar[tuple[str, str]] = ("", "")  # the axis titles, where they do not depend on the fit
    saved: ClassVar[bool] = False  # slices of the codes cost nothing to recompute: no cache file

    @classmethod
    def fit(cls, codes: LatentCodes, key: str, dims: tuple[int, int] | None) -> Projection:
        """This method fitted to the posterior means codes.mu (N, D); `compute_projection` calls it."""
        raise NotImplementedError

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The arrays of this projection's cache file (plain arrays, no pickles)."""
        return {"coords": self.coords, "note": np.array(self.note)}

    @classmethod
    def from_arrays(cls, key: str, arrays: dict[str, np.ndarray]) -> Projection | None:
        """The projection a cache file holds (`to_arrays`), or None when an array is missing."""
        if "note" not in arrays:
            return None
        return cls(cls.METHOD, key, arrays["coords"], cls.AXES, note=str(arrays["note"]), source="disk")

    def place(self, mu: np.ndarray, codes: LatentCodes) -> Placed:
        """Map positions of new posterior means mu (M, D) on this projection."""
        raise NotImplementedError

    def _by_neighbours(self, mu: np.ndarray, codes: LatentCodes, why: str) -> Placed:
        ids, distances = codes.nearest(np.atleast_2d(np.asarray(mu, dtype=np.float32)))
        weights = 1.0 / (distances + 1e-6)
        coords = (self.coords[ids] * weights[..., None]).sum(1) / weights.sum(1, keepdims=True)
        return Placed(coords.astype(np.float32), "nearest",
                      f"Placed by nearest neighbours: {why}, so each new point sits at the distance-weighted mean "
                      f"map position of its {ids.shape[1]} nearest data set codes in latent space.")


@dataclass(eq=False)
class DimsProjection(Projection):
    """Two latent dimensions as the map's axes: new codes are placed exactly."""

    METHOD: ClassVar[str] = "dims"

    @classmethod
    def fit(cls, codes: LatentCodes, key: str, dims: tuple[int, int] | None) -> Projection:
        first, second = int(dims[0]), int(dims[1])
        if not (0 <= first < codes.latent_dim and 0 <= second < codes.latent_dim):
            raise ProjectionError(f"Latent dimensions run from 1 to {codes.latent_dim}.")
        return cls(cls.METHOD, key, codes.mu[:, [first, second]].copy(),
                   (dimension_name(first), dimension_name(second)), dims=(first, second))

    def place(self, mu: np.ndarray, codes: LatentCodes) -> Placed:
        mu = np.atleast_2d(np.asarray(mu, dtype=np.float32))
        return Placed(mu[:, list(self.dims)], "exact", "Placed exactly: the map's axes are latent dimensions.")


@dataclass(eq=False)
class LatentProjection(DimsProjection):
    """The latent code itself: a 2-D latent as the plane, a 1-D latent as a strip (`strip_coords`)."""

    METHOD: ClassVar[str] = "latent"

    @classmethod
    def fit(cls, codes: LatentCodes, key: str, dims: tuple[int, int] | None) -> Projection:
        if codes.latent_dim == 1:
            return cls(cls.METHOD, key, strip_coords(codes.mu[:, 0], codes.labels),
                       ("z1", "label (rows spread a little)"),
                       note="A 1-D latent drawn as itself: z1 across, one row per label (spread a little so "
                            "that images with close codes stay visible).", dims=(0,))
        return cls(cls.METHOD, key, codes.mu.copy(), ("z1", "z2"), dims=(0, 1))

    def place(self, mu: np.ndarray, codes: LatentCodes) -> Placed:
        mu = np.atleast_2d(np.asarray(mu, dtype=np.float32))
        if mu.shape[1] == 1:
            coords = np.column_stack([mu[:, 0], np.full(len(mu), STRIP_NEW_ROW, dtype=np.float32)])
            return Placed(coords, "exact", f"Placed exactly along z1 (across); a new image has no label, so it sits on "
                                           f"its own row at {STRIP_NEW_ROW:g}.")
        return super().place(mu, codes)


@dataclass(eq=False)
class PcaProjection(Projection):
    """The two principal components of the codes (sklearn PCA); new codes go through its transform."""

    explained_variance: tuple[float, float] | None = None
    pca_mean: np.ndarray | None = None  # (D,)
    pca_components: np.ndarray | None = None  # (2, D)

    METHOD: ClassVar[str] = "pca"
    saved: ClassVar[bool] = True

    @classmethod
    def fit(cls, codes: LatentCodes, key: str, dims: tuple[int, int] | None) -> Projection:
        with import_lock:
            from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=0).fit(codes.mu)
        return cls._made(key, pca.transform(codes.mu).astype(np.float32), pca.explained_variance_ratio_,
                         pca.mean_.astype(np.float32), pca.components_.astype(np.float32))

    @classmethod
    def _made(cls, key: str, coords, ratio, mean, components, source: str = "computed") -> PcaProjection:
        ratio = tuple(float(r) for r in ratio)
        return cls(cls.METHOD, key, coords, (f"PC1 ({ratio[0]:.0%})", f"PC2 ({ratio[1]:.0%})"),
                   note=f"The two principal components explain {ratio[0]:.1%} + {ratio[1]:.1%} = {sum(ratio):.1%} of "
                        "the variance of the codes.",
                   source=source, explained_variance=ratio, pca_mean=mean, pca_components=components)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"coords": self.coords, "explained_variance": np.array(self.explained_variance),
                "pca_mean": self.pca_mean, "pca_components": self.pca_components}

    @classmethod
    def from_arrays(cls, key: str, arrays: dict[str, np.ndarray]) -> Projection | None:
        if not {"explained_variance", "pca_mean", "pca_components"} <= arrays.keys():
            return None
        return cls._made(key, arrays["coords"], arrays["explained_variance"], arrays["pca_mean"],
                         arrays["pca_components"], source="disk")

    def place(self, mu: np.ndarray, codes: LatentCodes) -> Placed:
        mu = np.atleast_2d(np.asarray(mu, dtype=np.float32))
        coords = (mu - self.pca_mean) @ self.pca_components.T
        return Placed(coords.astype(np.float32), "transform", "Placed with the PCA fitted on the data set (transform).")


@dataclass(eq=False)
class UmapProjection(Projection):
    """UMAP of the codes (`vae.projection.umap_map.UmapMap`); new codes go through its transform
    while the fitted reducer is in memory (it is never saved), else by nearest neighbours."""

    reducer: object | None = field(default=None, repr=False)  # a fitted UmapMap, only in memory
    refit_moved: float | None = None  # map units a UMAP refit moved points from this map (then it is not used)

    METHOD: ClassVar[str] = "umap"
    saved: ClassVar[bool] = True
    AXES: ClassVar[tuple[str, str]] = ("UMAP 1", "UMAP 2")

    @classmethod
    def fit(cls, codes: LatentCodes, key: str, dims: tuple[int, int] | None) -> Projection:
        reducer = UmapMap(codes.mu)
        settings = UMAP_SETTINGS
        note = (f"UMAP with {settings['n_neighbors']} neighbours, min_dist {settings['min_dist']}, "
                f"{settings['n_epochs']} epochs, seed {settings['random_state']} (the same codes give the same map).")
        return cls(cls.METHOD, key, np.asarray(reducer.embedding_, dtype=np.float32), cls.AXES, note=note,
                   reducer=reducer)

    def place(self, mu: np.ndarray, codes: LatentCodes) -> Placed:
        mu = np.atleast_2d(np.asarray(mu, dtype=np.float32))
        if self.reducer is not None:
            return Placed(self.reducer.transform(mu), "transform", "Placed with UMAP's transform of the fitted map.")
        if self.refit_moved is not None:
            return self._by_neighbours(mu, codes, "UMAP fitted again here does not reproduce this saved map (points "
                                                  f"would move up to {self.refit_moved:.2g} units; other library "
                                                  "versions made it), and the map you see must not move")
        return self._by_neighbours(mu, codes, "this UMAP map has no fitted transform in memory")


@dataclass(eq=False)
class TsneProjection(Projection):
    """t-SNE of the codes (sklearn; van der Maaten & Hinton 2008): no transform, so new codes are
    placed by their nearest neighbours in latent space."""

    METHOD: ClassVar[str] = "tsne"
    saved: ClassVar[bool] = True
    AXES: ClassVar[tuple[str, str]] = ("t-SNE 1", "t-SNE 2")

    @classmethod
    def fit(cls, codes: LatentCodes, key: str, dims: tuple[int, int] | None) -> Projection:
        with import_lock:
            from sklearn.manifold import TSNE

        perplexity = tsne_perplexity(len(codes.mu))
        coords = TSNE(n_components=2, perplexity=perplexity, init=TSNE_SETTINGS["init"],
                      random_state=TSNE_SETTINGS["random_state"]).fit_transform(codes.mu)
        return cls(cls.METHOD, key, coords.astype(np.float32), cls.AXES,
                   note=f"t-SNE with perplexity {perplexity:g}. Distances between clusters mean little; "
                        "new points cannot be transformed and are placed by nearest neighbours.")

    def place(self, mu: np.ndarray, codes: LatentCodes) -> Placed:
        return self._by_neighbours(mu, codes, "t-SNE cannot place new points")


PROJECTIONS: dict[str, type[Projection]] = {
    kind.METHOD: kind for kind in (LatentProjection, DimsProjection, PcaProjection, UmapProjection, TsneProjection)
}


def projection_key(method: str, dims: tuple[int, int] | None = None) -> str:
    """The name a projection is cached under: the method, with the two dimensions for "dims"."""
    if method not in METHODS:
        raise ProjectionError(f"Unknown projection '{method}'; choose one of {', '.join(METHODS)}.")
    if method == "dims":
        if dims is None or len(dims) != 2 or dims[0] == dims[1]:
            raise ProjectionError("Choose two different latent dimensions.")
        return f"dims-{int(dims[0])}-{int(dims[1])}"
    return method


def compute_projection(codes: LatentCodes, method: str, dims: tuple[int, int] | None = None) -> Projection:
    """Project every code in `codes` with `method` (see the module docstring); no caching here.

    Raises ProjectionError for a method these codes do not allow (`vae.map_options.why_not`).
    """
    key = projection_key(method, dims)
    reason = why_not(method, len(codes), codes.latent_dim, codes.distinct)
    if reason is not None:
        title = METHOD_TITLES[method]
        raise ProjectionError(f"{title[0].upper()}{title[1:]} is not offered for these codes: {reason}.")
    started = time.perf_counter()
    projection = PROJECTIONS[method].fit(codes, key, dims)
    projection.seconds = time.perf_counter() - started
    return projection


def strip_coords(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A 1-D latent as a strip (N, 2): z (N,) across, and up each image's label (N,) (0 for none)
    plus a seeded spread of +-0.3, so that images with equal codes do not hide one another."""
    spread = np.random.default_rng(0).uniform(-0.3, 0.3, size=len(z))
    return np.column_stack([z, np.maximum(labels, 0) + spread]).astype(np.float32)
