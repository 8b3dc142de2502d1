"""AppTest of Home, Train, Loss curves and Reconstructions, and the sidebar picker they share."""

from __future__ import annotations

import pytest

from conftest import SHIPPED, WAIT, job_of, no_failure, open_page, page_text, start_training
from vae import jobs
from vae.checkpoints import load_checkpoint

SHIPPED_NAMES = sorted(p.name for p in SHIPPED.iterdir() if p.is_dir() and not p.name.startswith("."))
MY_PAGES = ("views/home.py", "views/train.py", "views/loss_curves.py", "views/reconstructions.py")
pytestmark = pytest.mark.usefixtures("no_umap_warmup")


@pytest.mark.parametrize("checkpoint", SHIPPED_NAMES)
def test_every_page_renders_for_each_shipped_checkpoint(app_test, checkpoint):
    at = app_test.run()
    for page in MY_PAGES:
        open_page(at, page, checkpoint)
        no_failure(at)
        assert at.sidebar.selectbox(key="checkpoint_name").value == checkpoint
    saved = load_checkpoint(SHIPPED / checkpoint)
    open_page(at, "views/home.py")
    final = saved.history[-1]["test"]
    assert f"{-(final['recon'] + final['kl']):.2f}" in page_text(at)  # the model's own ELBO, plugged in
    assert len(at.get("page_link")) == 8
    open_page(at, "views/loss_curves.py")
    assert f"β = {saved.beta:g}" in page_text(at)
    assert len(at.get("plotly_chart")) == 2
    open_page(at, "views/reconstructions.py")
    rows = at.slider(key="recon_count").value
    samples = at.slider(key="recon_samples").value
    assert len(at.image) == rows * (2 + samples)


def test_reconstructions_by_label_and_by_index(app_test):
    at = open_page(app_test.run(), "views/reconstructions.py", "digits-mlp-z2")
    at.radio(key="recon_how").set_value("by label").run()
    at.selectbox(key="recon_label").set_value(3).run()
    no_failure(at)
    captions = [caption for image in at.image for caption in image.captions]
    originals = [caption for caption in captions if caption.startswith("test #")]
    assert originals and all(caption.endswith("(3)") for caption in originals)
    at.radio(key="recon_how").set_value("by index").run()
    at.text_input(key="recon_indices").set_value("0, 99999").run()
    assert "outside" in at.error[0].value
    assert not at.exception


def test_train_runs_a_one_epoch_job_on_digits_and_the_picker_selects_it(app_test, checkpoint_root):
    at = start_training(app_test.run(), "digits-app-run")
    assert not at.exception and not at.error
    job = job_of(at)
    assert at.query_params["job"] == [job.id] or at.query_params["job"] == job.id
    assert job.wait(WAIT).status == jobs.FINISHED, job.view().message
    at.run()
    no_failure(at)
    assert "Saved as 'digits-app-run'" in at.success[0].value
    picker = at.sidebar.selectbox(key="checkpoint_name")
    assert picker.value == "digits-app-run"
    assert any(option.startswith("digits-app-run:") for option in picker.options)
    assert load_checkpoint(checkpoint_root / "digits-app-run").dataset_name == "digits"
    assert len(at.get("plotly_chart")) == 2 and len(at.image) == 1  # curves, KL bars, the preview grid
    # The rest of the app shows the new model.
    open_page(at, "views/loss_curves.py")
    no_failure(at)
    assert "digits-app-run" in page_text(at)


def test_a_reloaded_page_finds_its_run_from_the_url_and_shows_it_read_only(app_test):
    from streamlit.testing.v1 import AppTest

    at = start_training(app_test.run(), "digits-reloaded")
    job = job_of(at)
    job.wait(WAIT)
    reloaded = AppTest.from_file(app_test._script_path, default_timeout=120)  # a new session: no session state
    reloaded.query_params["job"] = job.id
    reloaded.run()
    reloaded.switch_page("views/train.py").run()
    assert not reloaded.exception
    assert reloaded.subheader[0].value == "Run: digits-reloaded"
    # A new session does not own the run: it sees its status, not its owner's messages or a Stop button.
    assert reloaded.success[0].value == "This run is finished."
    assert not [button for button in reloaded.button if button.key and button.key.startswith("stop_")]


def test_stop_ends_the_run_and_its_last_complete_epoch_is_picked(app_test, checkpoint_root):
    at = start_training(app_test.run(), "digits-stopped", epochs=500)
    job = job_of(at)
    job.wait_until(lambda view: len(view.history) >= 1, WAIT)
    at.run()
    at.button(key=f"stop_{job.id}").click().run()
    view = job.wait(WAIT)
    assert view.status == jobs.STOPPED and 1 <= len(view.history) < 500
    at.run()
    no_failure(at)
    assert "Stopped" in at.warning[0].value
    assert at.sidebar.selectbox(key="checkpoint_name").value == "digits-stopped"
    assert len(load_checkpoint(checkpoint_root / "digits-stopped").history) == len(view.history)


def test_a_second_session_is_queued_and_shown_its_position(app_test):
    from streamlit.testing.v1 import AppTest

    first = start_training(app_test.run(), "digits-first", epochs=500)
    second = start_training(AppTest.from_file(app_test._script_path, default_timeout=120).run(), "digits-second")
    first_job, second_job = job_of(first), job_of(second)
    assert first_job.id != second_job.id
    try:
        assert second_job.view().status == jobs.QUEUED
        assert "Queued, position 1" in page_text(second) + " ".join(i.value for i in second.info)
    finally:
        jobs.shared_manager().stop(second_job.id)
        jobs.shared_manager().stop(first_job.id)
    assert first_job.wait(WAIT).done and second_job.wait(WAIT).status == jobs.STOPPED
    second.run()
    assert not second.exception and "nothing was trained" in second.warning[0].value


@pytest.mark.parametrize("name, message", [
    ("has spaces", "not a valid checkpoint name"),
    ("../outside", "not a valid checkpoint name"),
    ("digits-mlp-z2", "already exists"),
])
def test_bad_or_taken_checkpoint_names_are_refused(app_test, name, message):
    before = len(jobs.shared_manager().jobs())
    at = start_training(app_test.run(), name)
    assert not at.exception
    assert message in at.error[0].value
    assert len(jobs.shared_manager().jobs()) == before


def teacher_choosing_a_server_folder(app_test, monkeypatch, root):
    """The Train page of a teacher on a server whose operator offers the folders under `root`."""
    monkeypatch.setenv("LATENT_LAB_FOLDER_ROOTS", str(root))
    monkeypatch.setenv("LATENT_LAB_TEACHER_PASSWORD", "let-me-in")
    at = open_page(app_test.run(), "views/train.py")
    at.text_input(key="teacher_password").set_value("let-me-in")
    at.button(key="FormSubmitter:teacher_form-Unlock").click().run()
    return at.selectbox(key="train_dataset").set_value("folder").run()


def test_a_data_set_that_cannot_load_is_a_message_on_the_page(app_test, tmp_path, monkeypatch):
    (tmp_path / "pictures" / "empty-folder").mkdir(parents=True)
    at = teacher_choosing_a_server_folder(app_test, monkeypatch, tmp_path / "pictures")
    at.selectbox(key="train_folder").set_value(tmp_path / "pictures" / "empty-folder")
    at.text_input(key="train_name").set_value("from-a-folder")
    at.button(key="train_start").click().run()
    job = job_of(at)
    assert job.wait(WAIT).status == jobs.ERROR
    at.run()
    assert not at.exception
    assert "empty" in at.error[0].value and "Traceback" not in at.error[0].value


def test_a_folder_path_is_trained_on_exactly_as_named(app_test, checkpoint_root, tmp_path, monkeypatch):
    from PIL import Image

    from vae.datasets import folder_dataset_name

    folder = tmp_path / "pictures" / "what? scans "  # a '?' inside and a space at the end, both part of the name
    for label in ("a", "b"):
        (folder / label).mkdir(parents=True)
        for i in range(2):
            Image.new("L", (12, 12), 60 * i + (100 if label == "b" else 0)).save(folder / label / f"{i}.png")
    at = teacher_choosing_a_server_folder(app_test, monkeypatch, tmp_path / "pictures")
    at.selectbox(key="train_folder").set_value(folder)
    at.number_input(key="train_epochs").set_value(1)
    at.text_input(key="train_name").set_value("typed-path")
    at.button(key="train_start").click().run()
    job = job_of(at)
    assert job.wait(WAIT).status == jobs.FINISHED, job.view().message
    assert load_checkpoint(checkpoint_root / "typed-path").dataset_name == folder_dataset_name(folder)


def test_a_broken_checkpoint_folder_shows_its_error_in_the_sidebar_only(app_test, checkpoint_root):
    broken = checkpoint_root / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{ this is not json")
    at = app_test.run()
    picker = at.sidebar.selectbox(key="checkpoint_name")
    assert "broken-model (unusable)" in picker.options
    for page in MY_PAGES:
        open_page(at, page, "broken-model")
        assert not at.exception
        assert "not valid JSON" in at.sidebar.error[0].value
    open_page(at, "views/loss_curves.py")
    assert "Choose a working model" in at.warning[0].value
    open_page(at, "views/train.py", "digits-mlp-z2")  # and choosing a good one again works
    no_failure(at)


def test_other_pages_link_back_to_a_run_in_progress(app_test):
    at = start_training(app_test.run(), "digits-elsewhere", epochs=500)
    job = job_of(at)
    try:
        open_page(at, "views/reconstructions.py")
        no_failure(at)
        links = [link for link in at.sidebar.get("page_link") if "digits-elsewhere" in link.proto.label]
        assert links and links[0].proto.label.startswith("Training digits-elsewhere")
    finally:
        jobs.shared_manager().stop(job.id)
    job.wait(WAIT)
    at.run()
    assert not [link for link in at.sidebar.get("page_link") if "digits-elsewhere" in link.proto.label]
