"""Streamlit glue shared by every page: the sidebar model picker, cached loads, image display, the
hand-overs between pages, the warm-up and the class server's settings. Beside it, by idea: `ui_runs`
(the Train page's runs), `ui_maps` (the map and upload pages' projections), `ui_scores` (slow
numbers cached per model), `ui_data` (students' uploaded pictures).

Pages import this and `vae`; nothing here does maths. Cached objects are shared by every
session (st.cache_resource), so they are only ever read: models stay on the CPU in eval mode.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import streamlit as st

import pages
from vae.checkpoints import (SHIPPED_ROOT, Checkpoint, CheckpointError, CheckpointSummary, default_root,
                             list_checkpoints, load_checkpoint)
from vae.text import public_dataset_name  # noqa: F401 (pages call ui.public_dataset_name)

if TYPE_CHECKING:
    import torch

    from vae.datasets import Dataset

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


def config_mtime(folder: Path) -> float:
    """When a checkpoint folder's config.json was last written (0 without one): the key that makes the
    caches reload a checkpoint saved again under the same name."""
    config_file = folder / "config.json"
    return config_file.stat().st_mtime if config_file.exists() else 0.0


def get_checkpoint(summary: CheckpointSummary) -> Checkpoint:
    return _cached_checkpoint(str(summary.path), config_mtime(summary.path))


@st.cache_resource(show_spinner="Loading data set…", max_entries=8)
def _cached_dataset(name: str, data_dir: str | None) -> Dataset:
    from vae.datasets import load_dataset

    return load_dataset(name, data_dir)


def get_dataset(name: str, data_dir: str | None = None) -> Dataset:
    """A data set, cached under its canonical name (the same folder typed four ways is one entry)."""
    from vae.datasets import canonical_request

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
            pages.TRAIN.link(f"Training {view.name}: {progress_text(view)}", icon="⏳")


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


def load_dataset_of(checkpoint: Checkpoint) -> Dataset:
    """The data set a checkpoint was trained on; raises DataError with the reason (for pages that go on)."""
    from vae.datasets import DataError
    from vae.datasets import parse_folder_argument
    from vae.settings import allowed_folder

    name = checkpoint.dataset_name
    if name.startswith("folder:"):
        # A config.json names its pictures' folder; only folders the operator offers are read.
        request = parse_folder_argument(name.partition(":")[2])
        if allowed_folder(request.path, settings().folder_roots) is None:
            raise DataError("it was trained on pictures in a folder this server does not offer.")
    # The operator's data folder, never one named in a config.json (which could point anywhere).
    return get_dataset(name, None)


def dataset_of(checkpoint: Checkpoint) -> Dataset:
    """The data set a checkpoint was trained on, or stop the page with the reason."""
    from vae.datasets import DataError

    try:
        return load_dataset_of(checkpoint)
    except DataError as error:
        st.error(f"This model's data set cannot be loaded: {error}")
        st.stop()


def show_images(images: torch.Tensor, captions: list[str] | None = None, width: int = 112) -> None:
    """A row of images (N, C, H, W) in [0, 1], scaled up without blurring."""
    from vae.images import to_display_image

    columns = st.columns(len(images)) if len(images) else []
    for i, (column, image) in enumerate(zip(columns, images)):
        # An explicit width: otherwise a caption wider than the picture stretches it (and blurs it).
        column.image(to_display_image(image, width), caption=captions[i] if captions else None, width=width,
                     output_format="PNG")


# Everything heavy the pages use, imported once per server process on one background thread.
# Pages other than Home wait for it (wait_for_warm_up), so two threads never import these
# intertwined packages at once (that can hand a thread a half-made module); Home needs none.
HEAVY_IMPORTS = (
    "numpy", "pandas", "plotly.graph_objects", "plotly.subplots", "scipy.sparse", "sklearn.neighbors",
    "sklearn.decomposition", "sklearn.manifold", "sklearn.datasets", "PIL.Image", "torch",
    "vae.models", "vae.losses", "vae.datasets", "vae.images", "vae.train", "vae.jobs", "vae.projection.store",
    "vae.generate", "vae.inspect", "vae.charts", "vae.maps", "vae.upload_report", "streamlit_drawable_canvas",
)


WARM_UP_DELAY_S = 1.5


def _start_queued_runs() -> None:
    from vae.jobs import shared_manager

    shared_manager()  # runs still queued from before a restart start now, whichever page is visited


def warm_up() -> None:
    """Start loading PyTorch and the other heavy libraries on a background thread, then compiling
    UMAP (`vae.projection.warmup.start_warmup`: once per process, later calls do nothing)."""
    import os

    from vae.projection.warmup import start_warmup

    umap = os.environ.get("LATENT_LAB_UMAP_WARMUP", "1") != "0"  # tests that never use UMAP may skip it
    start_warmup(HEAVY_IMPORTS, then=_start_queued_runs, umap=umap, delay=WARM_UP_DELAY_S)


def wait_for_warm_up() -> None:
    """Block a page until the background imports are done (seconds, only just after server start)."""
    from vae.projection.warmup import wait_for_libraries

    warm_up()
    if not wait_for_libraries(0):
        with st.spinner("Loading PyTorch and friends (once, just after the server starts)…"):
            wait_for_libraries(300)


# --- Hand-overs: one page gives another something to open on (a code, an image, models to compare). ---

EXPLAIN_IMAGE_KEY = "explain_image"  # {"model", "name", "x": (1, C, H, W) array}: an image handed over by Upload & draw
COMPARE_KEY = "compare_models"  # the Compare page's multiselect
COMPARE_REQUEST_KEY = "_compare_request"  # names another page asks Compare to show (e.g. a finished sweep)


def hand_to_generate(model_name: str, z, axes: tuple[int, int] | None = None) -> None:
    """Start Generate's latent pad of `model_name` from the code z (D numbers), shown on `axes`
    (x across, y up) when the code was drawn on two of its dimensions.

    Always replaces the axes: a code handed over without any must not take those of an earlier one."""
    from vae.components.latent_pad import HANDOFF_AXES, HANDOFF_MODEL, HANDOFF_Z

    st.session_state[HANDOFF_Z] = [float(value) for value in z]
    st.session_state[HANDOFF_MODEL] = model_name
    st.session_state[HANDOFF_AXES] = list(axes) if axes else None


def hand_to_explain(model_name: str, name: str, x) -> None:
    """Offer one prepared image x (1, C, H, W), named `name`, to the Explain page of `model_name`."""
    st.session_state[EXPLAIN_IMAGE_KEY] = {"model": model_name, "name": name, "x": x.cpu().numpy()}


def image_handed_to_explain(model_name: str) -> dict | None:
    """The image handed over to Explain ({"model", "name", "x"}), or None when there is none for this model
    (an image prepared for another model has another model's image shape)."""
    handed = st.session_state.get(EXPLAIN_IMAGE_KEY)
    return handed if handed is not None and handed.get("model") == model_name else None


def compare_models(names: list[str]) -> None:
    """Ask the Compare page to show these checkpoints next time it is drawn."""
    st.session_state[COMPARE_REQUEST_KEY] = list(names)


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
        secrets = tuple(sorted((key, tuple(value) if isinstance(value, list) else value)
                               for key, value in dict(table).items()))
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
