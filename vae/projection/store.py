"""The shared store of a checkpoint's maps: codes and projections cached in memory and on disk,
a lock per projection, and one background pool for the slow methods.

`ProjectionStore` caches everything per checkpoint: in memory, and on disk beside the checkpoint
in `<checkpoint>/projections/*.npz` (plain arrays, written atomically, read with
allow_pickle=False; each method writes and reads its own arrays, `vae.projection.methods`). A
per-key lock makes ten sessions asking at once compute a projection once; slow methods (UMAP,
t-SNE) run on a background thread so a page can show progress meanwhile.
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
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from vae.models import VAE
from vae.projection.codes import MAX_POINTS, LatentCodes, data_fingerprint, encode_dataset
from vae.projection.methods import PROJECTIONS, Placed, Projection, ProjectionError, compute_projection, projection_key

CACHE_VERSION = 2  # bump when a method's settings change, so old files on disk are recomputed
# A refitted UMAP replaces nothing on screen; it lends its transform to the map read from disk
# only when it reproduces that map to within this share of the map's width.
REPRODUCED_WITHIN = 1e-3

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
                codes = None if stored is None else LatentCodes.from_arrays(stored)
                if codes is not None and (codes.latent_dim != self.model.config.latent_dim
                                          or not self._codes_fit_dataset(codes)):
                    codes = None
                if codes is None:
                    codes = encode_dataset(self.model, self.dataset, max_points=self.max_points)
                    self._save("codes", codes.to_arrays())
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
        kind = PROJECTIONS[method]
        if not kind.saved:
            return None  # slices of the codes: nothing to save
        stored = _read_npz(self.folder / f"{key}.npz", self.fingerprint)
        if stored is None or "coords" not in stored or stored["coords"].shape != (len(codes), 2):
            return None
        return kind.from_arrays(key, stored)

    def _compute_and_save(self, key: str, method: str, dims, codes: LatentCodes) -> Projection:
        projection = compute_projection(codes, method, dims)
        if projection.saved:
            self._save(key, projection.to_arrays())
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
                raise ProjectionError(
                    f"There is no image #{i} on this map; its numbers run from 0 to {len(codes) - 1}.")
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
            raise ProjectionError(f"There is no image #{int(ids.max())} on this map; "
                                  f"its numbers run from 0 to {len(codes) - 1}.")
        mu = torch.from_numpy(codes.mu[ids])
        return self.model.decode_images(mu)
