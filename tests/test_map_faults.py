"""Faults of the latent map found by using it as a class does: twins (identical codes), small data sets,
1-D latents, a refit that moved the map, a data set that changed under its cache, and shipped maps
that drift from what the pinned libraries make."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vae import projection as projection_module
from vae.checkpoints import load_checkpoint
from vae.datasets import Dataset, load_dataset
from vae.history import EpochLosses, EpochRecord
from vae.map_options import default_dims, why_not
from vae.projection import METHODS, LatentCodes, ProjectionError, ProjectionStore, compute_projection
from vae.projection.neighbours import neighbours_of_members
from vae.projection.store import _read_npz

SHIPPED = Path(__file__).resolve().parent.parent / "checkpoints"


def codes_of(mu, labels=None) -> LatentCodes:
    mu = np.asarray(mu, dtype=np.float32)
    n = len(mu)
    labels = np.arange(n) % 3 if labels is None else np.asarray(labels)
    return LatentCodes(mu=mu, sigma=np.full_like(mu, 0.1), labels=labels.astype(np.int64), split=(np.arange(n) % 5 == 0).astype(np.int8),
                       index=np.arange(n), neg_elbo=np.zeros(n, np.float32), total_images=n)


def twins(kind: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    if kind == "one row copied":  # the issue's own example
        mu = rng.normal(size=(300, 2))
        mu[5] = mu[7]
        return mu
    if kind == "every code twice":  # shapes: a square at r and r + 180 degrees
        return np.repeat(rng.normal(size=(120, 4)), 2, axis=0)
    return np.repeat(rng.normal(size=(12, 3)), 20, axis=0)  # more twins than UMAP's 15 neighbours


# --- 1. Identical codes --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["one row copied", "every code twice", "groups of 20 twins"])
def test_identical_codes_map_with_every_projection_and_place_new_points(kind):
    codes = codes_of(twins(kind))
    # t-SNE (slow here) once: it and its nearest-neighbour placement never assumed distinct points.
    for method in ("pca", "umap", "tsne") if kind == "every code twice" else ("pca", "umap"):
        projection = compute_projection(codes, method)
        assert projection.coords.shape == (len(codes), 2) and np.isfinite(projection.coords).all(), method
        placed = projection.place(codes.mu[:3] + 0.001, codes)
        assert placed.coords.shape == (3, 2) and np.isfinite(placed.coords).all(), method
        if method == "umap":
            assert projection.place(codes.mu[:2], codes).how == "transform"


def test_each_point_is_left_out_of_its_own_neighbours_by_id_even_among_twins():
    points = np.array([[0.0], [0.0], [0.0], [1.0], [2.0]])
    _, distances, ids = neighbours_of_members(points, k=2)
    assert all(i not in row for i, row in enumerate(ids))  # never itself, whatever order twins come in
    np.testing.assert_allclose(distances[:3], 0.0)
    assert set(ids[3]) <= {0, 1, 2, 4}
    many = np.zeros((6, 2))  # more twins than neighbours: every row still gets k others
    _, _, ids = neighbours_of_members(many, k=3)
    assert ids.shape == (6, 3) and all(i not in row for i, row in enumerate(ids))
    with pytest.raises(ValueError, match="need more than 3 points"):
        neighbours_of_members(np.zeros((3, 2)), k=3)


def test_an_uploads_nearest_images_list_every_twin_nearest_first():
    mu = np.random.default_rng(1).normal(size=(50, 3)).astype(np.float32) * 100  # large codes: float32 cancellation
    mu[20] = mu[10]
    codes = codes_of(mu)
    ids, distances = codes.nearest(mu[[10]], k=3)
    assert list(ids[0, :2]) == [10, 20]
    np.testing.assert_allclose(distances[0, :2], 0.0, atol=1e-6)
    ids, _ = codes_of(mu[:2]).nearest(mu[[0]], k=5)  # fewer codes than neighbours asked for
    assert ids.shape == (1, 2)


# --- 4. Small data sets and a 1-D latent ---------------------------------------------------------

@pytest.mark.parametrize("points,dim", [(2, 2), (3, 2), (6, 2), (7, 2), (16, 2), (17, 3), (2, 1), (40, 1), (40, 2)])
def test_every_projection_either_works_or_is_not_offered_with_a_sentence(points, dim):
    rng = np.random.default_rng(points)
    codes = codes_of(rng.normal(size=(points, dim)))
    options = {option.method: option for option in codes.options()}
    assert set(options) == set(METHODS)
    for method, option in options.items():
        dims = (0, 2) if method == "dims" else None
        if option.offered:
            projection = compute_projection(codes, method, dims)
            assert projection.coords.shape == (points, 2) and np.isfinite(projection.coords).all(), method
        else:
            assert len(option.reason) > 20, method
            with pytest.raises(ProjectionError, match="not offered"):
                compute_projection(codes, method, dims)
    assert any(option.offered for option in options.values())  # every model has some map


def test_two_pictures_get_a_map_and_say_why_umap_and_tsne_are_missing():
    codes = codes_of([[0.0, 1.0], [1.0, 0.0]])
    reasons = {option.method: option.reason for option in codes.options()}
    assert reasons["pca"] is None and reasons["latent"] is None
    assert "at least 17 images; this data set has 2" in reasons["umap"]
    assert "at least 7 images" in reasons["tsne"]


def test_a_1d_latent_is_a_strip_of_z_against_label_and_places_uploads_exactly():
    z = np.linspace(-2, 2, 30)[:, None]
    labels = np.arange(30) % 3
    codes = codes_of(z, labels)
    reasons = {option.method: option.reason for option in codes.options()}
    assert all("1-D latent" in reasons[m] for m in ("pca", "umap", "tsne"))
    strip = compute_projection(codes, "latent")
    np.testing.assert_allclose(strip.coords[:, 0], z[:, 0], atol=1e-6)  # z1 across
    assert np.all(np.abs(strip.coords[:, 1] - labels) <= 0.3 + 1e-6)  # one row per label
    assert strip.axis_titles[0] == "z1"
    placed = strip.place(np.array([[0.5]]), codes)
    assert placed.how == "exact" and placed.coords[0, 0] == pytest.approx(0.5)


def test_identical_codes_everywhere_are_not_spread_out():
    codes = codes_of(np.zeros((30, 4)))
    assert "same code" in why_not("pca", 30, 4, codes.distinct)
    assert [o.method for o in codes.options() if o.offered] == ["dims"]


# --- 6. Default dimensions -----------------------------------------------------------------------

def test_two_latent_dimensions_default_to_the_two_with_most_kl():
    zero = EpochLosses(recon=0.0, kl=0.0, total=0.0)
    history = [EpochRecord(epoch=1, train=zero, test=zero, kl_per_dim=[0.0, 0.01, 3.0, 1.5, 2.0])]
    assert default_dims(5, history) == (2, 4)
    assert default_dims(5, []) == (0, 1)  # no history: natural order


# --- 2. A refit never moves the map a student is looking at; shipped maps match this stack --------

def test_a_map_read_from_disk_stays_put_when_the_refit_does_not_reproduce_it(digits_store):
    computed = digits_store.projection("umap")
    # As if other library versions had made the file: the saved map differs from what a refit gives.
    moved = computed.coords + np.where(np.arange(len(computed.coords)) % 10 == 0, 2.0, 0.0)[:, None].astype(np.float32)
    digits_store._save("umap", {"coords": moved, "note": np.array(computed.note)})
    reopened = ProjectionStore(digits_store.path, digits_store.model, digits_store.dataset)  # as after a restart
    shown = reopened.projection("umap")
    assert projection_module.wait_for_projections(timeout=300)
    after = reopened.projection("umap")
    np.testing.assert_array_equal(after.coords, moved)  # nothing moved on screen
    assert after.source == "disk" and after.reducer is None and after.refit_moved == pytest.approx(2.0, abs=1e-3)
    placed = reopened.place(shown, reopened.codes().mu[:2])
    assert placed.how == "nearest" and "does not reproduce this saved map" in placed.note


def test_a_map_read_from_disk_gets_the_transform_of_a_refit_that_reproduces_it(digits_store):
    computed = digits_store.projection("umap")
    reopened = ProjectionStore(digits_store.path, digits_store.model, digits_store.dataset)
    shown = reopened.projection("umap")
    assert reopened.place(shown, reopened.codes().mu[:2]).how == "transform"
    after = reopened.projection("umap")
    assert after.coords is shown.coords and after.reducer is not None  # the same arrays, now with a transform
    np.testing.assert_allclose(after.coords, computed.coords, atol=1e-3)


# Not the shapes models: their codes hold exact twins, and which twin UMAP meets first depends on the
# thread count, so their refit reproduces the shipped map only on the thread count that made it (1).
@pytest.mark.parametrize("name", ["digits-mlp-z2", "mnist5k-mlp-z2", "mnist5k-conv-z16"])
def test_the_shipped_maps_are_what_the_pinned_libraries_make(name):
    # A map read from disk is what a class sees; a UMAP refit (for uploads) must reproduce it, so a
    # shipped file made by other versions would be a map whose uploads cannot be placed by transform.
    # If this fails after a library upgrade: pin the new versions and run `python -m vae.projection`.
    checkpoint = load_checkpoint(SHIPPED / name)
    store = ProjectionStore(checkpoint.path, checkpoint.model, load_dataset(checkpoint.dataset_name))
    fresh = projection_module.encode_dataset(store.model, store.dataset)
    stored = _read_npz(store.folder / "codes.npz", store.fingerprint)
    assert stored is not None, f"{name}: the shipped codes are stale; run python -m vae.projection"
    np.testing.assert_allclose(stored["mu"], fresh.mu, atol=1e-4)  # the encoder: equal up to float rounding
    # The refit behind uploads starts from the codes on disk, so the maps are recomputed from those
    # (fresh codes differ in the last bits with the thread count, and UMAP's graph can notice).
    codes = store.codes()
    for method in ("pca", "umap"):
        shipped = _read_npz(store.folder / f"{method}.npz", store.fingerprint)
        made = compute_projection(codes, method)
        width = float(np.ptp(shipped["coords"], axis=0).max())
        moved = np.abs(made.coords - shipped["coords"]).max()
        assert moved <= projection_module.REPRODUCED_WITHIN * width, f"{name} {method}: points move up to {moved:.3g}"


# --- 3. The cache covers the data set; ids off the data never reach the image lookup -----------

def fewer_test_images(dataset: Dataset, keep: int) -> Dataset:
    return Dataset(name=dataset.name, train_images=dataset.train_images, test_images=dataset.test_images[:keep],
                   train_labels=dataset.train_labels, test_labels=dataset.test_labels[:keep], label_names=dataset.label_names)


def test_a_data_set_that_changed_under_the_checkpoint_gets_new_codes(digits_store):
    old = digits_store.codes()
    digits_store.projection("pca")
    smaller = fewer_test_images(digits_store.dataset, 100)  # pictures removed from a folder set, then a restart
    fresh = ProjectionStore(digits_store.path, digits_store.model, smaller)
    codes = fresh.codes()
    assert len(codes) == len(smaller.train_images) + 100 < len(old)
    assert fresh.projection("pca").source == "computed"
    last = len(codes) - 1
    assert torch.equal(fresh.images([last])[0], smaller.test_images[codes.index[last]])


def test_an_id_off_the_map_or_off_the_data_is_a_clear_error_not_an_index_error(digits_store):
    codes = digits_store.codes()
    with pytest.raises(ProjectionError, match="no image #5000"):
        digits_store.images([5000])
    with pytest.raises(ProjectionError, match="no image #-1"):
        digits_store.images([-1])
    with pytest.raises(ProjectionError, match="no image"):
        digits_store.reconstructions([len(codes)])
    # Codes that name rows past the data (written by hand, or by an older version) are not trusted.
    digits_store._codes = None
    shrunk = fewer_test_images(digits_store.dataset, 10)
    digits_store.dataset = shrunk
    assert not digits_store._codes_fit_dataset(codes)


def test_precomputing_the_maps_of_a_1d_model_skips_what_it_cannot_make_and_says_why(tmp_path, capsys):
    from vae.checkpoints import save_checkpoint
    from vae.models import ModelConfig, build_model

    torch.manual_seed(0)
    model = build_model(ModelConfig(image_shape=(1, 8, 8), latent_dim=1, hidden=(16,)))
    history = [{"epoch": 1, "train": {"recon": 30.0, "kl": 2.0, "total": 32.0}, "test": {"recon": 31.0, "kl": 2.5, "total": 33.5},
                "kl_per_dim": [1.0]}]
    folder = save_checkpoint(tmp_path / "digits-z1", model, dataset={"name": "digits", "image_shape": [1, 8, 8]},
                             train={"epochs": 1, "seed": 0}, history=history)
    assert projection_module.main([str(folder)]) == 0
    out = capsys.readouterr().out
    assert out.count("not offered: a 1-D latent is drawn as itself") == 3  # pca, umap, tsne
