"""Streamlit glue shared by every page: the sidebar model picker, cached loads, image display.

Pages import this and `vae`; nothing here does maths. Cached objects are shared by every
session (st.cache_resource), so they are only ever read: models stay on the CPU in eval mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

from vae.checkpoints import SHIPPED_ROOT, Checkpoint, CheckpointError, CheckpointSummary, default_root, list_checkpoints, load_checkpoint

if TYPE_CHECKING:
    import torch

    from vae.data import Dataset

# Nothing on the path of the first page imports PyTorch: the sidebar and Home read only JSON,
# and the model loads when a page asks for it (selected_checkpoint). torch is imported on a
# background thread at server start (warm_up) so that first model load is quick too.

SELECTED_KEY = "checkpoint_name"
SUMMARY_KEY = "_checkpoint_summary"  # set by app.py on every run from the sidebar picker
_PENDING_KEY = "_checkpoint_to_select"
PREFERRED_DEFAULT = "mnist5k-mlp-z2"


@st.cache_resource(show_spinner="Loading model…", max_entries=16)
def _cached_checkpoint(path: str, modified: float) -> Checkpoint:
    # `modified` keys the cache, so a checkpoint saved again under the same name is reloaded.
    return load_checkpoint(path)


def get_checkpoint(summary: CheckpointSummary) -> Checkpoint:
    config_file = summary.path / "config.json"
    return _cached_checkpoint(str(summary.path), config_file.stat().st_mtime if config_file.exists() else 0.0)


@st.cache_resource(show_spinner="Loading data set…", max_entries=8)
def _cached_dataset(name: str, data_dir: str | None) -> Dataset:
    from vae.data import load_dataset

    return load_dataset(name, data_dir)


def get_dataset(name: str, data_dir: str | None = None) -> Dataset:
    """A data set, cached under its canonical name (the same folder typed four ways is one entry)."""
    from vae.data import canonical_request

    return _cached_dataset(*canonical_request(name, data_dir))


@st.cache_resource(show_spinner=False, max_entries=4)
def _summaries(root: str, stamp: tuple) -> list[CheckpointSummary]:
    return list_checkpoints()  # the picker's list; root (default_root()) and stamp key the cache


def _folder_stamp(root: Path) -> tuple:
    """What changes when a checkpoint is added, replaced, renamed or edited: stat calls only."""
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return ()
    stamp = [root.stat().st_mtime_ns]
    for entry in entries:
        try:
            stamp.append((entry.name, (entry / "config.json").stat().st_mtime_ns))
        except OSError:
            stamp.append((entry.name, None))
    return tuple(stamp)


def checkpoint_summaries() -> list[CheckpointSummary]:
    """The picker's list; re-read (every config.json, parsed and validated) only when the folder changed,
    not on every rerun of every page."""
    root = default_root()
    return _summaries(str(root), _folder_stamp(root) + _folder_stamp(SHIPPED_ROOT))


def select_checkpoint(name: str) -> None:
    """Make `name` the model every page shows from the next rerun on (e.g. right after training it)."""
    st.session_state[_PENDING_KEY] = name


def sidebar_model_picker() -> CheckpointSummary | None:
    """The sidebar's model picker; stores the choice in session state and returns its summary.

    Reads only each checkpoint's config.json; the model itself loads in selected_checkpoint().
    """
    summaries = checkpoint_summaries()
    with st.sidebar:
        _training_in_progress()
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
        config, model = summary.config, summary.config["model"]
        st.caption(f"{public_dataset_name(config['dataset']['name'])} · {model['arch']} · z = {model['latent_dim']} · "
                   f"{model['likelihood']} · beta = {float(config['train'].get('beta', 1.0)):g} · "
                   f"{len(config['history'])} epochs")
        return summary


TRAIN_JOB_KEY = "train_job"  # the id of the training run this session watches (see views/train.py)


def _training_in_progress() -> None:
    """A link back to the Train page while this session's run is queued or training."""
    if st.session_state.get(TRAIN_JOB_KEY) is None:
        return  # no run of this session: nothing to show, and no need to import the training code
    from vae.jobs import progress_text, shared_manager

    job = shared_manager().get(st.session_state.get(TRAIN_JOB_KEY))
    if job is not None:
        view = job.view()
        if not view.done:
            st.page_link("views/train.py", label=f"Training {view.name}: {progress_text(view)}", icon="⏳")


def selected_summary() -> CheckpointSummary | None:
    """The sidebar's choice as read from its config.json (None when there is no usable one)."""
    return st.session_state.get(SUMMARY_KEY)


def selected_checkpoint() -> Checkpoint | None:
    """The model chosen in the sidebar, loaded (None, with the reason shown, when it cannot be)."""
    summary = selected_summary()
    if summary is None:
        return None
    try:
        return get_checkpoint(summary)
    except CheckpointError as error:
        st.error(str(error))
        return None


def require_checkpoint() -> Checkpoint:
    """The chosen model, or stop the page with a pointer to the picker."""
    checkpoint = selected_checkpoint()
    if checkpoint is None:
        st.warning("Choose a working model in the sidebar (or train one on the Train page).")
        st.stop()
    return checkpoint


def dataset_of(checkpoint: Checkpoint) -> Dataset:
    """The data set a checkpoint was trained on, or stop the page with the reason."""
    from vae.data import DataError
    from vae.datasets_extra import parse_folder_argument
    from vae.settings import allowed_folder

    name = checkpoint.dataset_name
    try:
        if name.startswith("folder:"):
            # A config.json names its pictures' folder; only folders the operator offers are read.
            request = parse_folder_argument(name.partition(":")[2])
            if allowed_folder(request.path, settings().folder_roots) is None:
                raise DataError("it was trained on pictures in a folder this server does not offer.")
        # The operator's data folder, never one named in a config.json (which could point anywhere).
        return get_dataset(name, None)
    except DataError as error:
        st.error(f"This model's data set cannot be loaded: {error}")
        st.stop()


def show_images(images: torch.Tensor, captions: list[str] | None = None, width: int = 112) -> None:
    """A row of images (N, C, H, W) in [0, 1], scaled up without blurring."""
    from vae.images import to_display_image

    columns = st.columns(len(images)) if len(images) else []
    for i, (column, image) in enumerate(zip(columns, images)):
        # An explicit width: otherwise a caption wider than the picture stretches it (and blurs it).
        column.image(to_display_image(image, width), caption=captions[i] if captions else None, width=width, output_format="PNG")


# --- Explain: the bound ladder of one image and the reference points, computed once and shared. ---

EXPLAIN_IMAGE_KEY = "explain_image"  # {"model", "name", "x": (1, C, H, W) array}: an image handed over by Upload & draw


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
    config_file = checkpoint.path / "config.json"
    return _bound_of_image(str(checkpoint.path), config_file.stat().st_mtime if config_file.exists() else 0.0, image_key, checkpoint, x)


@st.cache_resource(show_spinner="Computing the reference points on the test images…", max_entries=16)
def _references(path: str, modified: float, _checkpoint: Checkpoint, _dataset: Dataset, others: tuple):
    from vae.baselines import reference_points
    from vae.likelihood import TYPICALITY_K, iwae_of_test_split

    config = _checkpoint.model.config
    points = reference_points(_dataset.train_images, _dataset.test_images, config.likelihood, config.gaussian_sigma,
                              _dataset.name, list(others))
    return points, float(iwae_of_test_split(_checkpoint.model, _dataset.test_images).mean()), TYPICALITY_K


def references(checkpoint: Checkpoint, dataset: Dataset):
    """(reference points, the model's test -IWAE_K in nats, K) for "Is my number good?"; cached per model."""
    from vae.history import final_numbers

    others = []
    for summary in checkpoint_summaries():
        numbers = final_numbers(summary.history) if summary.config and not summary.error else None
        if numbers is not None and summary.name != checkpoint.name and summary.dataset_name == checkpoint.dataset_name:
            others.append((summary.name, numbers.recon + numbers.kl))
    config_file = checkpoint.path / "config.json"
    return _references(str(checkpoint.path), config_file.stat().st_mtime if config_file.exists() else 0.0, checkpoint, dataset,
                       tuple(others))


# --- Latent map and uploads: one projection store per checkpoint, the shared projection picker. ---

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
    store = _projection_store(str(checkpoint.path), weights_fingerprint(checkpoint.path), id(dataset), checkpoint, dataset)
    with st.spinner("Encoding the data set with this model (once; then it is cached beside the checkpoint)…"):
        store.codes()
    return store


# Everything heavy the pages use, imported once per server process on one background thread.
# Pages other than Home wait for it (wait_for_warm_up), so two threads never import these
# intertwined packages at once (that can hand a thread a half-made module); Home needs none.
HEAVY_IMPORTS = (
    "numpy", "pandas", "plotly.graph_objects", "plotly.subplots", "scipy.sparse", "sklearn.neighbors",
    "sklearn.decomposition", "sklearn.manifold", "sklearn.datasets", "PIL.Image", "torch",
    "vae.models", "vae.losses", "vae.data", "vae.images", "vae.train", "vae.jobs", "vae.projection",
    "vae.generate", "vae.inspect", "vae.charts", "vae.maps", "vae.upload_report", "streamlit_drawable_canvas",
)


WARM_UP_DELAY_S = 1.5


@st.cache_resource(show_spinner=False)
def _warm_up() -> dict:
    import importlib
    import logging
    import os
    import threading
    import time

    state = {"done": threading.Event(), "error": None}

    def work() -> None:
        try:
            # Let the first visitor's browser finish drawing Home before taking the two cores.
            time.sleep(WARM_UP_DELAY_S)
            for name in HEAVY_IMPORTS:
                importlib.import_module(name)
            from vae.jobs import shared_manager

            shared_manager()  # runs still queued from before a restart start now, whichever page is visited
            if os.environ.get("LATENT_LAB_UMAP_WARMUP", "1") != "0":  # tests that never use UMAP may skip it
                from vae.projection import start_umap_warmup

                start_umap_warmup()  # numba compiles umap-learn on its own daemon thread
        except Exception as error:  # the page that needs the library will say what is wrong
            logging.getLogger(__name__).exception("warm-up failed")
            state["error"] = f"{type(error).__name__}: {error}"
        finally:
            state["done"].set()

    threading.Thread(target=work, name="latent-lab-warm-up", daemon=True).start()
    return state


def warm_up() -> None:
    """Start loading PyTorch and the other heavy libraries on a background thread (once per process)."""
    _warm_up()


def wait_for_warm_up() -> None:
    """Block a page until the background imports are done (seconds, only just after server start)."""
    state = _warm_up()
    if not state["done"].is_set():
        with st.spinner("Loading PyTorch and friends (once, just after the server starts)…"):
            state["done"].wait(300)


def map_model_key(store) -> str:
    """Names one model's map state in the session: its checkpoint and the weights and data it maps."""
    return f"{store.path}:{store.fingerprint}"


def projection_picker(store, history: list[dict], with_split: bool = True) -> tuple[str, tuple[int, int] | None, str]:
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
    choice = {"method": default_method(codes.latent_dim), "dims": default_dims(codes.latent_dim, history), "split": "all",
              **choices.get(model, {})}
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
    method = columns[0].selectbox("Projection", methods, index=methods.index(choice["method"]), format_func=METHOD_TITLES.get,
                                  key="map_method")
    dims = None
    if method == "dims":
        options_dims = list(range(codes.latent_dim))
        first = columns[1].selectbox("x axis", options_dims, index=choice["dims"][0], format_func=dimension_name, key="map_dim_x")
        second = columns[2].selectbox("y axis", options_dims, index=choice["dims"][1], format_func=dimension_name, key="map_dim_y")
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
            st.progress(warmup.step / warmup.steps, text=f"UMAP is compiling itself for this server (numba, once per server start): "
                                                         f"stage {warmup.step + 1} of {warmup.steps}, {warmup.stage}, "
                                                         f"{warmup.elapsed:.0f} s so far. The map appears by itself.")
            return
    # No bar: neither UMAP nor scikit-learn's t-SNE reports how far it is, and a bar that guesses
    # would stand still or lie. What is known is shown: waiting or running, and for how long.
    running_for = store.running_for(method, dims)
    if running_for is None:
        st.info(f"Waiting to compute the {title} map of {points:,} codes: other maps are being computed first "
                "(two at a time on this server). It starts by itself.", icon="⏳")
    else:
        st.info(f"Computing the {title} map of {points:,} codes: {running_for:.0f} s so far (once per model; then it "
                f"is cached). {title} does not report its progress; the map appears by itself when it is done.", icon="⏳")
    st.caption("You can switch to PCA meanwhile; this keeps computing in the background.")


# --- Compare: several checkpoints side by side; disentanglement scores cached per checkpoint. ---

COMPARE_KEY = "compare_models"  # the Compare page's multiselect
COMPARE_REQUEST_KEY = "_compare_request"  # names another page asks Compare to show (e.g. a finished sweep)


def compare_models(names: list[str]) -> None:
    """Ask the Compare page to show these checkpoints next time it is drawn."""
    st.session_state[COMPARE_REQUEST_KEY] = list(names)


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


# --- Serving a class: the operator's settings, who this session is, and the teacher's unlock. ---

OWNER_KEY = "_session_owner"  # an unguessable id: the runs and models this session owns carry it
TEACHER_KEY = "_teacher"


@st.cache_resource(show_spinner=False, max_entries=4)
def _settings(secrets: tuple, environment: tuple):
    from vae.settings import load_settings

    return load_settings(dict(secrets) or None, dict(environment))


def settings():
    """The operator's settings (`vae.settings`): `[latent_lab]` in .streamlit/secrets.toml over LATENT_LAB_* variables.

    A setting that makes no sense is shown and the safe defaults are used instead.
    """
    from vae.settings import Settings, SettingsError

    try:
        table = st.secrets.get("latent_lab", {})
        secrets = tuple(sorted((key, tuple(value) if isinstance(value, list) else value) for key, value in dict(table).items()))
    except Exception:  # no secrets.toml: the environment alone decides
        secrets = ()
    import os

    from vae.settings import ENV_PREFIX

    environment = tuple(sorted((key, value) for key, value in os.environ.items() if key.startswith(ENV_PREFIX)))
    try:
        return _settings(secrets, environment)
    except SettingsError as error:
        st.error(f"The server's settings are wrong, so the safe defaults apply: {error}")
        return Settings()


def session_owner() -> str:
    """This session's owner id (a random token: runs started here, and their models, are its own)."""
    import secrets

    return st.session_state.setdefault(OWNER_KEY, secrets.token_urlsafe(16))


def is_teacher() -> bool:
    return st.session_state.get(TEACHER_KEY) is True


def teacher_unlock() -> None:
    """The teacher's password field; on the right password this session acts as the teacher."""
    import hmac

    configured = settings()
    if not configured.teacher_enabled:
        st.caption("No teacher password is set on this server (LATENT_LAB_TEACHER_PASSWORD), so nobody can act on "
                   "other people's runs or the shipped models.")
        return
    if is_teacher():
        st.success("Unlocked: you can stop or delete any run, replace any model and train on the server's folders.")
        if st.button("Lock again", key="teacher_lock"):
            st.session_state[TEACHER_KEY] = False
            st.rerun()
        return
    with st.form("teacher_form", clear_on_submit=True):
        password = st.text_input("Teacher password", type="password", key="teacher_password")
        if st.form_submit_button("Unlock"):
            if hmac.compare_digest(password.encode(), configured.teacher_password.encode()):
                st.session_state[TEACHER_KEY] = True
                st.rerun()
            st.error("That is not the teacher's password.")


def public_dataset_name(name: str) -> str:
    """A data set's name as everyone may see it: a folder's path stays on the server."""
    from vae.text import public_dataset_name as public

    return public(name)
