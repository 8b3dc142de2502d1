"""2-D maps of the latent space: encode a data set once, project the codes, place new points.

A model's data set is encoded once into posterior means and sigmas (`LatentCodes`, z as (N, D)),
and each projection method turns the means into 2-D coordinates (`Projection`, (N, 2)):

    latent   the code itself (2-D latents only)
    dims     two chosen latent dimensions
    pca      principal components (sklearn), explained variance reported
    umap     UMAP (umap-learn); new points go through `transform`
    tsne     t-SNE (sklearn); it has no transform, so new points are placed at the mean map
             position of their nearest neighbours in latent space (and the app says so)

`ProjectionStore` caches all of it per checkpoint: in memory, and on disk beside the checkpoint
in `<checkpoint>/projections/*.npz` (plain arrays, written atomically, read with
allow_pickle=False). A per-key lock makes ten sessions asking at once compute a projection once;
slow methods (UMAP, t-SNE) run on a background thread so a page can show progress meanwhile.

umap-learn compiles itself with numba the first time it fits and transforms (tens of seconds),
so `start_umap_warmup()` does that on a tiny array on a daemon thread when the server starts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import os
import shutil
import tempfile
import threading
import time
import warnings
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from vae.history import dimension_name
from vae.losses import elbo_parts
from vae.map_options import MethodOption, distinct_codes, method_options, tsne_perplexity, why_not
from vae.models import VAE
from vae.neighbours import neighbours_of_members

METHODS = ("latent", "dims", "pca", "umap", "tsne")
METHOD_TITLES = {
    "latent": "the latent code itself",
    "dims": "two latent dimensions",
    "pca": "PCA",
    "umap": "UMAP",
    "tsne": "t-SNE",
}
SLOW_METHODS = ("umap", "tsne")
MAX_POINTS = 10_000  # larger data sets are mapped through a seeded random subset of this size
CACHE_VERSION = 2  # bump when a method's settings change, so old files on disk are recomputed
UMAP_SETTINGS = {"n_neighbors": 15, "min_dist": 0.1, "n_epochs": 200, "random_state": 0}
TSNE_SETTINGS = {"perplexity": 30.0, "init": "pca", "random_state": 0}
NEIGHBOURS_FOR_PLACING = 5
# A refitted UMAP replaces nothing on screen; it lends its transform to the map read from disk
# only when it reproduces that map to within this share of the map's width.
REPRODUCED_WITHIN = 1e-3


class ProjectionError(RuntimeError):
    """A projection that cannot be made (e.g. 'latent' on a 10-D model); the message is for the user."""


@dataclass(frozen=True, eq=False)
class LatentCodes:
    """A data set encoded by one model; row i is one image, its global id on the map is i.

    mu, sigma: (N, D) posterior means and standard deviations; labels: (N,) (-1 without labels);
    split: (N,) 0 for train, 1 for test; index: (N,) the row in its split; neg_elbo: (N,) the
    deterministic -ELBO (posterior mean decoded) in nats per image, for typicality percentiles.
    """

    mu: np.ndarray
    sigma: np.ndarray
    labels: np.ndarray
    split: np.ndarray
    index: np.ndarray
    neg_elbo: np.ndarray
    total_images: int  # images in the data set, before any subsampling to MAX_POINTS

    @property
    def latent_dim(self) -> int:
        return int(self.mu.shape[1])

    def __len__(self) -> int:
        return int(self.mu.shape[0])

    @functools.cached_property
    def distinct(self) -> int:
        """How many different codes there are (images with identical codes count once)."""
        return distinct_codes(self.mu)

    def options(self) -> list[MethodOption]:
        """Every projection method, offered or with the sentence saying why not (`vae.map_options`)."""
        return method_options(METHODS, len(self), self.latent_dim, self.distinct)

    def rows_of(self, which: str) -> np.ndarray:
        """Global ids of the "train", "test" or "all" rows."""
        if which == "all":
            return np.arange(len(self))
        return np.flatnonzero(self.split == {"train": 0, "test": 1}[which])

    def nearest(self, mu: np.ndarray, k: int = NEIGHBOURS_FOR_PLACING) -> tuple[np.ndarray, np.ndarray]:
        """(ids, distances), each (M, min(k, N)): the codes nearest to each row of mu (M, D), Euclidean,
        nearest first; codes at equal distance (twins) in id order."""
        mu = np.atleast_2d(np.asarray(mu, dtype=np.float64))
        codes = self.mu.astype(np.float64)
        k = min(k, len(self))
        # |a - b|^2 = |a|^2 - 2ab + |b|^2 in float64: in float32 the cancellation blurs the order of
        # close neighbours; the data sets here are small enough for one matrix product.
        squared = (mu**2).sum(1, keepdims=True) - 2.0 * mu @ codes.T + (codes**2).sum(1)[None, :]
        squared = np.maximum(squared, 0.0)
        ids = np.argsort(squared, axis=1, kind="stable")[:, :k]
        distances = np.sqrt(np.maximum(np.take_along_axis(squared, ids, axis=1), 0.0))
        return ids, distances


def _subset(n: int, limit: int = MAX_POINTS) -> np.ndarray | None:
    """Seeded random rows when a split is too large to map whole, else None (use them all)."""
    if n <= limit:
        return None
    return np.sort(np.random.default_rng(0).choice(n, size=limit, replace=False))


def encoded_rows(sizes: tuple[int, int], max_points: int = MAX_POINTS) -> list[np.ndarray]:
    """The rows of the train and test splits (of these sizes) that a map encodes: all of them, or a
    seeded share of each when there are more than `max_points` in all."""
    total = sum(sizes)
    share = max_points / total if total > max_points else 1.0
    rows = []
    for size in sizes:
        keep = _subset(size, max(1, int(size * share)))
        rows.append(np.arange(size) if keep is None else keep)
    return rows


def data_fingerprint(dataset, max_points: int = MAX_POINTS) -> str:
    """Identifies the images a map is made of: a hash of the encoded images, their labels and the
    split sizes. A `folder:` set can change under a checkpoint (pictures added or removed); its old
    codes would then point at other images, or past the end."""
    splits = [dataset.split("train"), dataset.split("test")]
    digest = hashlib.sha256(repr([tuple(images.shape) for images, _ in splits]).encode())
    for (images, labels), rows in zip(splits, encoded_rows((len(splits[0][0]), len(splits[1][0])), max_points)):
        picked = torch.from_numpy(rows)
        digest.update(np.ascontiguousarray(images[picked].float().numpy()).tobytes())
        digest.update(b"-" if labels is None else np.ascontiguousarray(labels[picked].numpy()).tobytes())
    return digest.hexdigest()[:32]


@torch.no_grad()
def encode_dataset(model: VAE, dataset, batch_size: int = 500, max_points: int = MAX_POINTS) -> LatentCodes:
    """Encode train and test images of `dataset` (at most `max_points` in all, seeded) with `model`."""
    train_images, train_labels = dataset.split("train")
    test_images, test_labels = dataset.split("test")
    total = len(train_images) + len(test_images)
    rows = encoded_rows((len(train_images), len(test_images)), max_points)
    parts = []
    for split_id, (images, labels) in enumerate(((train_images, train_labels), (test_images, test_labels))):
        index = rows[split_id]
        mus, sigmas, nelbos = [], [], []
        for start in range(0, len(index), batch_size):
            batch = images[torch.from_numpy(index[start:start + batch_size])].float()
            posterior = model.encode(batch)
            mus.append(posterior.mean.numpy())
            sigmas.append(posterior.stddev.numpy())
            nelbos.append(elbo_parts(model, batch, sample=False).total.numpy())
        label_array = labels.numpy()[index] if labels is not None else np.full(len(index), -1)
        parts.append((np.concatenate(mus), np.concatenate(sigmas), label_array, np.full(len(index), split_id), index,
                      np.concatenate(nelbos)))
    mu, sigma, labels, split, index, neg_elbo = (np.concatenate(column) for column in zip(*parts))
    return LatentCodes(mu=mu.astype(np.float32), sigma=sigma.astype(np.float32), labels=labels.astype(np.int64),
                       split=split.astype(np.int8), index=index.astype(np.int64), neg_elbo=neg_elbo.astype(np.float32),
                       total_images=total)


@dataclass(frozen=True)
class Placed:
    """New points on a map: coords (M, 2) and how they got there ("exact", "transform", "nearest")."""

    coords: np.ndarray
    how: str
    note: str


@dataclass(eq=False)
class Projection:
    """2-D coordinates (N, 2) of every row of a `LatentCodes`, with what is needed to place new codes."""

    method: str
    key: str
    coords: np.ndarray
    axis_titles: tuple[str, str]
    note: str = ""
    seconds: float = 0.0
    source: str = "computed"  # "computed" here, or "disk"
    dims: tuple[int, int] | None = None
    explained_variance: tuple[float, float] | None = None
    pca_mean: np.ndarray | None = None
    pca_components: np.ndarray | None = None
    reducer: object | None = field(default=None, repr=False)  # a fitted UmapMap, only in memory
    refit_moved: float | None = None  # map units a UMAP refit moved points from this map (then it is not used)

    @property
    def title(self) -> str:
        return METHOD_TITLES[self.method]

    def place(self, mu: np.ndarray, codes: LatentCodes) -> Placed:
        """Map positions of new posterior means mu (M, D) on this projection."""
        mu = np.atleast_2d(np.asarray(mu, dtype=np.float32))
        if self.method == "latent" and mu.shape[1] == 1:
            coords = np.column_stack([mu[:, 0], np.full(len(mu), STRIP_NEW_ROW, dtype=np.float32)])
            return Placed(coords, "exact", f"Placed exactly along z1 (across); a new image has no label, so it sits on "
                                           f"its own row at {STRIP_NEW_ROW:g}.")
        if self.method in ("latent", "dims"):
            return Placed(mu[:, list(self.dims)], "exact", "Placed exactly: the map's axes are latent dimensions.")
        if self.method == "pca":
            coords = (mu - self.pca_mean) @ self.pca_components.T
            return Placed(coords.astype(np.float32), "transform", "Placed with the PCA fitted on the data set (transform).")
        if self.method == "umap" and self.reducer is not None:
            return Placed(self.reducer.transform(mu), "transform", "Placed with UMAP's transform of the fitted map.")
        ids, distances = codes.nearest(mu)
        weights = 1.0 / (distances + 1e-6)
        coords = (self.coords[ids] * weights[..., None]).sum(1) / weights.sum(1, keepdims=True)
        if self.method == "tsne":
            why = "t-SNE cannot place new points"
        elif self.refit_moved is not None:
            why = (f"UMAP fitted again here does not reproduce this saved map (points would move up to "
                   f"{self.refit_moved:.2g} units; other library versions made it), and the map you see must not move")
        else:
            why = "this UMAP map has no fitted transform in memory"
        return Placed(coords.astype(np.float32), "nearest",
                      f"Placed by nearest neighbours: {why}, so each new point sits at the distance-weighted mean "
                      f"map position of its {ids.shape[1]} nearest data set codes in latent space.")


def projection_key(method: str, dims: tuple[int, int] | None = None) -> str:
    if method not in METHODS:
        raise ProjectionError(f"Unknown projection '{method}'; choose one of {', '.join(METHODS)}.")
    if method == "dims":
        if dims is None or len(dims) != 2 or dims[0] == dims[1]:
            raise ProjectionError("Choose two different latent dimensions.")
        return f"dims-{int(dims[0])}-{int(dims[1])}"
    return method


def compute_projection(codes: LatentCodes, method: str, dims: tuple[int, int] | None = None) -> Projection:
    """Project every code in `codes` with `method` (see the module docstring); no caching here."""
    key = projection_key(method, dims)
    reason = why_not(method, len(codes), codes.latent_dim, codes.distinct)
    if reason is not None:
        title = METHOD_TITLES[method]
        raise ProjectionError(f"{title[0].upper()}{title[1:]} is not offered for these codes: {reason}.")
    started = time.perf_counter()
    mu = codes.mu
    if method == "latent" and codes.latent_dim == 1:
        projection = Projection(method, key, strip_coords(mu[:, 0], codes.labels), ("z1", "label (rows spread a little)"),
                                note="A 1-D latent drawn as itself: z1 across, one row per label (spread a little so "
                                     "that images with close codes stay visible).", dims=(0,))
    elif method == "latent":
        projection = Projection(method, key, mu.copy(), ("z1", "z2"), dims=(0, 1))
    elif method == "dims":
        first, second = int(dims[0]), int(dims[1])
        if not (0 <= first < codes.latent_dim and 0 <= second < codes.latent_dim):
            raise ProjectionError(f"Latent dimensions run from 1 to {codes.latent_dim}.")
        projection = Projection(method, key, mu[:, [first, second]].copy(), (dimension_name(first), dimension_name(second)), dims=(first, second))
    elif method == "pca":
        with _import_lock:
            from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=0).fit(mu)
        ratio = tuple(float(r) for r in pca.explained_variance_ratio_)
        projection = Projection(
            method, key, pca.transform(mu).astype(np.float32), (f"PC1 ({ratio[0]:.0%})", f"PC2 ({ratio[1]:.0%})"),
            note=f"The two principal components explain {ratio[0]:.1%} + {ratio[1]:.1%} = {sum(ratio):.1%} of the variance of the codes.",
            explained_variance=ratio, pca_mean=pca.mean_.astype(np.float32), pca_components=pca.components_.astype(np.float32),
        )
    elif method == "umap":
        reducer = _fit_umap(mu)
        projection = Projection(method, key, np.asarray(reducer.embedding_, dtype=np.float32), ("UMAP 1", "UMAP 2"),
                                note=_umap_note(), reducer=reducer)
    else:
        with _import_lock:
            from sklearn.manifold import TSNE

        perplexity = tsne_perplexity(len(mu))
        coords = TSNE(n_components=2, perplexity=perplexity, init=TSNE_SETTINGS["init"],
                      random_state=TSNE_SETTINGS["random_state"]).fit_transform(mu)
        projection = Projection(method, key, coords.astype(np.float32), ("t-SNE 1", "t-SNE 2"),
                                note=f"t-SNE with perplexity {perplexity:g}. Distances between clusters mean little; "
                                     "new points cannot be transformed and are placed by nearest neighbours.")
    projection.seconds = time.perf_counter() - started
    return projection


STRIP_NEW_ROW = -1.0  # the row of a 1-D strip where new (unlabelled) images are placed


def strip_coords(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A 1-D latent as a strip (N, 2): z (N,) across, and up each image's label (N,) (0 for none)
    plus a seeded spread of +-0.3, so that images with equal codes do not hide one another."""
    spread = np.random.default_rng(0).uniform(-0.3, 0.3, size=len(z))
    return np.column_stack([z, np.maximum(labels, 0) + spread]).astype(np.float32)


def _umap_note() -> str:
    settings = UMAP_SETTINGS
    return (f"UMAP with {settings['n_neighbors']} neighbours, min_dist {settings['min_dist']}, "
            f"{settings['n_epochs']} epochs, seed {settings['random_state']} (the same codes give the same map).")


class UmapMap:
    """A fitted UMAP whose neighbours come from scikit-learn's exact search, with transform.

    UMAP is given the k-nearest-neighbour distances as a sparse "precomputed" matrix, so it never
    builds its own NN-descent index: that index's numba compilation costs minutes on a busy
    2-core machine the first time a data set has over 4,096 points. Exact search over at most
    10,000 codes takes well under a second. New points reach `transform` the same way.
    """

    def __init__(self, mu: np.ndarray):
        with _import_lock:  # imported here: it takes seconds, and numba compiles on first use
            import sklearn.neighbors  # noqa: F401  (used by vae.neighbours)
            import umap

        self.k = UMAP_SETTINGS["n_neighbors"]
        if len(mu) <= self.k + 1:
            raise ProjectionError(f"UMAP needs more than {self.k + 1} points.")
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


def _fit_umap(mu: np.ndarray) -> UmapMap:
    return UmapMap(mu)


# ---------------------------------------------------------------------------------------------
# The UMAP warm-up: numba compiles umap-learn's and pynndescent's kernels on first use.

@dataclass
class WarmupStatus:
    """Where the UMAP warm-up is: stage is "not started", "importing", "compiling fit",
    "compiling transform", "ready" or "failed"; step counts the stages done of `steps`."""

    stage: str = "not started"
    step: int = 0
    steps: int = 3
    started: float | None = None
    finished: float | None = None
    error: str | None = None

    @property
    def ready(self) -> bool:
        return self.stage == "ready"

    @property
    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or time.monotonic()) - self.started


_warmup = WarmupStatus()
# Two threads importing intertwined packages at once can each get the other's module half made
# ("partially initialized module 'pandas' has no attribute 'Series'", seen here when the warm-up
# imported umap while a page drew its first plotly chart). So the packages shared with the
# pages are imported on the calling thread before the warm-up starts, and every import of umap
# or scikit-learn in this module holds this lock.
_import_lock = threading.Lock()
SHARED_IMPORTS = ("pandas", "scipy.sparse", "sklearn.neighbors", "sklearn.decomposition", "sklearn.manifold", "sklearn.datasets")
_warmup_lock = threading.Lock()
_warmup_done = threading.Event()


def umap_warmup_status() -> WarmupStatus:
    """A snapshot of the warm-up's progress."""
    with _warmup_lock:
        return WarmupStatus(**vars(_warmup))


def _set_warmup(**changes) -> None:
    with _warmup_lock:
        for name, value in changes.items():
            setattr(_warmup, name, value)


def _run_umap_warmup(delay: float) -> None:
    try:
        # The first visitor's page runs first: numba's compiler is mostly Python and holds the GIL.
        time.sleep(delay)
        _set_warmup(stage="importing", step=0)
        with _import_lock:
            import umap  # noqa: F401  (13 s on a fresh install: the first stage shown)

        rng = np.random.default_rng(0)
        points = rng.normal(size=(64, 4)).astype(np.float32)
        _set_warmup(stage="compiling fit", step=1)
        # The very path every map takes (precomputed neighbours), on 64 points: the fuzzy graph,
        # the layout optimiser and the transform get compiled.
        fitted = UmapMap(points)
        _set_warmup(stage="compiling transform", step=2)
        fitted.transform(points[:4] + 0.01)
        _set_warmup(stage="ready", step=3, finished=time.monotonic())
    except Exception as error:  # the map still works without UMAP; the page shows why
        _set_warmup(stage="failed", error=f"{type(error).__name__}: {error}", finished=time.monotonic())
    finally:
        _warmup_done.set()


def start_umap_warmup(delay: float = 2.0) -> WarmupStatus:
    """Start compiling umap-learn on a daemon thread (once per process), `delay` seconds from now.

    Streamlit has no server-start hook: app.py calls this, so it starts with the first visit.
    """
    with _warmup_lock:
        if _warmup.started is None:
            import importlib

            with _import_lock:  # about a second, once per server process
                for name in SHARED_IMPORTS:
                    importlib.import_module(name)
            _warmup.started = time.monotonic()
            _warmup.stage = "importing"
            threading.Thread(target=_run_umap_warmup, args=(delay,), name="umap-warmup", daemon=True).start()
    return umap_warmup_status()


def wait_for_umap_warmup(timeout: float | None = None) -> bool:
    """Block until the warm-up has finished (ready or failed); False on timeout."""
    return _warmup_done.wait(timeout)


# ---------------------------------------------------------------------------------------------
# Caching per checkpoint: memory, disk, locks, background jobs.

# Slow projections of every checkpoint share two worker threads: two cores here, and a second
# worker keeps one model's t-SNE from holding up another's UMAP.
_background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="projection")
_submitted: list[Future] = []


def _submit(function, *args) -> Future:
    """Run on the shared background pool, remembered for wait_for_projections()."""
    job = _background.submit(function, *args)
    _submitted[:] = [*(f for f in _submitted if not f.done()), job]
    return job


def wait_for_projections(timeout: float | None = None) -> bool:
    """Block until every background projection submitted so far has finished; False on timeout."""
    from concurrent.futures import wait

    _, pending = wait(list(_submitted), timeout=timeout)
    return not pending


def weights_fingerprint(checkpoint_path: str | Path) -> str:
    """Identifies the weights a cache was computed from: a hash of the weights' and config's contents.

    Contents, not modification times, so the maps shipped beside `checkpoints/` still match after a
    git clone. The files are hashed again only when their size or modification time changes.
    """
    path = Path(checkpoint_path)
    stamp = []
    for name in _FINGERPRINTED:
        try:
            stat = (path / name).stat()
            stamp.append((stat.st_size, stat.st_mtime_ns))
        except OSError:
            stamp.append(None)
    return _content_fingerprint(str(path), tuple(stamp))


_FINGERPRINTED = ("model.safetensors", "config.json")


@functools.lru_cache(maxsize=256)
def _content_fingerprint(path: str, stamp: tuple) -> str:
    digest = hashlib.sha256()
    for name in _FINGERPRINTED:
        try:
            digest.update((Path(path) / name).read_bytes())
        except OSError:
            digest.update(b"missing")
        digest.update(b"\0")
    return f"v{CACHE_VERSION}:{digest.hexdigest()[:32]}"


def _write_npz_atomically(path: Path, arrays: dict[str, np.ndarray]) -> None:
    # Not parents=True: a checkpoint deleted meanwhile must not come back as a folder of maps only.
    path.parent.mkdir(exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp", delete=False)
    try:
        with handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, 0o644)  # like any other file in the checkpoint, not private to this user
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def _read_npz(path: Path, fingerprint: str) -> dict[str, np.ndarray] | None:
    """The arrays of a cache file written for these weights, or None (missing, stale, damaged)."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError):
        return None
    if str(arrays.get("fingerprint", "")) != fingerprint:
        return None
    return arrays


class ProjectionStore:
    """Latent codes and projections of one checkpoint, cached in memory and in `<checkpoint>/projections/`.

    Thread-safe: every session of the app shares one store per checkpoint. `projection()` computes
    each key at most once at a time (later callers wait for, then reuse, the first one's result);
    `request()` does the same on a background thread and returns a Future for slow methods.
    """

    def __init__(self, checkpoint_path: str | Path, model: VAE, dataset, max_points: int = MAX_POINTS):
        self.path = Path(checkpoint_path)
        self.folder = self.path / "projections"
        self.model = model
        self.dataset = dataset
        self.max_points = max_points
        # The weights and the images: a folder set that changed under the checkpoint makes new maps.
        self.weights_fingerprint = weights_fingerprint(self.path)
        self.fingerprint = f"{self.weights_fingerprint}:{data_fingerprint(dataset, max_points)}"
        self.disk_error: str | None = None  # why the cache could not be written, if it could not
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._codes: LatentCodes | None = None
        self._projections: dict[str, Projection] = {}
        self._jobs: dict[str, Future] = {}
        self._job_started: dict[str, float] = {}  # when a background job began running (time.monotonic)

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _save(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        if weights_fingerprint(self.path) != self.weights_fingerprint:
            return  # the checkpoint was deleted or replaced while this computed: nothing to write back to
        try:
            _write_npz_atomically(self.folder / f"{name}.npz", {**arrays, "fingerprint": np.array(self.fingerprint)})
        except FileNotFoundError:
            return  # deleted just now
        except OSError as error:  # e.g. a read-only checkpoints folder: the memory cache still works
            self.disk_error = f"Could not save the projection cache in {self.folder}: {error.strerror or error}."
            return
        if not (self.path / "config.json").exists():  # deleted while the file was written: take it back out
            shutil.rmtree(self.folder, ignore_errors=True)
            with contextlib.suppress(OSError):
                self.path.rmdir()

    def codes(self) -> LatentCodes:
        """The data set encoded by the model (computed once, then from memory or disk)."""
        if self._codes is not None:
            return self._codes
        with self._lock("codes"):
            if self._codes is None:
                stored = _read_npz(self.folder / "codes.npz", self.fingerprint)
                fields = ("mu", "sigma", "labels", "split", "index", "neg_elbo", "total_images")
                codes = None
                if stored is not None and all(name in stored for name in fields) and stored["mu"].ndim == 2 \
                        and stored["mu"].shape[1] == self.model.config.latent_dim:
                    codes = LatentCodes(**{name: stored[name] for name in fields[:-1]}, total_images=int(stored["total_images"]))
                    if not self._codes_fit_dataset(codes):
                        codes = None
                if codes is None:
                    codes = encode_dataset(self.model, self.dataset, max_points=self.max_points)
                    self._save("codes", {name: getattr(codes, name) for name in fields[:-1]}
                               | {"total_images": np.array(codes.total_images)})
                self._codes = codes
        return self._codes

    def _codes_fit_dataset(self, codes: LatentCodes) -> bool:
        """Whether every code's (split, row) names an image of this data set."""
        for split_id, name in enumerate(("train", "test")):
            size = len(self.dataset.split(name)[0])
            rows = codes.index[codes.split == split_id]
            if len(rows) and not (0 <= rows.min() and rows.max() < size):
                return False
        return True

    def cached(self, method: str, dims: tuple[int, int] | None = None) -> Projection | None:
        """The projection if it is in memory already, else None (never computes)."""
        return self._projections.get(projection_key(method, dims))

    def projection(self, method: str, dims: tuple[int, int] | None = None) -> Projection:
        """The projection `method` of the codes: from memory, else from disk, else computed (and saved)."""
        key = projection_key(method, dims)
        found = self._projections.get(key)
        if found is not None:
            return found
        with self._lock(key):
            found = self._projections.get(key)
            if found is None:
                codes = self.codes()
                found = self._load(key, method, codes) or self._compute_and_save(key, method, dims, codes)
                self._projections[key] = found
                if method == "umap" and found.reducer is None:
                    # A map read from disk cannot place uploads until UMAP is refitted (seconds): start that
                    # now, while the student looks at the map, not when they upload.
                    _submit(self.umap_with_transform)
        return found

    def request(self, method: str, dims: tuple[int, int] | None = None) -> Future:
        """The projection as a Future: done at once when cached, else computed on a background thread."""
        key = projection_key(method, dims)
        found = self._projections.get(key)
        if found is not None:
            done: Future = Future()
            done.set_result(found)
            return done
        with self._guard:
            job = self._jobs.get(key)
            if job is None or (job.done() and job.exception() is not None):
                self._job_started.pop(key, None)
                job = self._jobs[key] = _submit(self._run_job, key, method, dims)
            return job

    def _run_job(self, key: str, method: str, dims) -> Projection:
        self._job_started[key] = time.monotonic()
        return self.projection(method, dims)

    def running_for(self, method: str, dims: tuple[int, int] | None = None) -> float | None:
        """Seconds the background job of this projection has been running, or None while it waits
        for a worker (or when there is no job)."""
        started = self._job_started.get(projection_key(method, dims))
        return None if started is None else time.monotonic() - started

    def _load(self, key: str, method: str, codes: LatentCodes) -> Projection | None:
        if method not in ("pca", "umap", "tsne"):
            return None  # slices of the codes: nothing to save
        stored = _read_npz(self.folder / f"{key}.npz", self.fingerprint)
        if stored is None or "coords" not in stored or stored["coords"].shape != (len(codes), 2):
            return None
        if method == "pca":
            ratio = tuple(float(r) for r in stored["explained_variance"])
            return Projection(method, key, stored["coords"], (f"PC1 ({ratio[0]:.0%})", f"PC2 ({ratio[1]:.0%})"),
                              note=f"The two principal components explain {ratio[0]:.1%} + {ratio[1]:.1%} = {sum(ratio):.1%} of the variance of the codes.",
                              source="disk", explained_variance=ratio, pca_mean=stored["pca_mean"], pca_components=stored["pca_components"])
        titles = ("UMAP 1", "UMAP 2") if method == "umap" else ("t-SNE 1", "t-SNE 2")
        return Projection(method, key, stored["coords"], titles, note=str(stored["note"]), source="disk")

    def _compute_and_save(self, key: str, method: str, dims, codes: LatentCodes) -> Projection:
        projection = compute_projection(codes, method, dims)
        if method == "pca":
            self._save(key, {"coords": projection.coords, "explained_variance": np.array(projection.explained_variance),
                             "pca_mean": projection.pca_mean, "pca_components": projection.pca_components})
        elif method in ("umap", "tsne"):
            self._save(key, {"coords": projection.coords, "note": np.array(projection.note)})
        return projection

    def umap_with_transform(self) -> Projection:
        """The UMAP projection with a fitted reducer (refitted, same seed, when it came from disk),
        its coordinates always those first shown; `refit_moved` set instead when a refit does not
        reproduce them."""
        projection = self.projection("umap")
        if projection.reducer is not None:
            return projection
        with self._lock("umap"):
            current = self._projections["umap"]
            if current.reducer is None and current.refit_moved is None:
                refit = compute_projection(self.codes(), "umap")
                # What a student looks at never moves: the refit only lends its transform to the
                # map on screen, and only when it reproduces that map (the same seed on the same
                # library versions does, exactly). Otherwise uploads are placed by nearest neighbours.
                moved = float(np.abs(refit.coords - current.coords).max())
                width = float(np.ptp(current.coords, axis=0).max()) or 1.0
                if moved <= REPRODUCED_WITHIN * width:
                    current = dataclasses.replace(current, reducer=refit.reducer)
                else:
                    current = dataclasses.replace(current, refit_moved=moved)
                self._projections["umap"] = current
        return current

    def place(self, projection: Projection, mu: np.ndarray) -> Placed:
        """New posterior means (M, D) on `projection` (UMAP refits when its reducer is not in memory)."""
        if projection.method == "umap" and projection.reducer is None and projection.refit_moved is None:
            projection = self.umap_with_transform()
        return projection.place(mu, self.codes())

    @torch.no_grad()
    def images(self, ids) -> torch.Tensor:
        """Data set images (N, C, H, W) of global map ids.

        Raises ProjectionError for an id that is not on the map or whose image is not in the data set.
        """
        codes = self.codes()
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        out = []
        for i in ids:
            if not 0 <= i < len(codes):
                raise ProjectionError(f"There is no image #{i} on this map; its numbers run from 0 to {len(codes) - 1}.")
            images, _ = self.dataset.split("train" if codes.split[i] == 0 else "test")
            row = int(codes.index[i])
            if not 0 <= row < len(images):  # never a stale row of another version of the data set
                raise ProjectionError(f"Image #{i} is not in this data set any more; reload the page to map it again.")
            out.append(images[row])
        return torch.stack(out) if out else torch.empty((0, *self.model.config.image_shape))

    @torch.no_grad()
    def reconstructions(self, ids) -> torch.Tensor:
        """Images (N, C, H, W) decoded from the posterior means of global map ids (ProjectionError off the map)."""
        codes = self.codes()
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) and not (0 <= ids.min() and ids.max() < len(codes)):
            raise ProjectionError(f"There is no image #{int(ids.max())} on this map; its numbers run from 0 to {len(codes) - 1}.")
        mu = torch.from_numpy(codes.mu[ids])
        return self.model.decode_images(mu)


def main(argv: list[str] | None = None) -> int:
    """`python -m vae.projection CHECKPOINT...`: compute and save a checkpoint's maps ahead of time,
    so a class opening it never waits (the shipped models' maps are made this way)."""
    import argparse
    import sys

    from vae.checkpoints import CheckpointError, load_checkpoint
    from vae.datasets import DataError, load_dataset

    parser = argparse.ArgumentParser(prog="python -m vae.projection", description=main.__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path, help="checkpoint folders")
    parser.add_argument("--methods", nargs="+", default=["pca", "umap", "tsne"], choices=["pca", "umap", "tsne"])
    args = parser.parse_args(argv)
    for path in args.checkpoints:
        try:
            checkpoint = load_checkpoint(path)
            dataset = load_dataset(checkpoint.dataset_name, checkpoint.config["train"].get("data_dir"))
        except (CheckpointError, DataError) as error:
            print(f"error: {path}: {error}", file=sys.stderr)
            return 2
        store = ProjectionStore(path, checkpoint.model, dataset)
        started = time.perf_counter()
        codes = store.codes()
        print(f"{path.name}: {len(codes):,} codes ({time.perf_counter() - started:.1f} s)")
        options = {option.method: option for option in codes.options()}
        for method in args.methods:
            if not options[method].offered:
                print(f"{path.name}: {method} not offered: {options[method].reason}")
                continue
            projection = store.projection(method)
            print(f"{path.name}: {method} ({projection.source}, {projection.seconds:.1f} s)")
        if store.disk_error:
            print(f"error: {store.disk_error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
