"""Real Chromium: the Compare page draws every figure, with no error in the page or its console."""

from __future__ import annotations

import pytest

from conftest import wait_for_idle


@pytest.mark.browser
def test_compare_renders_its_figures_in_chromium_without_errors(app_server, page):
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # (Streamlit's frontend probes <page>/_stcore/health on a deep link and logs that 404 itself: not ours)
    page.on("console", lambda message: errors.append(message.text)
            if message.type == "error" and not message.text.startswith("Failed to load resource") else None)
    page.goto(f"{app_server.url}/compare?models=mnist5k-conv-z16,mnist5k-mlp-z2")
    charts = page.locator('[data-testid="stPlotlyChart"]')
    # curves, the plane, one reconstruction grid (one data set), KL bars, two traversals
    charts.nth(5).wait_for(timeout=300_000)  # the first page after a server start waits for PyTorch's import
    wait_for_idle(page)
    assert charts.count() == 6
    for index in range(charts.count()):
        chart = charts.nth(index)
        chart.scroll_into_view_if_needed()
        chart.locator(".main-svg").first.wait_for()
        box = chart.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 100
    # the plane: a trail and a final point per model, and the equal -ELBO lines, all drawn as SVG paths
    plane = charts.nth(1)
    assert plane.locator(".scatterlayer .trace").count() >= 4
    assert plane.get_by_text("−ELBO", exact=False).count() >= 1
    # traversals and reconstructions are pictures drawn inside the figure
    assert charts.nth(2).locator("image").count() >= 1
    assert page.locator('[data-testid="stException"]').count() == 0
    assert "All 2 models were trained on mnist5k" in page.locator('[data-testid="stAlert"]').first.inner_text()
    page.screenshot(path="/tmp/compare-page.png", full_page=True)
    assert not errors, errors
