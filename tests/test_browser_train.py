"""Real Chromium: train on digits from the Train page and watch the chart and reconstructions update."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from conftest import open_app_page, wait_for_idle
from vae.checkpoints import load_checkpoint

PREVIEW = '[data-testid="stMain"] [data-testid="stImage"] img'
CHART = '[data-testid="stMain"] [data-testid="stPlotlyChart"] .js-plotly-plot'


@pytest.mark.browser
def test_training_from_the_train_page_shows_live_curves_and_reconstructions(app_server, page):
    # Opened by its URL: it runs through app.py too (navigation and the model picker in the sidebar).
    open_app_page(page, app_server, "train")
    page.get_by_role("heading", name="Train a VAE").wait_for()
    wait_for_idle(page)
    page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Checkpoint").wait_for()
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Loss curves").wait_for()
    data_set = page.locator('[data-testid="stSelectbox"]').filter(has_text="Data set")
    data_set.click()
    page.get_by_role("option", name="scikit-learn 8x8 digits (embedded)").click()
    # The name field follows the data set once the rerun has landed.
    expect(page.get_by_label("Checkpoint name", exact=True)).to_have_value(re.compile(r"^digits-run-\d+$"))
    page.get_by_label("Epochs", exact=True).fill("40")
    page.get_by_label("Batch size", exact=True).fill("64")
    page.get_by_label("Checkpoint name", exact=True).fill("browser-run")
    page.get_by_role("button", name="Start training").click()

    # The run's live view: a progress bar, the loss curves and the preview grid appear...
    page.locator('[data-testid="stProgress"]').first.wait_for()
    page.locator(CHART).first.wait_for()
    page.locator(PREVIEW).first.wait_for()
    first_picture = page.locator(PREVIEW).first.get_attribute("src")
    first_progress = page.locator('[data-testid="stProgress"]').first.inner_text()
    # ...and update while it trains, without a click: new reconstructions, a new progress line.
    page.wait_for_function(
        """([selector, before]) => { const img = document.querySelector(selector); return img && img.src && !img.src.endsWith(before); }""",
        arg=[PREVIEW, first_picture.split("/")[-1]],
    )
    page.wait_for_function(
        """(before) => { const bar = document.querySelector('[data-testid="stProgress"]'); return bar && bar.innerText !== before; }""",
        arg=first_progress,
    )
    # KL per dimension joins the loss curves once an epoch is complete.
    page.wait_for_function("""(selector) => document.querySelectorAll(selector).length >= 2""", arg=CHART)
    page.get_by_role("button", name="Stop").click()

    # The run ends with the last complete epoch saved, and the picker selects the new model.
    # The run's own alert says so (the job list's line in the collapsed "Runs on this server" does too).
    page.locator('[data-testid^="stAlertContent"]').get_by_text("Saved as 'browser-run'").wait_for()
    wait_for_idle(page)
    picker = page.locator('[data-testid="stSidebar"]').get_by_role("combobox", name="Checkpoint")
    expect(picker).to_have_value(re.compile(r"^browser-run: digits, mlp, z=2"))
    assert load_checkpoint(app_server.checkpoints / "browser-run").dataset_name == "digits"
    assert "Traceback" not in page.locator('[data-testid="stMain"]').inner_text()
