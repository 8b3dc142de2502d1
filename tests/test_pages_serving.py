"""AppTest of the Train page as a class sees it: students, another student, and the teacher."""

from __future__ import annotations

import json
import shutil

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, WAIT, job_of, open_page, start_training
from vae import jobs


pytestmark = pytest.mark.usefixtures("no_umap_warmup")


def another_student() -> AppTest:
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()


def unlock(at, password: str):
    at.text_input(key="teacher_password").set_value(password)
    return at.button(key="FormSubmitter:teacher_form-Unlock").click().run()


def test_students_name_no_server_path_for_pictures_or_downloads(app_test, tmp_path, monkeypatch):
    monkeypatch.setenv("LATENT_LAB_FOLDER_ROOTS", str(tmp_path))
    at = open_page(app_test.run(), "views/train.py")
    at.selectbox(key="train_dataset").set_value("folder").run()
    assert not [box for box in at.text_input if box.key in ("train_folder", "train_data_dir")]
    assert not [box for box in at.selectbox if box.key == "train_folder"]  # the server's folders are the teacher's
    assert "Only the teacher" in at.info[0].value
    at.selectbox(key="train_dataset").set_value("mnist").run()
    assert not [box for box in at.text_input if box.key == "train_data_dir"]
    assert not at.exception


def test_the_teacher_chooses_among_the_operators_folders_only(app_test, tmp_path, monkeypatch):
    (tmp_path / "pictures" / "cats").mkdir(parents=True)
    (tmp_path / "pictures" / "outside").symlink_to(tmp_path)
    monkeypatch.setenv("LATENT_LAB_FOLDER_ROOTS", str(tmp_path / "pictures"))
    monkeypatch.setenv("LATENT_LAB_TEACHER_PASSWORD", "sesame")
    at = open_page(app_test.run(), "views/train.py")
    assert "not the teacher's password" in unlock(at, "guess").error[0].value
    unlock(at, "sesame")
    at.selectbox(key="train_dataset").set_value("folder").run()
    assert at.selectbox(key="train_folder").options == ["pictures", "cats"]


def test_a_model_trained_on_a_folder_the_server_does_not_offer_is_not_read(app_test, checkpoint_root, tmp_path):
    planted = checkpoint_root / "planted"
    shutil.copytree(checkpoint_root / "digits-mlp-z2", planted)
    config = json.loads((planted / "config.json").read_text())
    config["dataset"]["name"] = f"folder:{tmp_path}?size=28"
    (planted / "config.json").write_text(json.dumps(config))
    at = open_page(app_test.run(), "views/reconstructions.py", "planted")
    assert not at.exception
    assert "does not offer" in at.error[0].value


def test_another_student_sees_a_run_as_plain_text_without_its_messages_or_buttons(app_test):
    at = open_page(app_test.run(), "views/train.py")
    at.selectbox(key="train_dataset").set_value("digits").run()
    at.number_input(key="train_epochs").set_value(500)
    at.text_input(key="train_name").set_value("alices-run")
    at.text_input(key="train_owner_name").set_value("![x](https://e.invalid/x.png) **Al**")
    at.button(key="train_start").click().run()
    job = job_of(at)
    try:
        bob = open_page(another_student(), "views/train.py")
        lines = [text.value for text in bob.text if "alices-run" in text.value]
        assert lines and "![x](https://e.invalid/x.png) **Al**" in lines[0]
        assert not any("alices-run" in markdown.value for markdown in bob.markdown)
        assert not [button for button in bob.button if job.id in (button.key or "")]
        # With the link, Bob may watch, not stop.
        bob.query_params["job"] = job.id
        bob.run()
        assert not [button for button in bob.button if (button.key or "").startswith("stop_")]
        assert "only they or the teacher can stop it" in " ".join(caption.value for caption in bob.caption)
    finally:
        jobs.shared_manager().stop(job.id)
    job.wait(WAIT)


def test_one_run_per_session_and_the_replace_box_is_not_sticky(app_test, checkpoint_root):
    at = open_page(app_test.run(), "views/train.py")
    at.selectbox(key="train_dataset").set_value("digits").run()
    at.text_input(key="train_name").set_value("digits-mlp-z2")  # a shipped model: read-only to students
    at.checkbox(key="train_overwrite").check()
    at.button(key="train_start").click().run()
    assert "only the teacher may replace it" in at.error[0].value
    at.text_input(key="train_name").set_value("mine-1")
    at.number_input(key="train_epochs").set_value(500)
    at.checkbox(key="train_overwrite").check()
    at.button(key="train_start").click().run()
    job = job_of(at)
    try:
        assert at.checkbox(key="train_overwrite").value is False  # not carried over to the next run
        at = start_training(at, "mine-2")
        assert "already have 1 run" in at.error[0].value
    finally:
        jobs.shared_manager().stop(job.id)
    job.wait(WAIT)
    assert not (checkpoint_root / "mine-2").exists()


def test_the_teacher_password_can_come_from_secrets_toml(app_test, monkeypatch):
    monkeypatch.delenv("LATENT_LAB_TEACHER_PASSWORD", raising=False)
    app_test.secrets["latent_lab"] = {"teacher_password": "from-secrets"}
    at = open_page(app_test.run(), "views/train.py")
    unlock(at, "from-secrets")
    assert not at.exception and "Unlocked" in at.success[0].value
