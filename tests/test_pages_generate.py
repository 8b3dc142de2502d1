"""AppTest of the Generate page with each shipped checkpoint.

AppTest cannot run the latent pad's JavaScript (tests/test_browser_pad.py does), but it sees what
Python sends the pad: the decoder weights and the pad's data, both checked here.
"""

from __future__ import annotations

import base64
import json

import pytest
import torch

from tests.conftest import SHIPPED
from vae import generate
from vae.checkpoints import load_checkpoint

SHIPPED_NAMES = sorted(p.name for p in SHIPPED.iterdir() if p.is_dir() and not p.name.startswith("."))


def open_generate(app_test, checkpoint: str):
    app_test.session_state["checkpoint_name"] = checkpoint
    app_test.run()
    app_test.switch_page("pages/generate.py")
    app_test.run()
    assert not app_test.exception, [e.value for e in app_test.exception]
    return app_test


def components(at) -> dict[str, dict]:
    """The pad's two component elements by role, with their data decoded."""
    found = {}
    for element in at.get("bidi_component"):
        role = "weights" if "-weights-" in element.key else "pad"
        found[role] = json.loads(element.proto.json)
    return found


def image_urls(at) -> list[str]:
    return [image.value[0] for image in at.get("image")]


@pytest.mark.parametrize("name", SHIPPED_NAMES)
def test_generate_page_renders_and_sends_the_pad_its_decoder(app_test, name):
    at = open_generate(app_test, name)
    assert not at.error
    assert [h.value for h in at.header] == ["The latent pad", "Samples from the prior", "Interpolation"]
    model = load_checkpoint(SHIPPED / name).model
    sent = components(at)
    expected = generate.browser_decoder(model)
    assert sent["weights"]["key"] == expected.key
    assert len(base64.b64decode(sent["weights"]["weights"])) == 4 * sum(
        op[field][1] for op in expected.spec for field in ("weight", "bias") if field in op)
    dims = generate.dimensions_by_kl(model.config.latent_dim, load_checkpoint(SHIPPED / name).history)
    pad = sent["pad"]
    assert pad["decoder"] == expected.key
    assert [d["index"] for d in pad["dims"]] == [d.index for d in dims[:16]]
    assert pad["z"] == [0.0] * model.config.latent_dim
    assert pad["pad"] == [dims[0].index, dims[1].index]
    # The prior grid and one strip per interpolation path are drawn.
    assert len(at.get("image")) >= 3
    captions = " ".join(c for image in at.get("image") for c in image.captions)
    assert "linear" in captions and "spherical" in captions and "seed 0" in captions


def test_weights_message_is_the_same_on_every_rerun(app_test):
    # Streamlit's message cache only spares the browser a resend when the element is byte-identical.
    at = open_generate(app_test, "mnist5k-mlp-z2")
    first = [e.proto.SerializeToString() for e in at.get("bidi_component") if "-weights-" in e.key]
    at.number_input(key="prior_seed").set_value(5).run()
    again = [e.proto.SerializeToString() for e in at.get("bidi_component") if "-weights-" in e.key]
    assert first == again and len(first) == 1


def test_prior_grid_follows_the_seed(app_test):
    at = open_generate(app_test, "mnist5k-mlp-z2")
    grid_seed_0 = image_urls(at)
    at.number_input(key="prior_seed").set_value(7).run()
    grid_seed_7 = image_urls(at)
    assert grid_seed_7 != grid_seed_0
    at.number_input(key="prior_seed").set_value(0).run()
    assert image_urls(at) == grid_seed_0


def test_interpolation_paths_can_be_chosen(app_test):
    at = open_generate(app_test, "mnist5k-conv-z16")
    at.multiselect(key="interp_methods").set_value(["spherical"]).run()
    captions = [c for image in at.get("image") for c in image.captions]
    assert any(c.startswith("spherical") for c in captions) and not any(c.startswith("linear") for c in captions)
    at.multiselect(key="interp_methods").set_value([]).run()
    assert any("at least one path" in info.value for info in at.info)


def test_start_from_a_data_set_image_moves_the_pad_to_its_posterior_mean(app_test):
    at = open_generate(app_test, "mnist5k-conv-z16")
    before = components(at)["pad"]
    at.number_input(key="pad_image_index").set_value(3).run()
    at.button(key="pad_from_image").click().run()
    pad = components(at)["pad"]
    checkpoint = load_checkpoint(SHIPPED / "mnist5k-conv-z16")
    from vae.data import load_dataset

    image = load_dataset("mnist5k").test_images[3:4]
    expected = generate.posterior_means(checkpoint.model, image)[0]
    assert pad["token"] > before["token"]
    assert torch.allclose(torch.tensor(pad["z"]), expected, atol=1e-5)
    # The chosen code is also the page-to-page hand-over code.
    assert at.session_state["pad_z_model"] == "mnist5k-conv-z16"


def test_a_code_handed_over_by_another_page_starts_the_pad(app_test):
    app_test.session_state["pad_z"] = [1.5, -0.25]
    app_test.session_state["pad_z_model"] = "mnist5k-mlp-z2"
    at = open_generate(app_test, "mnist5k-mlp-z2")
    assert components(at)["pad"]["z"] == [1.5, -0.25]


def test_a_code_for_another_model_is_ignored(app_test):
    app_test.session_state["pad_z"] = [1.5, -0.25]
    app_test.session_state["pad_z_model"] = "digits-mlp-z2"
    at = open_generate(app_test, "mnist5k-mlp-z2")
    assert components(at)["pad"]["z"] == [0.0, 0.0]


def test_sliders_shown_and_pad_dimensions_are_chosen_in_python(app_test):
    at = open_generate(app_test, "mnist5k-conv-z16")
    at.multiselect(key="pad_shown_mnist5k-conv-z16").set_value([3, 7]).run()
    assert [d["index"] for d in components(at)["pad"]["dims"]] == [3, 7]
    at.selectbox(key="pad_x_mnist5k-conv-z16").set_value(7).run()
    at.selectbox(key="pad_y_mnist5k-conv-z16").set_value(7).run()
    assert any("two different dimensions" in w.value for w in at.warning)
    assert components(at)["pad"]["pad"] is None
    at.selectbox(key="pad_y_mnist5k-conv-z16").set_value(2).run()
    assert components(at)["pad"]["pad"] == [7, 2]
