"""vae.projection: encoding once, every projection method, the caches in memory and on disk, locks."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from vae.checkpoints import load_checkpoint
from vae.datasets import load_dataset
from vae.projection import LatentCodes, ProjectionError, ProjectionStore, compute_projection
from vae.projection import store as projection_module
from vae.projection.store import _read_npz


def small_codes(n: int = 240, dim: int = 6, seed: int = 0) -> LatentCodes:
    """Three well separated clusters of codes, as a model with a `dim`-D latent might make."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    centres = rng.normal(scale=4.0, size=(3, dim))
    mu = (centres[labels] + rng.normal(scale=0.3, size=(n, dim))).astype(np.float32)
    return LatentCodes(mu=mu, sigma=np.full_like(mu, 0.1), labels=labels.astype(np.int64), split=(np.arange(n) % 5 == 0).astype(np.int8),
                       index=np.arange(n), neg_elbo=rng.normal(100, 10, n).astype(np.float32), total_images=n)


def test_codes_cover_both_splits_and_point_back_to_their_images(digits_store):
    codes = digits_store.codes()
    dataset = digits_store.dataset
    assert len(codes) == len(dataset.train_images) + len(dataset.test_images)
    assert codes.mu.shape == codes.sigma.shape == (len(codes), 2)
    assert (codes.sigma > 0).all() and np.isfinite(codes.neg_elbo).all()
    assert (codes.split == 1).sum() == len(dataset.test_images)
    some_test_id = int(np.flatnonzero(codes.split == 1)[3])
    assert torch.equal(digits_store.images([some_test_id])[0], dataset.test_images[codes.index[some_test_id]])
    assert codes.labels[some_test_id] == int(dataset.test_labels[codes.index[some_test_id]])
    with torch.no_grad():
        expected = digits_store.model.encode(dataset.test_images[codes.index[some_test_id]][None]).mean[0].numpy()
    np.testing.assert_allclose(codes.mu[some_test_id], expected, atol=1e-5)


def test_large_data_sets_are_mapped_through_a_seeded_subset(checkpoint_root):
    checkpoint = load_checkpoint(checkpoint_root / "digits-mlp-z2")
    dataset = load_dataset("digits")
    store = ProjectionStore(checkpoint.path, checkpoint.model, dataset, max_points=500)
    codes = store.codes()
    assert len(codes) <= 500 and codes.total_images == 1797
    assert set(np.unique(codes.split)) == {0, 1}


def test_cache_files_are_plain_npz_and_a_second_store_reads_them(digits_store):
    first = digits_store.projection("pca")
    files = sorted(p.name for p in digits_store.folder.iterdir())
    assert files == ["codes.npz", "pca.npz"]  # atomic writes leave no temporary files behind
    for name in files:
        with np.load(digits_store.folder / name, allow_pickle=False) as stored:  # raises on any pickled object
            assert all(stored[key].dtype != object for key in stored.files)
    again = ProjectionStore(digits_store.path, digits_store.model, digits_store.dataset)
    second = again.projection("pca")
    assert second.source == "disk"
    np.testing.assert_array_equal(first.coords, second.coords)
    np.testing.assert_array_equal(again.codes().mu, digits_store.codes().mu)


def test_new_weights_make_the_disk_cache_stale(digits_store):
    digits_store.projection("pca")
    weights = digits_store.path / "model.safetensors"
    content = bytearray(weights.read_bytes())
    content[-1] ^= 0xFF  # other weights, same size
    weights.write_bytes(bytes(content))
    fresh = ProjectionStore(digits_store.path, digits_store.model, digits_store.dataset)
    assert fresh.fingerprint != digits_store.fingerprint
    assert fresh.projection("pca").source == "computed"


def test_the_disk_cache_survives_a_copy_that_changes_modification_times(digits_store, tmp_path):
    # A git clone (or cp without -p) gives every file a new mtime: the shipped maps must still be used.
    first = digits_store.projection("pca")
    clone = tmp_path / "clone"
    shutil.copytree(digits_store.path, clone)
    for file in clone.rglob("*"):
        os.utime(file, ns=(0, 10**18))
    again = ProjectionStore(clone, digits_store.model, digits_store.dataset)
    assert again.fingerprint == digits_store.fingerprint
    assert again.projection("pca").source == "disk"
    np.testing.assert_array_equal(again.projection("pca").coords, first.coords)


def test_a_damaged_cache_file_is_recomputed_not_fatal(digits_store):
    digits_store.projection("pca")
    (digits_store.folder / "pca.npz").write_bytes(b"PK\x03\x04 this zip is cut short")
    (digits_store.folder / "codes.npz").write_bytes(b"")
    fresh = ProjectionStore(digits_store.path, digits_store.model, digits_store.dataset)
    assert fresh.projection("pca").source == "computed"
    np.testing.assert_allclose(fresh.codes().mu, digits_store.codes().mu, atol=1e-6)


def test_a_read_only_checkpoint_still_maps_from_memory(digits_store, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(projection_module, "_write_npz_atomically", refuse)
    assert digits_store.projection("pca").coords.shape == (len(digits_store.codes()), 2)
    assert "Could not save" in digits_store.disk_error
    assert not digits_store.folder.exists()


def test_ten_sessions_asking_at_once_compute_a_projection_once(digits_store, monkeypatch):
    digits_store.codes()
    calls = []
    real = projection_module.compute_projection
    release = threading.Event()

    def slow_compute(codes, method, dims=None):
        calls.append(method)
        release.wait(5)  # hold the first computation until every thread is queued behind the lock
        return real(codes, method, dims)

    monkeypatch.setattr(projection_module, "compute_projection", slow_compute)
    results = []
    threads = [threading.Thread(target=lambda: results.append(digits_store.projection("pca"))) for _ in range(10)]
    for thread in threads:
        thread.start()
    release.set()
    for thread in threads:
        thread.join()
    assert calls == ["pca"]
    assert len(results) == 10 and all(result is results[0] for result in results)


def test_background_requests_share_one_job(digits_store):
    first, second = digits_store.request("pca"), digits_store.request("pca")
    assert first.result(timeout=60) is second.result(timeout=60)
    assert digits_store.request("pca").done()  # cached now: answered at once


def test_latent_and_dims_projections_are_the_codes_themselves(digits_store):
    codes = digits_store.codes()
    latent = digits_store.projection("latent")
    np.testing.assert_array_equal(latent.coords, codes.mu)
    assert latent.place(codes.mu[:4], codes).how == "exact"
    wide = small_codes(dim=6)
    dims = compute_projection(wide, "dims", (4, 1))
    np.testing.assert_array_equal(dims.coords, wide.mu[:, [4, 1]])
    assert dims.axis_titles == ("z5", "z2")
    with pytest.raises(ProjectionError, match="6-D latent cannot be drawn as itself"):
        compute_projection(wide, "latent")
    with pytest.raises(ProjectionError, match="two different"):
        compute_projection(wide, "dims", (2, 2))


def test_pca_reports_explained_variance_and_places_new_codes_by_transform(digits_store):
    codes = digits_store.codes()
    pca = digits_store.projection("pca")
    assert 0.99 < sum(pca.explained_variance) <= 1.0 + 1e-6  # a 2-D latent is all in two components
    placed = digits_store.place(pca, codes.mu[:5])
    assert placed.how == "transform"
    np.testing.assert_allclose(placed.coords, pca.coords[:5], atol=1e-4)
    reloaded = ProjectionStore(digits_store.path, digits_store.model, digits_store.dataset).projection("pca")
    np.testing.assert_allclose(reloaded.place(codes.mu[:5], codes).coords, pca.coords[:5], atol=1e-4)


def test_tsne_places_new_points_by_nearest_neighbours_and_says_so():
    codes = small_codes(n=150)
    tsne = compute_projection(codes, "tsne")
    assert tsne.coords.shape == (150, 2) and np.isfinite(tsne.coords).all()
    placed = tsne.place(codes.mu[[7]], codes)
    assert placed.how == "nearest" and "nearest neighbours" in placed.note and "t-SNE cannot" in placed.note
    np.testing.assert_allclose(placed.coords[0], tsne.coords[7], atol=1e-2)  # its own code is nearest by far


def test_umap_is_seeded_and_transforms_new_points():
    codes = small_codes(n=200)
    first = compute_projection(codes, "umap")
    second = compute_projection(codes, "umap")
    np.testing.assert_array_equal(first.coords, second.coords)  # refitting after a restart gives the same map
    placed = first.place(codes.mu[:3] + 0.01, codes)
    assert placed.how == "transform" and placed.coords.shape == (3, 2)
    # A transformed point lands inside its own cluster on the map, not somewhere else.
    own_cluster = first.coords[codes.labels == codes.labels[0]]
    others = first.coords[codes.labels != codes.labels[0]]
    assert np.linalg.norm(own_cluster - placed.coords[0], axis=1).min() < np.linalg.norm(others - placed.coords[0], axis=1).min()


def test_a_umap_map_read_from_disk_gets_its_transform_back_in_the_background(digits_store):
    computed = digits_store.projection("umap")
    reopened = ProjectionStore(digits_store.path, digits_store.model, digits_store.dataset)  # as after a restart
    from_disk = reopened.projection("umap")
    assert from_disk.source == "disk" and from_disk.reducer is None
    assert projection_module.wait_for_projections(timeout=120)
    refitted = reopened.cached("umap")
    assert refitted.reducer is not None  # an upload is placed by UMAP's transform at once, no refit on the way
    np.testing.assert_allclose(refitted.coords, computed.coords, atol=1e-3)  # the seeded refit is the same map
    placed = reopened.place(from_disk, reopened.codes().mu[:2])
    assert placed.how == "transform"


def test_nearest_returns_sorted_neighbours():
    codes = small_codes(n=60)
    ids, distances = codes.nearest(codes.mu[[10]] + 0.001, k=4)
    assert ids[0, 0] == 10
    assert (np.diff(distances[0]) >= 0).all()


def test_a_map_selection_names_the_clicked_image_whatever_shape_customdata_takes():
    from vae.maps import selected_id

    assert selected_id([{"curve_number": 0, "point_index": 5, "customdata": {"0": 66}}]) == 66
    assert selected_id([{"customdata": [12]}]) == 12
    assert selected_id([{"customdata": 7}]) == 7
    assert selected_id([{"curve_number": 11, "point_index": 0}, {"customdata": [3]}]) == 3  # a circle, then a point
    assert selected_id([]) is None and selected_id(None) is None


SHIPPED_MODELS = ("mnist5k-conv-z16", "mnist5k-mlp-z2", "digits-mlp-z2", "shapes64-conv-z10-beta1", "shapes64-conv-z10-beta4")
SHIPPED = Path(__file__).resolve().parent.parent / "checkpoints"


def shipped_store(name: str) -> ProjectionStore:
    checkpoint = load_checkpoint(SHIPPED / name)
    return ProjectionStore(checkpoint.path, checkpoint.model, load_dataset(checkpoint.dataset_name))


@pytest.mark.parametrize("name", SHIPPED_MODELS)
def test_the_shipped_models_ship_their_maps_for_their_current_weights_and_data(name):
    # A class opening a shipped model's map must not wait for UMAP or t-SNE; retraining a shipped model
    # without `python -m vae.projection checkpoints/NAME` (docs/command-line.md, "Shipped models") would quietly undo that.
    fingerprint = shipped_store(name).fingerprint
    for cache in ("codes", "pca", "umap", "tsne"):
        stored = _read_npz(SHIPPED / name / "projections" / f"{cache}.npz", fingerprint)
        assert stored is not None, f"{name}/projections/{cache}.npz is missing or was made for other weights or data"
        points = {"digits": 1797, "mnist5k": 5000, "shapes64": 10_000}[name.split("-")[0]]  # shapes64: a seeded 10,000 of 20,000
        assert stored["coords" if cache != "codes" else "mu"].shape[0] == points
