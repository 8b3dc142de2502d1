"""Numbers that take seconds to compute, computed once per model (or image) and shared by every session.

Explain's bound ladder of one image and its reference points ("Is my number good?"), and
Compare's disentanglement scores.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from ui import checkpoint_summaries, config_mtime, dataset_of
from ui_maps import projection_store

if TYPE_CHECKING:
    import torch

    from vae.checkpoints import Checkpoint
    from vae.datasets import Dataset


@st.cache_resource(show_spinner="Estimating log p(x) with up to 5,000 importance samples…", max_entries=64)
def _bound_of_image(path: str, modified: float, image_key: str, _checkpoint: Checkpoint, _x: torch.Tensor):
    from vae.likelihood import GridError, bound_ladder, exact_log_likelihood

    model = _checkpoint.model
    ladder = bound_ladder(model, _x)
    grid, grid_error = None, None
    if model.config.latent_dim == 2:
        try:
            grid = exact_log_likelihood(model, _x)
        except GridError as error:
            grid_error = str(error)
    return ladder, grid, grid_error


def bound_of_image(checkpoint: Checkpoint, x: torch.Tensor, image_key: str):
    """(ladder, grid or None, why there is no grid or None) for one image x (1, C, H, W); cached per image."""
    return _bound_of_image(str(checkpoint.path), config_mtime(checkpoint.path), image_key, checkpoint, x)


@st.cache_resource(show_spinner="Computing the reference points on the test images…", max_entries=16)
def _references(path: str, modified: float, _checkpoint: Checkpoint, _dataset: Dataset):
    from vae.baselines import reference_points
    from vae.likelihood import TYPICALITY_K, iwae_of_test_split

    config = _checkpoint.model.config
    points = reference_points(_dataset.train_images, _dataset.test_images, config.likelihood, config.gaussian_sigma,
                              _dataset.name)
    return points, float(iwae_of_test_split(_checkpoint.model, _dataset.test_images).mean()), TYPICALITY_K


def references(checkpoint: Checkpoint, dataset: Dataset):
    """(reference points, the model's test -IWAE_K in nats, K) for "Is my number good?"; the test split's
    IWAE is computed once per model, and the other models of its data set are read afresh each time (a new
    one appears without recomputing anything)."""
    from vae.baselines import other_model_points
    from vae.history import final_numbers, read_history

    others = []
    for summary in checkpoint_summaries():
        numbers = final_numbers(read_history(summary.history)) if summary.config and not summary.error else None
        if numbers is not None and summary.name != checkpoint.name and summary.dataset_name == checkpoint.dataset_name:
            others.append((summary.name, numbers.recon + numbers.kl))
    points, test_iwae, k = _references(str(checkpoint.path), config_mtime(checkpoint.path), checkpoint, dataset)
    return points + other_model_points(others), test_iwae, k


@st.cache_resource(show_spinner=False, max_entries=16)
def _disentanglement(path: str, fingerprint: str, _store):
    from vae.disentangle import disentanglement, factors_of_rows

    store = _store
    codes = store.codes()
    factors = factors_of_rows(store.dataset, codes.split, codes.index)
    return disentanglement(codes.mu, factors) if factors else None


def disentanglement_of(checkpoint: Checkpoint):
    """`vae.disentangle.Disentanglement` of a checkpoint's posterior means against its data set's
    factors (None for a data set without factors); computed once per checkpoint and shared."""
    from vae.projection import weights_fingerprint

    if not dataset_of(checkpoint).train_factors:
        return None  # nothing to encode the data set for
    return _disentanglement(str(checkpoint.path), weights_fingerprint(checkpoint.path), projection_store(checkpoint))
