"""AppTest of the Latent map's state and limits: each model keeps its own picked point and projection,
slow projections say honestly where they are, and small or 1-D models get maps that work."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import captions, no_failure
from image_samples import encode, paper_digit
from vae.checkpoints import save_checkpoint
from vae.models import ModelConfig, build_model
from vae.projection import store as projection_module
from vae.projection import wait_for_projections

MAP = "views/latent_map.py"
UPLOAD = "views/upload.py"
KL_PER_DIM = [0.0, 0.01, 3.0, 1.5]  # z1 and z2 collapsed; z3 carries the most, then z4


# The warm-up thread is for servers; here UMAP compiles only in the tests that choose it.
pytestmark = pytest.mark.usefixtures("no_umap_warmup")


def save_model(root, name: str, dataset: str, latent_dim: int, image_shape=(1, 8, 8), kl_per_dim=None):
    torch.manual_seed(0)
    model = build_model(ModelConfig(image_shape=image_shape, latent_dim=latent_dim, hidden=(16,)))
    history = [{"epoch": 1, "train": {"recon": 30.0, "kl": 2.0, "total": 32.0}, "test": {"recon": 31.0, "kl": 2.5, "total": 33.5},
                "kl_per_dim": kl_per_dim or [1.0] * latent_dim}]
    save_checkpoint(root / name, model, dataset={"name": dataset, "image_shape": list(image_shape)},
                    train={"epochs": 1, "seed": 0}, history=history)


def choose_model(at, name: str):
    at.sidebar.selectbox(key="checkpoint_name").set_value(name).run()
    no_failure(at)
    return at


def test_each_model_keeps_its_own_picked_point_and_projection(app_test, checkpoint_root):
    save_model(checkpoint_root, "digits-z4", "digits", 4, kl_per_dim=KL_PER_DIM)
    at = app_test
    at.run()
    at.switch_page(MAP).run()
    at.number_input(key="map_pick").set_value(12).run()
    no_failure(at)
    assert [s.value for s in at.main.subheader] == ["Image #12"]
    assert at.session_state["pad_z_model"] == "mnist5k-mlp-z2"

    choose_model(at, "digits-z4")
    assert not at.main.subheader  # nobody picked a point on this model
    assert any("Click a point" in i.value for i in at.info)
    assert at.number_input(key="map_pick").value is None
    assert at.session_state["pad_z_model"] == "mnist5k-mlp-z2"  # nothing was sent for a point of this model
    assert at.selectbox(key="map_method").value == "pca"  # its own (quick) default, not the other model's

    at.selectbox(key="map_method").set_value("dims").run()
    no_failure(at)
    # The two dimensions with the most KL, not z1 and z2 (both collapsed here).
    assert (at.selectbox(key="map_dim_x").value, at.selectbox(key="map_dim_y").value) == (2, 3)
    at.number_input(key="map_pick").set_value(7).run()
    assert [s.value for s in at.main.subheader] == ["Image #7"]
    assert at.session_state["pad_z_model"] == "digits-z4" and len(at.session_state["pad_z"]) == 4

    choose_model(at, "mnist5k-mlp-z2")  # back: this model's own point and projection
    assert [s.value for s in at.main.subheader] == ["Image #12"]
    assert at.selectbox(key="map_method").value == "latent"
    choose_model(at, "digits-z4")
    assert at.selectbox(key="map_method").value == "dims" and [s.value for s in at.main.subheader] == ["Image #7"]


def test_a_slow_projection_says_whether_it_waits_or_runs_and_for_how_long(app_test, checkpoint_root, monkeypatch):
    save_model(checkpoint_root, "digits-z4", "digits", 4, kl_per_dim=KL_PER_DIM)
    release = threading.Event()
    real = projection_module.compute_projection

    def held(codes, method, dims=None):
        if method == "tsne":
            release.wait(120)
        return real(codes, method, dims)

    monkeypatch.setattr(projection_module, "compute_projection", held)
    at = app_test
    at.run()
    choose_model(at, "digits-z4")
    at.switch_page(MAP).run()
    try:
        at.selectbox(key="map_method").set_value("tsne").run()
        no_failure(at)
        status = " ".join(i.value for i in at.info)
        assert "t-SNE map of 1,797 codes" in status and (" s so far" in status or "Waiting" in status)
        assert not at.get("progress")  # no bar that stands still at a made-up fraction
    finally:
        release.set()
    assert wait_for_projections(timeout=600)
    at.run()
    no_failure(at)
    assert "t-SNE with perplexity" in captions(at)


def test_a_1d_latent_is_drawn_as_a_strip_and_uploads_land_on_it(app_test, checkpoint_root):
    save_model(checkpoint_root, "digits-z1", "digits", 1)
    at = app_test
    at.run()
    choose_model(at, "digits-z1")
    at.switch_page(MAP).run()
    no_failure(at)
    assert at.selectbox(key="map_method").value == "latent"
    assert at.selectbox(key="map_method").options == ["the latent code itself"]
    assert "PCA, UMAP and t-SNE: a 1-D latent is drawn as itself" in captions(at)
    assert "z1 across, one row per label" in captions(at)
    at.number_input(key="map_pick").set_value(3).run()
    no_failure(at)
    assert [s.value for s in at.main.subheader] == ["Image #3"]

    at.switch_page(UPLOAD).run()
    at.file_uploader(key="upload_files").set_value(("mine.png", encode(paper_digit()), "image/png")).run()
    no_failure(at)
    assert "Placed exactly along z1" in captions(at)


def test_a_folder_of_two_pictures_gets_every_map_it_can_and_the_reason_for_the_rest(app_test, checkpoint_root, tmp_path,
                                                                                    monkeypatch):
    monkeypatch.setenv("LATENT_LAB_FOLDER_ROOTS", str(tmp_path))  # the operator offers this folder
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    for i in range(2):
        Image.fromarray((np.random.default_rng(i).random((28, 28)) * 255).astype(np.uint8)).save(pictures / f"{i}.png")
    save_model(checkpoint_root, "two-pictures", f"folder:{pictures}", 2, image_shape=(1, 28, 28))
    at = app_test
    at.run()
    choose_model(at, "two-pictures")
    at.switch_page(MAP).run()
    no_failure(at)
    offered = at.selectbox(key="map_method").options
    assert "t-SNE" not in offered and "UMAP" not in offered
    assert "at least 17 images; this data set has 2" in captions(at) and "t-SNE: it needs at least 7 images" in captions(at)
    for title in offered:
        at.selectbox(key="map_method").set_value({"the latent code itself": "latent", "PCA": "pca"}[title]).run()
        no_failure(at)
        assert not at.warning, [w.value for w in at.warning]


def test_two_latent_dimensions_open_on_the_two_with_most_kl(app_test, checkpoint_root):
    save_model(checkpoint_root, "digits-z4", "digits", 4, kl_per_dim=KL_PER_DIM)
    at = app_test
    at.run()
    choose_model(at, "digits-z4")
    at.switch_page(MAP).run()
    at.selectbox(key="map_method").set_value("dims").run()
    no_failure(at)
    assert (at.selectbox(key="map_dim_x").value, at.selectbox(key="map_dim_y").value) == (2, 3)  # z3, z4: not z1, z2
    assert "z3" in str(at.get("plotly_chart")[0].proto.spec)
