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
from vae.history import read_history

SHIPPED_NAMES = sorted(p.name for p in SHIPPED.iterdir() if p.is_dir() and not p.name.startswith("."))


def open_generate(app_test, checkpoint: str):
    app_test.session_state["checkpoint_name"] = checkpoint
    app_test.switch_page("views/generate.py")
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
    dims = generate.dimensions_by_kl(model.config.latent_dim, read_history(load_checkpoint(SHIPPED / name).history))
    pad = sent["pad"]
    assert pad["decoder"] == expected.key
    assert [d["index"] for d in pad["dims"]] == [d.index for d in dims[:16]]
    assert pad["z"] == [0.0] * model.config.latent_dim
    across, up = generate.default_pair(dims)
    assert pad["pad"] == [across, up] and pad["pad_labels"] == [f"z{across + 1}", f"z{up + 1}"]
    # The prior grid and one strip per interpolation path are drawn.
    assert len(at.get("image")) >= 3
    captions = " ".join(c for image in at.get("image") for c in image.captions)
    assert "linear" in captions and "spherical" in captions and "seed 0" in captions


def test_a_new_seed_redraws_the_prior_grid_but_the_weights_are_not_resent(app_test):
    at = open_generate(app_test, "mnist5k-mlp-z2")
    weights = [e.proto.SerializeToString() for e in at.get("bidi_component") if "-weights-" in e.key]
    grid_seed_0 = image_urls(at)
    at.number_input(key="prior_seed").set_value(7).run()
    assert image_urls(at) != grid_seed_0
    # Streamlit's message cache spares the browser a resend only when the element is byte-identical.
    assert [e.proto.SerializeToString() for e in at.get("bidi_component") if "-weights-" in e.key] == weights
    at.number_input(key="prior_seed").set_value(0).run()
    assert image_urls(at) == grid_seed_0


def png_of_test_image(index: int) -> bytes:
    from vae.datasets import load_dataset

    return generate.image_png(load_dataset("mnist5k").test_images[index], width=28)


def strip_captions(at) -> list[str]:
    return [c for image in at.get("image") for c in image.captions if c.startswith(generate.INTERPOLATIONS)]


def test_interpolation_ends_from_uploads_and_a_choice_of_paths(app_test):
    at = open_generate(app_test, "mnist5k-mlp-z2")
    at.radio(key="interp_a_source").set_value("upload").run()
    assert any("Upload an image" in info.value for info in at.info)
    assert strip_captions(at) == []
    at.file_uploader(key="interp_a_upload").set_value(("seven.png", png_of_test_image(0), "image/png")).run()
    assert not at.error
    assert [c.split(":")[0] for c in strip_captions(at)] == ["linear", "spherical"]
    # A bad file gets its message, the page stays up, and no strip is drawn from it.
    at.radio(key="interp_b_source").set_value("upload").run()
    at.file_uploader(key="interp_b_upload").set_value(("notes.png", b"this is text, not a picture", "image/png")).run()
    assert not at.exception
    assert any("notes.png" in error.value for error in at.error)
    assert strip_captions(at) == []
    at.radio(key="interp_b_source").set_value("test set").run()
    at.multiselect(key="interp_methods").set_value(["spherical"]).run()
    assert [c.split(":")[0] for c in strip_captions(at)] == ["spherical"]
    at.multiselect(key="interp_methods").set_value([]).run()
    assert any("at least one path" in info.value for info in at.info)


def test_the_pad_starts_from_a_handed_over_code_or_a_data_set_image(app_test):
    app_test.session_state["pad_z"] = [1.5, -0.25]
    app_test.session_state["pad_z_model"] = "digits-mlp-z2"
    at = open_generate(app_test, "mnist5k-mlp-z2")
    assert components(at)["pad"]["z"] == [0.0, 0.0]  # a code for another model is ignored
    at.session_state["pad_z_model"] = "mnist5k-mlp-z2"
    at.run()
    handed = components(at)["pad"]
    assert handed["z"] == [1.5, -0.25]
    at.number_input(key="pad_image_index").set_value(3).run()
    at.button(key="pad_from_image").click().run()
    pad = components(at)["pad"]
    from vae.datasets import load_dataset

    expected = generate.posterior_means(load_checkpoint(SHIPPED / "mnist5k-mlp-z2").model, load_dataset("mnist5k").test_images[3:4])[0]
    assert pad["token"] > handed["token"]
    assert torch.allclose(torch.tensor(pad["z"]), expected, atol=1e-5)
    # The chosen code is also the page-to-page hand-over code.
    assert at.session_state["pad_z"] == pad["z"] and at.session_state["pad_z_model"] == "mnist5k-mlp-z2"


def test_the_pad_puts_z1_across_and_z2_up_like_the_latent_map(app_test):
    # mnist5k-mlp-z2's second dimension carries more KL (2.96 vs 2.31 nats): the pad used to put it
    # across and call it "z1", so a code (-0.54, -2.99) on the map sat at (-2.99, -0.54) on the pad.
    at = open_generate(app_test, "mnist5k-mlp-z2")
    pad = components(at)["pad"]
    assert pad["pad"] == [0, 1] and pad["pad_labels"] == ["z1", "z2"]
    assert [d["label"].split(" ·")[0] for d in pad["dims"]] == ["z2", "z1"]  # sliders: most informative first
    assert at.selectbox(key="pad_x_mnist5k-mlp-z2_z2").value == 0 and at.selectbox(key="pad_y_mnist5k-mlp-z2_z2").value == 1
    assert at.selectbox(key="pad_x_mnist5k-mlp-z2_z2").format_func(0) == "z1"


def test_a_code_from_a_map_of_two_dimensions_keeps_the_maps_axes_on_the_pad(app_test):
    # The map draws z8 across and z3 up: the pad must too, with the clicked point where the map showed it.
    app_test.session_state["checkpoint_name"] = "mnist5k-conv-z16"
    app_test.switch_page("views/latent_map.py")
    app_test.run()
    app_test.selectbox(key="map_method").set_value("dims").run()
    app_test.selectbox(key="map_dim_x").set_value(7).run()
    app_test.selectbox(key="map_dim_y").set_value(2).run()
    app_test.number_input(key="map_pick").set_value(12).run()
    assert not app_test.exception
    mu = app_test.session_state["pad_z"]
    at = open_generate(app_test, "mnist5k-conv-z16")
    pad = components(at)["pad"]
    assert pad["pad"] == [7, 2] and pad["pad_labels"] == ["z8", "z3"]
    assert pad["z"] == mu  # so the dot sits at (mu[7], mu[2]), as on the map
    # Taken once: the user's own choice on Generate stands on the next run.
    at.selectbox(key="pad_y_mnist5k-conv-z16_z16").set_value(4).run()
    assert components(at)["pad"]["pad"] == [7, 4]


def test_generate_names_the_same_collapsed_dimensions_as_loss_curves(app_test, checkpoint_root):
    # Between the two old thresholds (0.01 and 0.1 nats), Loss curves said "collapsed" and Generate did not.
    config_path = checkpoint_root / "mnist5k-conv-z16" / "config.json"
    config = json.loads(config_path.read_text())
    kl = config["history"][-1]["kl_per_dim"]
    kl[3], kl[8] = 0.05, 0.02
    config_path.write_text(json.dumps(config))
    at = open_generate(app_test, "mnist5k-conv-z16")
    assert any(c.value == "2 of 16 dimensions have collapsed: z4, z9." for c in at.caption)
    at.switch_page("views/loss_curves.py").run()
    titles = [json.loads(chart.proto.spec)["layout"].get("title", {}).get("text") for chart in at.get("plotly_chart")]
    assert "14 of 16 dimensions active" in titles


def test_sliders_shown_and_pad_dimensions_are_chosen_in_python(app_test):
    at = open_generate(app_test, "mnist5k-conv-z16")
    at.multiselect(key="pad_shown_mnist5k-conv-z16_z16").set_value([3, 7]).run()
    assert [d["index"] for d in components(at)["pad"]["dims"]] == [3, 7]
    at.selectbox(key="pad_x_mnist5k-conv-z16_z16").set_value(7).run()
    at.selectbox(key="pad_y_mnist5k-conv-z16_z16").set_value(7).run()
    assert any("two different dimensions" in w.value for w in at.warning)
    assert components(at)["pad"]["pad"] is None
    at.selectbox(key="pad_y_mnist5k-conv-z16_z16").set_value(2).run()
    assert components(at)["pad"]["pad"] == [7, 2]
