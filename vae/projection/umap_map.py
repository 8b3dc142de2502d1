"""umap-learn on exact nearest neighbours: `UmapMap` fits a UMAP map of codes and transforms new ones.

McInnes, Healy & Melville 2018, "UMAP: Uniform Manifold Approximation and Projection".
"""

from __future__ import annotations

import warnings

import numpy as np

from vae.map_options import UMAP_NEIGHBOURS
from vae.projection.libraries import import_lock
from vae.projection.neighbours import neighbours_of_members

UMAP_SETTINGS = {"n_neighbors": UMAP_NEIGHBOURS, "min_dist": 0.1, "n_epochs": 200, "random_state": 0}


class UmapMap:
    """A fitted UMAP whose neighbours come from scikit-learn's exact search, with transform.

    UMAP is given the k-nearest-neighbour distances as a sparse "precomputed" matrix, so it never
    builds its own NN-descent index: that index's numba compilation costs minutes on a busy
    2-core machine the first time a data set has over 4,096 points. Exact search over at most
    10,000 codes takes well under a second. New points reach `transform` the same way.
    """

    def __init__(self, mu: np.ndarray):
        with import_lock:  # imported here: it takes seconds, and numba compiles on first use
            import sklearn.neighbors  # noqa: F401  (used by vae.projection.neighbours)
            import umap

        self.k = UMAP_SETTINGS["n_neighbors"]
        if len(mu) <= self.k + 1:
            raise ValueError(f"UMAP needs more than {self.k + 1} points.")  # `vae.map_options.why_not` says so first
        self.size = len(mu)
        # Each point's neighbours other than itself, found by id: with twins (identical codes) a
        # twin can come first, and UMAP refuses a point listed at any distance from itself.
        self.neighbours, distances, ids = neighbours_of_members(mu, self.k)
        graph = self._sparse(distances, ids)
        graph = graph.maximum(graph.T).tocsr()  # UMAP wants a symmetric matrix
        with warnings.catch_warnings():
            # "n_jobs overridden by setting random_state": the seed is on purpose (a reproducible map).
            warnings.simplefilter("ignore")
            self.reducer = umap.UMAP(n_components=2, metric="precomputed", **UMAP_SETTINGS).fit(graph)
        self.embedding_ = np.asarray(self.reducer.embedding_, dtype=np.float32)

    def _sparse(self, distances: np.ndarray, ids: np.ndarray):
        import scipy.sparse

        rows = np.repeat(np.arange(len(ids)), ids.shape[1])
        # A tiny offset keeps identical codes (distance 0) as stored entries of the sparse matrix.
        return scipy.sparse.csr_matrix((distances.ravel() + 1e-12, (rows, ids.ravel())), shape=(len(ids), self.size))

    def transform(self, mu: np.ndarray) -> np.ndarray:
        """Map positions (M, 2) of new codes mu (M, D), by UMAP's transform."""
        distances, ids = self.neighbours.kneighbors(np.atleast_2d(mu), n_neighbors=self.k)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "transforming new data with precomputed metric": intended
            return np.asarray(self.reducer.transform(self._sparse(distances, ids)), dtype=np.float32)
