"""The Latent map and Upload & draw pages' glue: one projection store per checkpoint, the shared projection picker.

Each model keeps its own projection choice and its own picked point in the session, so moving
between the two pages (or between models) finds them as they were left.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from ui import dataset_of

if TYPE_CHECKING:
    from vae.checkpoints import Checkpoint
    from vae.datasets import Dataset
    from vae.history import EpochRecord


# Each model keeps its own choice and its own picked point, kept while moving between pages:
MAP_CHOICE_KEY = "map_projection"  # {map_model_key: {"method", "dims", "split"}}
MAP_SELECTED_KEY = "map_selected"  # {map_model_key: the picked image's id}
_PICKER_MODEL_KEY = "_map_picker_model"  # the model whose choice the picker's widgets hold now
_PICKER_WIDGETS = ("map_method", "map_dim_x", "map_dim_y", "map_split", "map_pick")


@st.cache_resource(show_spinner=False, max_entries=16)
def _projection_store(path: str, fingerprint: str, dataset_id: int, _checkpoint: Checkpoint, _dataset: Dataset):
    from vae.projection import ProjectionStore

    return ProjectionStore(path, _checkpoint.model, _dataset)


def projection_store(checkpoint: Checkpoint):
    """The `vae.projection.ProjectionStore` of a checkpoint (shared by all sessions), codes encoded."""
    from vae.projection import weights_fingerprint

    dataset = dataset_of(checkpoint)  # the store holds it, so its id stays its own while the store lives
    store = _projection_store(str(checkpoint.path), weights_fingerprint(checkpoint.path), id(dataset),
                              checkpoint, dataset)
    with st.spinner("Encoding the data set with this model (once; then it is cached beside the checkpoint)…"):
        store.codes()
    return store


def map_model_key(store) -> str:
    """Names one model's map state in the session: its checkpoint and the weights and data it maps."""
    return f"{store.path}:{store.fingerprint}"


def projection_picker(store, history: list[EpochRecord],
                      with_split: bool = True) -> tuple[str, tuple[int, int] | None, str]:
    """Widgets choosing a map projection (method, dims, split) for the store's model.

    Each model keeps its own choice (shared between the map and upload pages): a model opens on
    what was last chosen for it, else on a quick projection with the two dimensions of most KL.
    Methods its codes do not allow are not offered, and a caption says why.
    """
    from vae.history import dimension_name
    from vae.map_options import default_dims, default_method, not_offered_sentence
    from vae.projection import METHOD_TITLES

    codes = store.codes()
    model = map_model_key(store)
    options = codes.options()
    methods = [option.method for option in options if option.offered]
    choices = st.session_state.setdefault(MAP_CHOICE_KEY, {})
    choice = {"method": default_method(codes.latent_dim), "dims": default_dims(codes.latent_dim, history),
              "split": "all", **choices.get(model, {})}
    if choice["method"] not in methods:
        choice["method"] = methods[0]
    if st.session_state.get(_PICKER_MODEL_KEY) != model:
        # Another model than on the last run: nothing the previous model's widgets held carries over
        # (a widget whose state is removed starts again from its index, this model's choice).
        for key in _PICKER_WIDGETS:
            st.session_state.pop(key, None)
        st.session_state[_PICKER_MODEL_KEY] = model

    columns = st.columns([2, 1, 1, 2] if with_split else [2, 1, 1])
    # The widgets start from this model's stored choice (index=...); once drawn on a page they keep
    # what the user picks, and the choice is stored back below for the other page and next time.
    method = columns[0].selectbox("Projection", methods, index=methods.index(choice["method"]),
                                  format_func=METHOD_TITLES.get, key="map_method")
    dims = None
    if method == "dims":
        options_dims = list(range(codes.latent_dim))
        first = columns[1].selectbox("x axis", options_dims, index=choice["dims"][0], format_func=dimension_name,
                                     key="map_dim_x")
        second = columns[2].selectbox("y axis", options_dims, index=choice["dims"][1], format_func=dimension_name,
                                      key="map_dim_y")
        dims = (first, second)
    split = choice["split"]
    if with_split:
        splits = ["all", "train", "test"]
        split = columns[-1].radio("Images", splits, index=splits.index(split), horizontal=True, key="map_split",
                                  format_func={"all": "train + test", "train": "train", "test": "test"}.get)
    missing = not_offered_sentence(options, METHOD_TITLES)
    if missing:
        st.caption(missing)
    choices[model] = {"method": method, "dims": dims or choice["dims"], "split": split}
    return method, dims, split


def wait_for_projection(store, method: str, dims: tuple[int, int] | None):
    """The projection, waiting a few seconds; while a slow one is still computing, a progress
    panel that reruns the page when it is done (returns None meanwhile)."""
    from concurrent.futures import TimeoutError as FutureTimeout

    from vae.projection import SLOW_METHODS, ProjectionError, start_umap_warmup

    if method == "dims" and dims is not None and dims[0] == dims[1]:
        st.warning("Choose two different latent dimensions.")
        return None
    if method not in SLOW_METHODS:  # milliseconds (PCA's first sklearn import aside): no thread needed
        try:
            with st.spinner("Projecting the codes…"):
                return store.projection(method, dims)
        except ProjectionError as error:
            st.warning(str(error))
            return None
    if method == "umap":
        start_umap_warmup(delay=0)  # no-op when app.py already started it; shows its progress meanwhile
    future = store.request(method, dims)
    try:
        return future.result(timeout=4.0)
    except FutureTimeout:
        pass
    except ProjectionError as error:
        st.warning(str(error))
        return None
    except Exception as error:  # the map must not take the app down with it
        st.error(f"The {method} projection failed: {type(error).__name__}: {error}")
        return None
    _projection_progress(store, future, method, dims, len(store.codes()))
    return None


@st.fragment(run_every=1.0)
def _projection_progress(store, future, method: str, dims, points: int) -> None:
    from vae.projection import METHOD_TITLES, umap_warmup_status

    if future.done():
        st.rerun(scope="app")
    title = METHOD_TITLES[method]
    if method == "umap":
        warmup = umap_warmup_status()
        if not warmup.ready and warmup.stage != "failed":
            st.progress(warmup.step / warmup.steps, text="UMAP is compiling itself for this server (numba, once per "
                                                         f"server start): stage {warmup.step + 1} of {warmup.steps}, "
                                                         f"{warmup.stage}, {warmup.elapsed:.0f} s so far. The map "
                                                         "appears by itself.")
            return
    # No bar: neither UMAP nor scikit-learn's t-SNE reports how far it is, and a bar that guesses
    # would stand still or lie. What is known is shown: waiting or running, and for how long.
    running_for = store.running_for(method, dims)
    if running_for is None:
        st.info(f"Waiting to compute the {title} map of {points:,} codes: other maps are being computed first "
                "(two at a time on this server). It starts by itself.", icon="⏳")
    else:
        st.info(f"Computing the {title} map of {points:,} codes: {running_for:.0f} s so far (once per model; then it "
                f"is cached). {title} does not report its progress; the map appears by itself when it is done.",
                icon="⏳")
    st.caption("You can switch to PCA meanwhile; this keeps computing in the background.")
