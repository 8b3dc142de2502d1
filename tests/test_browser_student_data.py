"""Real Chromium: a student uploads a folder of pictures and trains on it; another student never sees the
upload in their chooser, yet can open the trained model and its pictures."""

from __future__ import annotations

import os
import re

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import expect

from conftest import BUSY_MS, AppServer, copy_shipped_checkpoints, new_student, open_app_page, wait_for_idle

UPLOAD_OPTION = "Your own pictures (upload a folder or a zip)"


@pytest.fixture(scope="module")
def upload_server(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("upload-server")
    saved = {key: os.environ.get(key) for key in ("LATENT_LAB_UPLOADS", "LATENT_LAB_UMAP_WARMUP")}
    os.environ.update(LATENT_LAB_UPLOADS=str(scratch / "uploads"), LATENT_LAB_UMAP_WARMUP="0")
    try:
        server = AppServer(copy_shipped_checkpoints(scratch / "checkpoints"), scratch / "streamlit.log")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    server.uploads = scratch / "uploads"
    yield server
    server.stop()


@pytest.fixture
def picture_folder(tmp_path):
    folder = tmp_path / "shapes-of-mine"
    for label, draw in (("circles", "ellipse"), ("squares", "rectangle")):
        (folder / label).mkdir(parents=True)
        for index in range(10):
            image = Image.new("L", (40, 40), 0)
            corner = 6 + index
            getattr(ImageDraw.Draw(image), draw)([corner, corner, corner + 16, corner + 16], fill=255)
            image.save(folder / label / f"{index}.png")
    return folder


def choose_upload_option(page) -> None:
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Data set").click()
    page.get_by_role("option", name=UPLOAD_OPTION).click()
    wait_for_idle(page)



@pytest.mark.browser
def test_a_folder_upload_trains_a_model_everyone_can_open_but_only_its_student_can_pick(upload_server, browser, picture_folder):
    student_context, student = new_student(browser, height=1100)
    classmate_context, classmate = new_student(browser, height=1100)
    try:
        open_app_page(student, upload_server, "train")
        choose_upload_option(student)
        student.locator('[data-testid="stFileUploader"] input[type=file]').set_input_files(str(picture_folder))
        use = student.get_by_role("button", name="Use these pictures")
        expect(use).to_be_enabled(timeout=BUSY_MS)
        use.click()
        wait_for_idle(student)
        expect(student.get_by_role("combobox", name="Pictures to train on")).to_have_value(
            "shapes-of-mine: 20 pictures, 2 label(s): circles (10), squares (10)", timeout=BUSY_MS)
        student.screenshot(path="/tmp/studentdata-browser-upload.png", full_page=True)

        # Another student's Train page offers no upload of theirs.
        open_app_page(classmate, upload_server, "train")
        choose_upload_option(classmate)
        expect(classmate.get_by_text("Upload a folder or a zip of your pictures")).to_be_visible(timeout=BUSY_MS)
        expect(classmate.locator('[data-testid="stSelectbox"]').filter(has_text="Pictures to train on")).to_have_count(0)

        student.get_by_label("Epochs", exact=True).fill("1")
        student.get_by_label("Batch size", exact=True).fill("8")
        student.get_by_label("Checkpoint name", exact=True).fill("my-shapes")
        student.get_by_role("button", name="Start training").click()
        student.locator('[data-testid^="stAlertContent"]').get_by_text("Saved as 'my-shapes'").wait_for(timeout=BUSY_MS)

        # The classmate opens the model: its pictures load from the stored upload, not from the student's session.
        open_app_page(classmate, upload_server, "reconstructions")
        classmate.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Checkpoint").click()
        classmate.get_by_role("option", name=re.compile(r"^my-shapes: uploaded pictures, ")).click()  # never the upload's key
        wait_for_idle(classmate)
        classmate.locator('[data-testid="stMain"] [data-testid="stImage"] img').first.wait_for()
        expect(classmate.locator('[data-testid="stMain"] [data-testid="stAlertContentError"]')).to_have_count(0)
        classmate.screenshot(path="/tmp/studentdata-browser-classmate.png", full_page=True)
    finally:
        student_context.close()
        classmate_context.close()
