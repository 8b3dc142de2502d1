"""Exact nearest neighbours among codes that may repeat (twins: two images with the same code).

Data sets repeat pictures (`shapes` draws a square at r and r + 180 degrees identically; a
`folder:` set may hold a file twice), and a 1-D latent puts many images at nearly one value, so
"a point's first neighbour is itself" is false: with twins at distance 0 the search may list a
twin first. Everything that needs "the neighbours of a data set point other than itself"
(UMAP's graph) removes the point by its id, never by its column.
"""

from __future__ import annotations

import numpy as np


def neighbours_of_members(points: np.ndarray, k: int):
    """An exact scikit-learn `NearestNeighbors` index over points (N, D), and for every point its k
    nearest *other* points: (index, distances (N, k), ids (N, k)), nearest first, Euclidean.

    A point is dropped from its own list by its id; when k or more twins at distance 0 crowd it out
    of its k + 1 nearest, the farthest of those is dropped instead, so every row keeps k others.
    Raises ValueError when there are k points or fewer.
    """
    from sklearn.neighbors import NearestNeighbors

    size = len(points)
    if size <= k:
        raise ValueError(f"{k} neighbours need more than {k} points; there are {size}.")
    index = NearestNeighbors(n_neighbors=k + 1).fit(points)
    distances, ids = index.kneighbors(points)
    rows = np.arange(size)
    is_self = ids == rows[:, None]
    drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), k)
    keep = np.ones(ids.shape, dtype=bool)
    keep[rows, drop] = False
    return index, distances[keep].reshape(size, k), ids[keep].reshape(size, k)
