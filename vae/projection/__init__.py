"""2-D maps of the latent space: encode a data set once, project the codes, place new points.

A model's data set is encoded once into posterior means and sigmas (`LatentCodes`, z as (N, D)),
and each projection method turns the means into 2-D coordinates (`Projection`, (N, 2)):

    codes.py       encoding a data set's codes (`encode_dataset`, `LatentCodes`)
    methods.py     the projection methods: latent, dims, PCA, UMAP, t-SNE, each a class that fits,
                   places new codes, and saves and loads itself
    umap_map.py    UMAP on exact nearest neighbours (`UmapMap`), neighbours.py its neighbour graph
    store.py       the shared store per checkpoint: caches in memory and on disk, locks, the pool
    warmup.py      the server's one warm-up: heavy imports, then umap-learn's numba compilation
    libraries.py   the lock every import of umap and scikit-learn here holds
    __main__.py    `python -m vae.projection CHECKPOINT...`: make a checkpoint's maps ahead of time

The names below are imported from here (`from vae.projection import ProjectionStore`) but loaded
on first use: the first page imports `vae.projection.warmup` to start the warm-up, and that must
not import PyTorch on the page's own thread.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "codes": ("MAX_POINTS", "LatentCodes", "data_fingerprint", "encode_dataset", "encoded_rows"),
    "methods": ("METHODS", "METHOD_TITLES", "SLOW_METHODS", "Placed", "Projection", "ProjectionError",
                "compute_projection", "projection_key"),
    "store": ("CACHE_VERSION", "REPRODUCED_WITHIN", "ProjectionStore", "wait_for_projections", "weights_fingerprint"),
    "warmup": ("WarmupStatus", "start_umap_warmup", "start_warmup", "umap_warmup_status", "wait_for_libraries",
               "wait_for_umap_warmup"),
    "__main__": ("main",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # found directly next time
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
