"""The one lock around importing umap and scikit-learn, shared by the projection methods and the warm-up.

Two threads importing intertwined packages at once can each get the other's module half made
("partially initialized module 'pandas' has no attribute 'Series'", seen here when the warm-up
imported umap while a page drew its first plotly chart). So the packages shared with the pages
(`SHARED_IMPORTS`) are imported on the calling thread before the UMAP warm-up starts
(`vae.projection.warmup`), and every import of umap or scikit-learn in this package holds this lock.
"""

from __future__ import annotations

import threading

import_lock = threading.Lock()
SHARED_IMPORTS = ("pandas", "scipy.sparse", "sklearn.neighbors", "sklearn.decomposition", "sklearn.manifold",
                  "sklearn.datasets")
