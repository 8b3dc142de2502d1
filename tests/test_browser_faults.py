"""Real Chromium: a laptop closed mid-training loses nothing and leaves nothing stuck."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from conftest import BUSY_MS, BUSY_S, open_app_page, start_digits_run, wait_for_idle
from vae.checkpoints import load_checkpoint



def _wait_for_folder(path, timeout_s: float = BUSY_S) -> None:
    """The server is another process: watch its checkpoints folder for the saved run."""
    deadline = time.monotonic() + timeout_s
    while not (path / "config.json").exists():
        assert time.monotonic() < deadline, f"{path.name} was never saved"
        time.sleep(0.2)  # polling a folder another process writes; there is nothing to wait on


@pytest.mark.browser
def test_a_browser_closed_mid_training_still_saves_and_the_job_list_is_not_stuck(app_server, browser):
    laptop = browser.new_context()
    page = laptop.new_page()
    page.set_default_timeout(BUSY_MS)
    open_app_page(page, app_server, "train")
    start_digits_run(page, "closed-laptop", epochs=30, batch_size=16)  # several seconds of steps
    page.locator('[data-testid="stProgress"]').first.wait_for()
    laptop.close()  # the lid closes: websocket gone mid-run

    _wait_for_folder(app_server.checkpoints / "closed-laptop")
    saved = load_checkpoint(app_server.checkpoints / "closed-laptop")
    assert len(saved.history) == 30 and saved.config["train"]["status"] == "finished"

    # Another visitor sees the run finished in the server's list and can train right away.
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_default_timeout(BUSY_MS)
        open_app_page(page, app_server, "train")
        # Start first, then open the run list: the one flaky failure seen (a CI run waited 300 s for the data set's
        # option) came when the select was opened under an open run list; every other test picks on a fresh page.
        start_digits_run(page, "after-the-laptop", epochs=1)
        # When the run ends the picker lists the new model and selects it.
        picker = page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Checkpoint")
        expect(picker).to_have_value(re.compile(r"^after-the-laptop: digits"))
        load_checkpoint(app_server.checkpoints / "after-the-laptop")
        page.get_by_text("Runs on this server").click()
        wait_for_idle(page)
        entry = page.locator('[data-testid="stText"]').filter(has_text="closed-laptop").first  # plain text, not Markdown
        entry.wait_for()
        assert "finished" in entry.inner_text()
    finally:
        context.close()
