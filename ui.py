"""Streamlit glue shared by every page: the sidebar model picker, cached loads, image display.

Pages import this and `vae`; nothing here does maths. Cached objects are shared by every
session (st.cache_resource), so they are only ever read: models stay on the CPU in eval mode.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
import torch

from vae.checkpoints import Checkpoint, CheckpointError, CheckpointSummary, default_root, list_checkpoints, load_checkpoint
from vae.data import DataError, Dataset, load_dataset
from vae.images import to_display_image

SELECTED_KEY = "checkpoint_name"
_PENDING_KEY = "_checkpoint_to_select"
PREFERRED_DEFAULT = "mnist5k-mlp-z2"


@st.cache_resource(show_spinner="Loading model…", max_entries=16)
def _cached_checkpoint(path: str, modified: float) -> Checkpoint:
    # `modified` keys the cache, so a checkpoint saved again under the same name is reloaded.
    with torch.no_grad():
        return load_checkpoint(path)


def get_checkpoint(summary: CheckpointSummary) -> Checkpoint:
    config_file = summary.path / "config.json"
    return _cached_checkpoint(str(summary.path), config_file.stat().st_mtime if config_file.exists() else 0.0)


@st.cache_resource(show_spinner="Loading data set…", max_entries=8)
def get_dataset(name: str, data_dir: str | None = None) -> Dataset:
    return load_dataset(name, data_dir)


def checkpoint_summaries() -> list[CheckpointSummary]:
    return list_checkpoints(default_root())


def select_checkpoint(name: str) -> None:
    """Make `name` the model every page shows from the next rerun on (e.g. right after training it)."""
    st.session_state[_PENDING_KEY] = name


def sidebar_model_picker() -> Checkpoint | None:
    """The sidebar's model picker; stores the choice in session state and returns the loaded model."""
    summaries = checkpoint_summaries()
    with st.sidebar:
        st.subheader("Model")
        if not summaries:
            st.info(f"No checkpoints in {default_root()}. Train one on the Train page.")
            return None
        names = [s.name for s in summaries]
        # A widget's value may only be set before it is drawn, so other pages queue their choice.
        if st.session_state.get(_PENDING_KEY) in names:
            st.session_state[SELECTED_KEY] = st.session_state.pop(_PENDING_KEY)
        if st.session_state.get(SELECTED_KEY) not in names:
            st.session_state[SELECTED_KEY] = PREFERRED_DEFAULT if PREFERRED_DEFAULT in names else names[0]
        labels = {s.name: s.label for s in summaries}
        chosen = st.selectbox("Checkpoint", names, format_func=labels.get, key=SELECTED_KEY)
        summary = summaries[names.index(chosen)]
        if summary.error:
            st.error(summary.error)
            return None
        try:
            checkpoint = get_checkpoint(summary)
        except CheckpointError as error:
            st.error(str(error))
            return None
        model = checkpoint.model.config
        st.caption(f"{checkpoint.dataset_name} · {model.arch} · z = {model.latent_dim} · "
                   f"{model.likelihood} · beta = {checkpoint.beta:g} · {len(checkpoint.history)} epochs")
        return checkpoint


def selected_checkpoint() -> Checkpoint | None:
    """The model chosen in the sidebar (None, with a message already shown, when there is none)."""
    return st.session_state.get("_checkpoint")


def require_checkpoint() -> Checkpoint:
    """The chosen model, or stop the page with a pointer to the picker."""
    checkpoint = selected_checkpoint()
    if checkpoint is None:
        st.warning("Choose a working model in the sidebar (or train one on the Train page).")
        st.stop()
    return checkpoint


def dataset_of(checkpoint: Checkpoint) -> Dataset:
    """The data set a checkpoint was trained on, or stop the page with the reason."""
    try:
        return get_dataset(checkpoint.dataset_name, checkpoint.config["train"].get("data_dir"))
    except DataError as error:
        st.error(f"This model's data set cannot be loaded: {error}")
        st.stop()


def show_images(images: torch.Tensor, captions: list[str] | None = None, width: int = 112) -> None:
    """A row of images (N, C, H, W) in [0, 1], scaled up without blurring."""
    columns = st.columns(len(images)) if len(images) else []
    for i, (column, image) in enumerate(zip(columns, images)):
        column.image(to_display_image(image, width), caption=captions[i] if captions else None)
