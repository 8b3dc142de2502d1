"""AppTest of the Latent map (each projection, picking a point) and Upload & draw (good and bad files)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from conftest import captions, no_failure
from image_samples import BAD_FILES, encode, not_digit_like, paper_digit
from vae.projection import wait_for_projections, wait_for_umap_warmup

MAP = "views/latent_map.py"
UPLOAD = "views/upload.py"


# The warm-up thread is for servers; here UMAP compiles only in the tests that choose it.
pytestmark = pytest.mark.usefixtures("no_umap_warmup")


def open_page(at, page: str, model: str | None = None):
    at.run()
    if model:
        at.sidebar.selectbox(key="checkpoint_name").set_value(model).run()
    at.switch_page(page).run()
    return at


def choose_projection(at, method_title: str):
    """Pick a projection; slow ones finish on a background thread, then the page is run again."""
    at.selectbox(key="map_method").set_value(method_title).run()
    if any("compiling" in p.proto.text for p in at.get("progress")) or any(i.value.startswith(("Computing the", "Waiting to compute")) for i in at.info):
        assert wait_for_projections(timeout=300)
        at.run()
    return at


def choice(at) -> dict:
    """The projection choice of the one model the session has mapped so far."""
    (only,) = at.session_state["map_projection"].values()
    return only


def test_map_of_a_2d_latent_shows_codes_manifold_and_a_picked_point(app_test):
    at = open_page(app_test, MAP)
    no_failure(at)
    assert at.selectbox(key="map_method").value == "latent"
    assert "5,000 points" in captions(at)
    assert "39% and 86%" in captions(at)  # the prior's circles are explained beside the manifold
    assert len(at.get("plotly_chart")) == 2  # the map and the decoded manifold
    assert choice(at)["method"] == "latent"

    at.number_input(key="map_pick").set_value(4321).run()
    no_failure(at)
    assert [s.value for s in at.main.subheader] == ["Image #4321"]
    assert len(at.get("plotly_chart")) == 3  # plus the posterior with its one-sigma ellipse
    assert len(at.session_state["pad_z"]) == 2 and all(isinstance(v, float) for v in at.session_state["pad_z"])
    assert at.session_state["pad_z_model"] == "mnist5k-mlp-z2"
    assert any("Generate" in s.value for s in at.success)

    at.radio(key="map_split").set_value("test").run()
    no_failure(at)
    assert "500 points" in captions(at)


def test_map_of_a_16d_latent_with_pca_and_two_dimensions(app_test, checkpoint_root):
    at = open_page(app_test, MAP, "mnist5k-conv-z16")
    no_failure(at)
    assert at.selectbox(key="map_method").value == "pca"  # a 16-D latent cannot be drawn as itself
    assert "principal components explain" in captions(at)
    assert (checkpoint_root / "mnist5k-conv-z16" / "projections" / "pca.npz").is_file()

    choose_projection(at, "dims")
    at.selectbox(key="map_dim_x").set_value(3).run()
    at.selectbox(key="map_dim_y").set_value(7).run()
    no_failure(at)
    assert choice(at)["dims"] == (3, 7)

    at.number_input(key="map_pick").set_value(12).run()
    no_failure(at)
    assert len(at.session_state["pad_z"]) == 16

    at.selectbox(key="map_dim_y").set_value(3).run()
    assert any("two different" in w.value for w in at.warning)

    # Back to the 2-D model: the projection falls back to one it offers.
    at.sidebar.selectbox(key="checkpoint_name").set_value("mnist5k-mlp-z2").run()
    no_failure(at)
    assert at.selectbox(key="map_method").value in ("latent", "dims", "pca")


def test_tsne_map_and_an_upload_placed_by_nearest_neighbours(app_test):
    at = open_page(app_test, MAP, "digits-mlp-z2")
    choose_projection(at, "tsne")
    no_failure(at)
    assert "t-SNE with perplexity" in captions(at)

    at.switch_page(UPLOAD).run()
    at.file_uploader(key="upload_files").set_value(("mine.png", encode(paper_digit()), "image/png")).run()
    no_failure(at)
    assert "t-SNE cannot place new points" in captions(at)


def test_umap_map_and_an_upload_placed_by_transform(app_test):
    app_test.default_timeout = 400  # numba compiles UMAP's transform in this process (minutes on a busy machine)
    at = open_page(app_test, MAP, "digits-mlp-z2")
    choose_projection(at, "umap")
    no_failure(at)
    assert "UMAP with 15 neighbours" in captions(at)
    assert wait_for_umap_warmup(timeout=400)  # the page started it; it compiles the transform too

    at.switch_page(UPLOAD).run()
    at.file_uploader(key="upload_files").set_value(("mine.png", encode(paper_digit()), "image/png")).run()
    no_failure(at)
    assert "UMAP's transform" in captions(at)


def test_upload_shows_steps_score_neighbours_and_sends_z(app_test):
    at = open_page(app_test, UPLOAD)
    no_failure(at)
    assert any("Upload one or more images" in i.value for i in at.info)

    at.file_uploader(key="upload_files").set_value(("seven.png", encode(paper_digit()), "image/png")).run()
    no_failure(at)
    text = captions(at)
    assert "most of the picture is light" in text and "centre of mass" in text
    assert "redrawn 3.0 wide along their centre lines" in text
    assert "Nearest data set images in latent space" in text
    assert any("test digits" in m.value and "-ELBO" in m.value for m in at.markdown)
    assert "Placed exactly" in text  # the 2-D model's map is the latent itself

    at.button(key="upload_send_0").click().run()
    assert len(at.session_state["pad_z"]) == 2
    assert at.session_state["pad_z_model"] == "mnist5k-mlp-z2"


def test_a_code_sent_from_upload_does_not_take_the_axes_of_an_earlier_map_pick(app_test):
    at = open_page(app_test, UPLOAD)
    at.session_state["pad_axes"] = [1, 0]  # left by a point picked earlier on a map of z2 across, z1 up
    at.file_uploader(key="upload_files").set_value(("seven.png", encode(paper_digit()), "image/png")).run()
    at.button(key="upload_send_0").click().run()
    at.switch_page("views/generate.py").run()
    no_failure(at)
    # the uploaded image's code was never drawn on those axes: the pad opens on its own, z1 across and z2 up
    assert at.selectbox(key="pad_x_mnist5k-mlp-z2_z2").value == 0 and at.selectbox(key="pad_y_mnist5k-mlp-z2_z2").value == 1


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_each_bad_upload_gets_its_message_and_the_page_stays_up(app_test, name):
    at = open_page(app_test, UPLOAD)
    data, message = BAD_FILES[name]
    good = encode(paper_digit())
    at.file_uploader(key="upload_files").set_value([(name, data, "image/png"), ("good.png", good, "image/png")]).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and errors[0].startswith(name) and message in errors[0]
    assert [s.value for s in at.main.subheader if s.value == "good.png"]  # the other file is still shown


def test_awkward_but_valid_uploads_are_all_accepted(app_test):
    digit = paper_digit()
    animated = io.BytesIO()
    digit.save(animated, "GIF", save_all=True, append_images=[Image.new("L", digit.size, 0)])
    cmyk = digit.convert("CMYK")
    rgba = digit.convert("RGBA")
    ImageDraw.Draw(rgba).rectangle([0, 0, 30, 30], fill=(0, 0, 0, 0))
    files = [
        ("sixteen.png", encode(Image.fromarray(np.asarray(digit, dtype=np.uint16) * 257)), "image/png"),
        ("cmyk.jpg", encode(cmyk, "JPEG"), "image/jpeg"),
        ("palette.png", encode(digit.convert("P")), "image/png"),
        ("alpha.png", encode(rgba), "image/png"),
        ("moving.gif", animated.getvalue(), "image/gif"),
    ]
    at = open_page(app_test, UPLOAD)
    at.file_uploader(key="upload_files").set_value(files).run()
    no_failure(at)
    assert {s.value for s in at.main.subheader} >= {name for name, _, _ in files}
    assert "first frame is used" in captions(at)


def test_ink_that_is_not_digit_like_is_said_beside_its_score(app_test):
    at = open_page(app_test, UPLOAD)
    at.file_uploader(key="upload_files").set_value(("notes.png", encode(not_digit_like()["writing"]), "image/png")).run()
    no_failure(at)
    assert any("separate marks" in w.value for w in at.warning)
    assert any("-ELBO" in m.value for m in at.markdown)  # still scored


def test_each_file_is_prepared_once_per_session_whatever_its_name(app_test, monkeypatch):
    import vae.images

    calls = []
    prepare = vae.images.prepare_image
    monkeypatch.setattr(vae.images, "prepare_image", lambda *args, **kwargs: calls.append(1) or prepare(*args, **kwargs))
    digit = encode(paper_digit())
    at = open_page(app_test, UPLOAD)
    at.file_uploader(key="upload_files").set_value(("one.png", digit, "image/png")).run()
    at.run()
    at.file_uploader(key="upload_files").set_value([("one.png", digit, "image/png"), ("again.png", digit, "image/png")]).run()
    no_failure(at)
    assert {s.value for s in at.main.subheader} >= {"one.png", "again.png"}
    assert len(calls) == 1


def test_the_draw_tab_of_a_colour_model_says_nothing_is_inverted(app_test, checkpoint_root, tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("LATENT_LAB_FOLDER_ROOTS", str(tmp_path))  # the operator offers this folder

    from vae.checkpoints import save_checkpoint
    from vae.datasets import folder_dataset_name
    from vae.models import ModelConfig, build_model

    for label, colour in (("red", (200, 30, 30)), ("blue", (30, 30, 200))):
        (tmp_path / "pictures" / label).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (32, 32), tuple(c + 10 * i for c in colour)).save(tmp_path / "pictures" / label / f"{i}.png")
    torch.manual_seed(0)
    model = build_model(ModelConfig(image_shape=(3, 32, 32), latent_dim=2, hidden=(16,)))
    history = [{"epoch": 1, "train": {"recon": 30.0, "kl": 2.0, "total": 32.0},
                "test": {"recon": 31.0, "kl": 2.5, "total": 33.5}, "kl_per_dim": [1.0, 1.5]}]
    save_checkpoint(checkpoint_root / "colours", model, train={"epochs": 1, "seed": 0}, history=history,
                    dataset={"name": folder_dataset_name(tmp_path / "pictures", size=32, color="rgb")})
    at = open_page(app_test, UPLOAD, "colours")
    no_failure(at)
    text = captions(at)
    assert "nothing is inverted" in text and "MNIST" not in text
