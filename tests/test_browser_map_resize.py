"""Chromium: the Latent map's plots survive the window being resized narrower and back."""

from __future__ import annotations

import pytest

from conftest import open_app_page, wait_for_idle

pytestmark = pytest.mark.browser

PLOTS = """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')].map(chart => {
  const layout = chart._fullLayout, legend = chart.querySelector('.legend'), area = chart.querySelector('.nsewdrag');
  let overlap = 0;
  if (legend && area && layout.showlegend) {
    const a = legend.getBoundingClientRect(), b = area.getBoundingClientRect();
    overlap = Math.max(0, Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top)) * Math.max(0, Math.min(a.right, b.right) - Math.max(a.left, b.left));
  }
  return {x: layout.xaxis.range, y: layout.yaxis.range, overlap: overlap};
})"""


def plots(page) -> list[dict]:
    page.wait_for_function("document.querySelectorAll('[data-testid=\"stPlotlyChart\"] .js-plotly-plot').length >= 2")
    return page.evaluate(PLOTS)


def test_the_manifold_keeps_its_axes_and_the_legend_never_covers_the_map_after_resizing(app_server, page):
    open_app_page(page, app_server)
    page.get_by_test_id("stSidebarNavLink").filter(has_text="Latent map").click()
    page.get_by_role("heading", name="Latent map", exact=True).wait_for()
    wait_for_idle(page)
    before = plots(page)
    manifold = before[1]
    for width in (1100, 800, 600, 450, 1400):
        page.set_viewport_size({"width": width, "height": 1000})
        # Plotly redraws on the window's resize event; wait until it has laid out at the new width.
        page.wait_for_function("""() => [...document.querySelectorAll('[data-testid="stPlotlyChart"] .js-plotly-plot')]
            .every(chart => Math.abs(chart._fullLayout.width - chart.getBoundingClientRect().width) < 2)""")
        now = plots(page)
        assert now[0]["overlap"] == 0, f"the legend covers the map at {width} px"
        # The decoded grid spans the same z ranges at every width (it used to grow to +-10 with a tiny grid).
        assert now[1]["x"] == pytest.approx(manifold["x"], abs=1e-6) and now[1]["y"] == pytest.approx(manifold["y"], abs=1e-6)
