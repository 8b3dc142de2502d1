"""AppTest of the Train page's own-pictures option: upload, train, open the model on another page, isolation."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from image_samples import pet_files, zipped
from vae import jobs

WAIT = 180


@pytest.fixture
def uploads(tmp_path, monkeypatch, checkpoint_root):
    monkeypatch.setenv("LATENT_LAB_UPLOADS", str(tmp_path / "uploads"))
    monkeypatch.setenv("LATENT_LAB_UMAP_WARMUP", "0")
    return tmp_path / "uploads"


def new_session() -> AppTest:
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=WAIT)


def choose_upload(at: AppTest) -> AppTest:
    at.run()
    at.switch_page("views/train.py").run()
    return at.selectbox(key="train_dataset").set_value("upload").run()


def text_of(at: AppTest) -> str:
    return " ".join(str(node.value) for kind in ("info", "error", "caption", "warning", "success") for node in getattr(at, kind))


def test_a_students_folder_trains_and_its_model_opens_for_everyone_while_the_upload_stays_theirs(uploads):
    student = choose_upload(new_session())
    assert "Upload a folder or a zip" in text_of(student)
    files = [(name, content, "image/png") for name, content in pet_files()]
    student.file_uploader(key="upload_folder").set_value(files).run()
    student.button(key="upload_use").click().run()
    assert not student.exception and not student.error, [e.value for e in student.error]
    choice = student.selectbox(key="upload_choice")
    assert "pets: 9 pictures, 2 label(s): cats (5), dogs (4)" in choice.format_func(choice.value)
    assert "broken.png" in text_of(student)

    student.number_input(key="train_epochs").set_value(1)
    student.number_input(key="train_batch").set_value(4)
    student.text_input(key="train_name").set_value("my-pets")
    student.button(key="train_start").click().run()
    job = jobs.shared_manager().get(student.session_state["train_job"])
    view = job.wait(WAIT)
    assert view.status == jobs.FINISHED, view.message
    assert view.dataset.startswith("upload:")

    classmate = new_session().run()
    classmate.sidebar.selectbox(key="checkpoint_name").set_value("my-pets")
    classmate.switch_page("views/reconstructions.py").run()
    assert not classmate.exception and not classmate.error, [e.value for e in classmate.error]
    assert len(classmate.image) >= 2  # the uploaded pictures, shown from the stored copy

    classmate.switch_page("views/train.py").run()
    classmate.selectbox(key="train_dataset").set_value("upload").run()
    assert "Upload a folder or a zip" in text_of(classmate)
    assert not [box for box in classmate.selectbox if box.key == "upload_choice"]  # the student's upload is not offered


def test_a_zip_bomb_is_refused_on_the_page_with_a_message(uploads):
    at = choose_upload(new_session())
    at.radio(key="upload_kind").set_value("zip").run()
    bomb = zipped([("pets/a.png", b"x"), ("pets/b.png", b"\0" * (30 * 2**20))])
    at.file_uploader(key="upload_zip").set_value(("pets.zip", bomb, "application/zip")).run()
    at.button(key="upload_use").click().run()
    assert not at.exception
    assert any("zip bomb" in error.value for error in at.error)
    assert not [box for box in at.selectbox if box.key == "upload_choice"]


def test_starting_without_an_upload_says_what_to_do(uploads):
    at = choose_upload(new_session())
    at.button(key="train_start").click().run()
    assert any("Upload your pictures first" in error.value for error in at.error)
