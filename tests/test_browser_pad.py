"""The latent pad in Chromium: its JavaScript decoder agrees with PyTorch, and it redraws while dragging."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import BUSY_MS, SHIPPED, open_app_page, wait_for_idle
from vae import generate
from vae.checkpoints import load_checkpoint
from vae.components.latent_pad import asset
from vae.models import ModelConfig, build_model

pytestmark = pytest.mark.browser

PARITY_TOLERANCE = 1e-4  # per pixel, images in [0, 1]
PAD_READY = '.lp[data-ready="true"]'


@pytest.fixture(scope="module")
def pad_module(browser):
    """A blank page with latent_pad.js imported as `window.latentPad` (the same text the app sends)."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(BUSY_MS)
    page.set_content("<!doctype html><html><body></body></html>")
    page.evaluate(
        """async (source) => {
            const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
            window.latentPad = await import(url);
        }""",
        asset("latent_pad.js"),
    )
    yield page
    context.close()


def browser_decode(page, model, z: torch.Tensor) -> torch.Tensor:
    """Decode every row of z with the page's decoder, built from the same export the app sends."""
    result = page.evaluate(
        """([data, codes]) => {
            const decoder = latentPad.buildDecoder(data.spec, latentPad.base64ToFloat32(data.weights), data.latent_dim);
            return { engine: decoder.engine, pixels: codes.map((z) => Array.from(decoder.decode(z))) };
        }""",
        [generate.browser_decoder(model).as_data(), z.tolist()],
    )
    assert result["engine"] == "js"
    return torch.tensor(result["pixels"], dtype=torch.float64).reshape(len(z), *model.config.image_shape)


def assert_parity(page, model, count: int = 100, seed: int = 0) -> None:
    z = torch.randn(count, model.config.latent_dim, generator=torch.Generator().manual_seed(seed)) * 1.5
    expected = generate.decode(model, z).double()
    worst = (browser_decode(page, model, z) - expected).abs().max().item()
    assert worst <= PARITY_TOLERANCE, f"browser and PyTorch differ by up to {worst:.2e} per pixel"


@pytest.mark.parametrize("name", ["mnist5k-mlp-z2", "mnist5k-conv-z16"])
def test_browser_decoder_matches_pytorch_for_100_codes(pad_module, name):
    assert_parity(pad_module, load_checkpoint(SHIPPED / name).model)


@pytest.mark.parametrize("config", [
    ModelConfig(arch="conv", image_shape=(3, 8, 8), latent_dim=5, hidden=(12, 10), conv_channels=(4, 6)),
    ModelConfig(arch="conv", image_shape=(1, 16, 8), latent_dim=1, hidden=(7,), conv_channels=(3, 5, 2)),
    ModelConfig(arch="mlp", image_shape=(1, 8, 8), latent_dim=4, hidden=(20, 9)),
], ids=["conv-rgb-two-hidden", "conv-three-steps-non-square", "mlp-two-hidden"])
def test_browser_decoder_follows_the_spec_of_other_shapes(pad_module, config):
    # The JS reads VAE.decoder_spec(); nothing about the shipped sizes is built in.
    torch.manual_seed(1)
    assert_parity(pad_module, build_model(config).eval(), count=20)


def open_generate(page, server) -> None:
    # Enter through the home page and the navigation, as a visitor does.
    open_app_page(page, server)
    page.locator("[data-testid=stSidebarNavLink]", has_text="Generate").click()
    wait_for_idle(page)
    page.wait_for_selector(PAD_READY, state="attached")


def canvas_pixels(page) -> str:
    return page.locator(".lp-image").evaluate("canvas => canvas.toDataURL()")


def reported_z(page) -> list[float]:
    code = page.locator("code").filter(has_text="z = [").inner_text()
    return [float(v) for v in code.split("[")[1].rstrip("]").split(",")]


def frames_drawn(page) -> int:
    return int(page.locator(".lp-image").get_attribute("data-frames"))


def test_the_image_follows_a_dragged_slider_and_the_2d_pad_before_the_mouse_is_released(page, app_server):
    open_generate(page, app_server)

    # A slider: the image changes while the thumb is held down, one frame per input event.
    before, frames_before = canvas_pixels(page), frames_drawn(page)
    slider = page.locator(".lp-sliders input").first.bounding_box()
    y = slider["y"] + slider["height"] / 2
    page.mouse.move(slider["x"] + slider["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(slider["x"] + slider["width"] * 0.95, y, steps=8)
    during = canvas_pixels(page)
    assert during != before, "the image did not change while the thumb was held down"
    assert frames_drawn(page) > frames_before + 1  # a frame per input event, not one at the end
    assert page.get_by_text("Your code").count() == 0  # nothing went to Python yet
    page.mouse.up()
    # On release the settled z comes back to Python: the page shows it and offers the PNG.
    page.get_by_text("Your code").wait_for()
    wait_for_idle(page)
    assert page.get_by_role("button", name="Download PNG").is_visible()
    assert canvas_pixels(page) == during  # the rerun did not pull the pad back

    # The 2-D pad: up and to the right of the centre moves both of its dimensions.
    before, reported_before = canvas_pixels(page), page.locator("code").filter(has_text="z = [").inner_text()
    pad = page.locator(".lp-pad").bounding_box()
    page.mouse.move(pad["x"] + pad["width"] / 2, pad["y"] + pad["height"] / 2)
    page.mouse.down()
    page.mouse.move(pad["x"] + pad["width"] * 0.8, pad["y"] + pad["height"] * 0.2, steps=6)
    assert canvas_pixels(page) != before
    page.mouse.up()
    page.locator("code").filter(has_text="z = [").filter(has_not_text=reported_before).wait_for()
    wait_for_idle(page)
    values = reported_z(page)
    # About +2.4 on a +-4 pad, in both dimensions; the sliders followed the pad.
    assert len(values) == 2 and all(1.5 < v < 3.5 for v in values), values
    assert sorted(page.locator(".lp-value").all_inner_texts()) == sorted(f"{v:.2f}" for v in values)

    # Across is z1 and up is z2, as on the Latent map (this model's z2 carries more KL, and the pad
    # used to put it across): right of the centre and a little below is z1 = +2.4, z2 = -0.8.
    assert page.locator(".lp-pad-label").inner_text() == "z1 → · z2 ↑"
    reported_before = page.locator("code").filter(has_text="z = [").inner_text()
    page.mouse.move(pad["x"] + pad["width"] / 2, pad["y"] + pad["height"] / 2)
    page.mouse.down()
    page.mouse.move(pad["x"] + pad["width"] * 0.8, pad["y"] + pad["height"] * 0.6, steps=6)
    page.mouse.up()
    page.locator("code").filter(has_text="z = [").filter(has_not_text=reported_before).wait_for()
    wait_for_idle(page)
    z1, z2 = reported_z(page)
    assert abs(z1 - 2.4) < 0.3 and abs(z2 + 0.8) < 0.3, (z1, z2)

    # Reset and random act in the browser at once, with no wait for the server.
    before = canvas_pixels(page)
    page.get_by_role("button", name="Reset to zero").click()
    assert page.locator(".lp-value").all_inner_texts() == ["0.00", "0.00"]
    assert canvas_pixels(page) != before
    page.get_by_role("button", name="Random draw from the prior").click()
    assert page.locator(".lp-value").all_inner_texts() != ["0.00", "0.00"]
