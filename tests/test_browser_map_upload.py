"""Chromium end to end: click a point on the Latent map; upload a good and a bad image."""

from __future__ import annotations

import re

import pytest

from conftest import open_app_page, wait_for_idle
from image_samples import BAD_FILES, encode, paper_digit

pytestmark = pytest.mark.browser

MAP_FIRST_POINT = """() => {
  const chart = document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot');
  if (!chart || !chart._fullData || !chart._fullLayout) return null;
  const trace = chart._fullData[0], xaxis = chart._fullLayout.xaxis, yaxis = chart._fullLayout.yaxis;
  // The point of the first trace farthest from the plot's centre: it is on the edge, so no other
  // point lies under the cursor.
  let best = 0, bestDistance = -1;
  for (let i = 0; i < trace.x.length; i++) {
    const d = Math.hypot(xaxis.l2p(trace.x[i]) - xaxis._length / 2, yaxis.l2p(trace.y[i]) - yaxis._length / 2);
    if (d > bestDistance) { best = i; bestDistance = d; }
  }
  const box = chart.getBoundingClientRect();
  return {x: box.left + xaxis._offset + xaxis.l2p(trace.x[best]), y: box.top + yaxis._offset + yaxis.l2p(trace.y[best]),
          id: trace.customdata[best][0]};
}"""


def open_page(page, server, title: str) -> None:
    """Open the app, then the page through the sidebar (as a person does), and wait for its heading."""
    open_app_page(page, server)
    page.get_by_test_id("stSidebarNavLink").filter(has_text=title).click()
    page.get_by_role("heading", name=title, exact=True).wait_for()
    wait_for_idle(page)


def upload(page, name: str, data: bytes, mime: str = "image/png") -> None:
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(files=[{"name": name, "mimeType": mime, "buffer": data}])


def test_clicking_a_map_point_shows_it_and_links_its_z_to_generate(app_server, page):
    open_page(page, app_server, "Latent map")
    page.wait_for_function(f"({MAP_FIRST_POINT})() !== null")
    point = page.evaluate(MAP_FIRST_POINT)
    page.mouse.move(point["x"], point["y"])
    page.mouse.click(point["x"], point["y"])
    heading = page.get_by_role("heading", name=re.compile(r"Image #\d+"))
    heading.wait_for()
    assert heading.inner_text().strip() == f"Image #{point['id']}"
    page.get_by_text("Sent this image's z (its posterior mean) to the Generate page.").wait_for()
    link = page.locator('[data-testid="stPageLink"] a')
    assert "generate" in link.get_attribute("href")


def test_an_upload_shows_its_point_on_the_map(app_server, page):
    open_page(page, app_server, "Upload & draw")
    upload(page, "my-digit.png", encode(paper_digit()))
    page.locator('[data-testid="stPlotlyChart"] .js-plotly-plot text', has_text="my-digit.png").first.wait_for()
    wait_for_idle(page)
    assert page.get_by_text(re.compile(r"(less|more) typical than \d+% of test digits")).count() == 1


def test_a_bad_upload_shows_its_message(app_server, page):
    open_page(page, app_server, "Upload & draw")
    upload(page, "notes.png", BAD_FILES["notes.png"][0])
    alert = page.locator('[data-testid="stAlert"]', has_text="notes.png: this is not an image")
    alert.wait_for()
    wait_for_idle(page)
    assert page.locator('[data-testid="stException"]').count() == 0


def test_a_file_over_the_upload_limit_is_refused_by_the_browser(app_server, page, tmp_path):
    huge = tmp_path / "huge.png"
    huge.write_bytes(b"\x89PNG" + b"\x00" * (21 * 1024 * 1024))  # server.maxUploadSize is 20 MB
    open_page(page, app_server, "Upload & draw")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(huge)  # a path: no 21 MB over the wire
    page.get_by_text(re.compile(r"File must be 20(\.0)? ?MB or smaller")).wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0


def draw(page, strokes: list[list[tuple[float, float]]]) -> None:
    """Draw on the Draw tab's canvas with the mouse; points are fractions of the canvas's width and height."""
    page.get_by_role("tab", name="Draw a digit").click()
    canvas = page.locator("canvas").last
    canvas.wait_for()
    box = canvas.bounding_box()
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=8)
        page.mouse.up()


def test_a_click_on_the_canvas_is_refused_as_a_dot(app_server, page):
    open_page(page, app_server, "Upload & draw")
    draw(page, [[(0.5, 0.5)]])
    page.get_by_text("drawing: The mark is too small to read").wait_for()


def test_a_small_drawing_is_redrawn_at_mnist_stroke_width(app_server, page):
    open_page(page, app_server, "Upload & draw")
    draw(page, [[(0.42, 0.4), (0.58, 0.4), (0.47, 0.62)]])  # a 7 about 60 pixels tall with the 18-pixel brush
    page.get_by_role("heading", name="drawing").wait_for()
    page.get_by_text("redrawn 3.0 wide along their centre lines").wait_for()
