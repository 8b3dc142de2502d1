"""Shared fixtures: a scratch checkpoints folder, AppTest runs, and a real server + Chromium."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from vae.serve_local import APP_IDLE, CHROMIUM, CHROMIUM_FLAGS, ROOT, SHIPPED, AppServer, copy_shipped_checkpoints  # noqa: F401

# Every wait follows the app's state (a selector, a value, a file); its limit only has to be generous
# enough for a busy 2-core CI machine running other work, where a page or a training epoch can take minutes.
BUSY_MS = 300_000
BUSY_S = BUSY_MS / 1000


TINY_HISTORY = [{"epoch": 1, "train": {"recon": 30.0, "kl": 2.0, "total": 32.0},
                 "test": {"recon": 31.0, "kl": 2.5, "total": 33.5}, "kl_per_dim": [1.0, 1.5]}]


def tiny_model(seed: int = 0, latent_dim: int = 2):
    """A seeded MLP VAE on 8x8 images: saves and loads in milliseconds."""
    import torch

    from vae.models import ModelConfig, build_model

    torch.manual_seed(seed)
    return build_model(ModelConfig(image_shape=(1, 8, 8), latent_dim=latent_dim, hidden=(16,)))


def save_tiny(folder: Path, seed: int = 0, **kwargs) -> Path:
    """tiny_model(seed) saved as a checkpoint of one epoch on digits."""
    from vae.checkpoints import save_checkpoint

    return save_checkpoint(folder, tiny_model(seed), dataset={"name": "digits"}, train={"epochs": 1, "seed": seed},
                           history=TINY_HISTORY, **kwargs)


def same_weights(a, b) -> bool:
    import torch

    return all(torch.equal(value, b.state_dict()[key]) for key, value in a.state_dict().items())


@pytest.fixture(autouse=True)
def scratch_user_data(tmp_path, monkeypatch) -> None:
    """Runs a test saves without naming a folder land in its scratch folder, never the user's data folder."""
    if sys.platform.startswith("linux"):  # platformdirs' user_data_dir follows XDG_DATA_HOME there
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "user-data"))
    elif not os.environ.get("LATENT_LAB_CHECKPOINTS"):
        monkeypatch.setenv("LATENT_LAB_CHECKPOINTS", str(tmp_path / "user-checkpoints"))


@pytest.fixture
def checkpoint_root(tmp_path, monkeypatch) -> Path:
    """A writable copy of the shipped checkpoints, used by the app through $LATENT_LAB_CHECKPOINTS."""
    root = copy_shipped_checkpoints(tmp_path / "checkpoints")
    monkeypatch.setenv("LATENT_LAB_CHECKPOINTS", str(root))
    return root


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models train faster on one thread, and far faster when the 2 cores are busy."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def app_test(checkpoint_root):
    """A fresh AppTest of app.py over the scratch checkpoints; call .run() or switch_page() on it."""
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=BUSY_S)


# ---- AppTest helpers shared by the page tests

WAIT = 120  # seconds for a background run on the shared machine


@pytest.fixture
def no_umap_warmup(monkeypatch):
    """For pages that never use UMAP: its numba warm-up thread would only compete for the two cores."""
    monkeypatch.setenv("LATENT_LAB_UMAP_WARMUP", "0")


def page_text(at) -> str:
    return " ".join(str(getattr(node, "value", "")) for kind in ("title", "markdown", "caption", "latex", "success", "warning",
                                                                  "info", "error") for node in getattr(at, kind))


def no_failure(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def captions(at) -> str:
    return "\n".join(c.value for c in at.caption)


@pytest.fixture
def digits_store(checkpoint_root):
    """The shared projection store of a scratch copy of the shipped digits-mlp-z2."""
    from vae.checkpoints import load_checkpoint
    from vae.datasets import load_dataset
    from vae.projection import ProjectionStore

    checkpoint = load_checkpoint(checkpoint_root / "digits-mlp-z2")
    return ProjectionStore(checkpoint.path, checkpoint.model, load_dataset("digits"))


def open_page(at, page: str, checkpoint: str | None = None):
    if checkpoint is not None:
        at.sidebar.selectbox(key="checkpoint_name").set_value(checkpoint)
    return at.switch_page(page).run()


def start_training(at, name: str, epochs: int = 1, dataset: str = "digits"):
    open_page(at, "views/train.py")
    at.selectbox(key="train_dataset").set_value(dataset).run()
    at.number_input(key="train_epochs").set_value(epochs)
    at.number_input(key="train_batch").set_value(256)
    at.text_input(key="train_name").set_value(name)
    return at.button(key="train_start").click().run()


def job_of(at):
    """The vae.jobs.Job this AppTest session is watching."""
    from vae import jobs

    job = jobs.shared_manager().get(at.session_state["train_job"])
    assert job is not None
    return job


# ---- a real server and Chromium

@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("server")
    server = AppServer(copy_shipped_checkpoints(scratch / "checkpoints"), scratch / "streamlit.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium); .ci/run does.")
    from playwright.sync_api import expect

    expect.set_options(timeout=BUSY_MS)  # expect() waits 5 s by default: too short on a loaded machine
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    opened.set_default_timeout(BUSY_MS)
    yield opened
    context.close()


def wait_for_idle(page) -> None:
    """Wait until Streamlit has finished running the script (as Streamlit's own e2e tests do)."""
    page.wait_for_selector(APP_IDLE, timeout=BUSY_MS)


def open_app_page(page, server: AppServer, url_path: str = "") -> None:
    page.goto(f"{server.url}/{url_path}")
    wait_for_idle(page)


def new_student(browser, height: int = 1000):
    """A browser context of its own (another student: no shared cookies or session) and its page."""
    context = browser.new_context(viewport={"width": 1400, "height": height})
    opened = context.new_page()
    opened.set_default_timeout(BUSY_MS)
    return context, opened


def start_digits_run(page, name: str, epochs: int, batch_size: int = 128, owner_name: str = "") -> None:
    """Fill the Train page's form for a run on the embedded 8x8 digits and press Start."""
    wait_for_idle(page)
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Data set").click()
    page.get_by_role("option", name="scikit-learn 8x8 digits (embedded)").click()
    wait_for_idle(page)
    page.get_by_label("Epochs", exact=True).fill(str(epochs))
    page.get_by_label("Batch size", exact=True).fill(str(batch_size))
    page.get_by_label("Checkpoint name", exact=True).fill(name)
    if owner_name:
        page.get_by_label("Your name (optional)", exact=True).fill(owner_name)
    page.get_by_role("button", name="Start training").click()
