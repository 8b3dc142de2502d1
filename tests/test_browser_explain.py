"""Chromium end to end: step through the Explain page's stages; a new epsilon changes the drawn z and image."""

from __future__ import annotations

import pytest

from conftest import open_app_page, wait_for_idle

pytestmark = pytest.mark.browser


def z_text(page) -> str:
    return page.get_by_text("z = (", exact=False).first.inner_text()


def decoded_source(page) -> str:
    return page.locator('[data-testid="stImage"]').filter(has_text="decoded from z").locator("img").first.get_attribute("src")


def test_stepping_through_stages_and_resampling_epsilon_changes_z_and_image(app_server, page):
    open_app_page(page, app_server)
    page.get_by_test_id("stSidebarNavLink").filter(has_text="Explain").click()
    page.get_by_role("heading", name="Explain", exact=True).wait_for()
    wait_for_idle(page)
    page.get_by_role("heading", name="1 · the image x").wait_for()
    assert page.get_by_role("heading", name="6 · decoder → p(x|z)").count() == 0

    for title in ("2 · encoder → μ, log σ²", "3 · σ", "4 · noise ε", "5 · the code z", "6 · decoder → p(x|z)"):
        page.get_by_role("button", name="Next ▶").click()
        page.get_by_role("heading", name=title).wait_for()
        wait_for_idle(page)
    z_before, image_before = z_text(page), decoded_source(page)
    assert z_before.startswith("z = (z")

    page.get_by_role("button", name="Draw a new epsilon").click()
    page.wait_for_function("before => ![...document.querySelectorAll('p')].some(p => p.innerText === before)", arg=z_before)
    wait_for_idle(page)
    assert page.get_by_role("heading", name="6 · decoder → p(x|z)").count() == 1  # still at the same stage
    assert z_text(page) != z_before
    assert decoded_source(page) != image_before
    assert page.get_by_role("spinbutton", name="Epsilon seed").input_value() == "1"
