"""AppTest of the Explain page with every shipped model, and the Upload page's IWAE typicality and hand-over."""

from __future__ import annotations

import json
import re

import pytest

from conftest import SHIPPED, no_failure
from image_samples import encode, paper_digit

EXPLAIN = "views/explain.py"
UPLOAD = "views/upload.py"
SHIPPED_NAMES = sorted(p.name for p in SHIPPED.iterdir() if p.is_dir() and not p.name.startswith("."))
STAGE_COUNT = 9


pytestmark = pytest.mark.usefixtures("no_umap_warmup")


def open_explain(at, model: str | None = None):
    at.run()
    if model:
        at.sidebar.selectbox(key="checkpoint_name").set_value(model).run()
    return at.switch_page(EXPLAIN).run()


def stage_headings(at) -> list[str]:
    return [h.value for h in at.subheader if re.match(r"\d · ", h.value)]


def z_caption(at) -> str:
    return next(c.value for c in at.caption if c.value.startswith("z = ("))


def table_text(at) -> str:
    return "\n".join(t.value.to_string() for t in at.table)


@pytest.mark.parametrize("model", SHIPPED_NAMES)
def test_every_stage_ladder_and_reference_for_each_shipped_model(app_test, model):
    at = open_explain(app_test, model)
    no_failure(at)
    assert stage_headings(at) == ["1 · the image x"]  # step by step starts at the image
    assert len(at.get("graphviz_chart")) == 1

    at.radio(key="explain_mode").set_value("all at once").run()
    no_failure(at)
    assert len(stage_headings(at)) == STAGE_COUNT
    text = table_text(at)
    for rung in ("ELBO", "IWAE, K = 10", "IWAE, K = 1,000", "IWAE, K = 5,000", "independent pixels", "floor of the likelihood",
                 "test −IWAE, K = 20"):
        assert rung in text
    dimensions = json.loads((SHIPPED / model / "config.json").read_text())["model"]["latent_dim"]
    two_d = dimensions == 2
    assert ("exact (grid)" in text) == two_d
    assert any("p(z|x) under q(z|x)" in h.value for h in at.subheader) == two_d
    assert ("published" in text) == model.startswith("mnist")  # only with its setting, and only for MNIST
    assert re.search(r"z\d+ [+-]\d\.\d{3}", z_caption(at)) and f"z1..z{dimensions}" in " ".join(c.value for c in at.caption)


def test_stepping_through_the_stages_and_resampling_epsilon(app_test):
    at = open_explain(app_test, "digits-mlp-z2")
    for count in range(2, STAGE_COUNT + 1):
        at.button(key="explain_next").click().run()
        no_failure(at)
        assert len(stage_headings(at)) == count
    assert any("How tight is the ELBO" in h.value for h in at.header)  # the bound follows the last stage
    at.button(key="explain_back").click().run()
    assert len(stage_headings(at)) == STAGE_COUNT - 1 and not any("How tight" in h.value for h in at.header)

    before = z_caption(at)
    at.button(key="explain_resample").click().run()
    no_failure(at)
    assert at.number_input(key="explain_seed").value == 1
    assert z_caption(at) != before
    at.number_input(key="explain_seed").set_value(0).run()
    assert z_caption(at) == before  # the seed makes it repeatable


def test_beta_changes_the_objective_but_not_the_elbo(app_test):
    at = open_explain(app_test, "digits-mlp-z2")
    at.radio(key="explain_mode").set_value("all at once").run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["objective at β = 1"] == metrics["−ELBO (nats)"]
    at.slider(key="explain_beta").set_value(0.5).run()
    no_failure(at)
    changed = {m.label: m.value for m in at.metric}
    assert changed["ELBO (nats)"] == metrics["ELBO (nats)"]
    assert float(changed["objective at β = 0.5"]) < float(metrics["objective at β = 1"])


def test_picking_a_test_image_by_label(app_test):
    at = open_explain(app_test, "digits-mlp-z2")
    at.radio(key="explain_how").set_value("by label").run()
    at.selectbox(key="explain_label").set_value(7).run()
    at.number_input(key="explain_nth").set_value(3).run()
    no_failure(at)
    assert any("(7)" in caption for image in at.image for caption in image.captions)


def test_an_upload_is_ranked_by_iwae_and_handed_to_explain(app_test):
    at = app_test.run()
    at.switch_page(UPLOAD).run()
    at.file_uploader(key="upload_files").set_value(("seven.png", encode(paper_digit()), "image/png")).run()
    no_failure(at)
    score = next(m.value for m in at.markdown if "typical than" in m.value)
    assert "IWAE, K = 20" in score and "−log p(x) ≤" in score  # says which number it ranks by

    at.button(key="upload_explain_0").click().run()
    at.switch_page(EXPLAIN).run()
    no_failure(at)
    assert at.radio(key="explain_how").value == "from Upload & draw"
    assert any("seven.png" in caption for image in at.image for caption in image.captions)


def test_switching_to_a_label_with_fewer_images_keeps_the_page_up(app_test):
    at = open_explain(app_test, "digits-mlp-z2")
    at.radio(key="explain_how").set_value("by label").run()
    sizes = {}
    for label in range(10):
        at.selectbox(key="explain_label").set_value(label).run()
        sizes[label] = int(at.number_input(key="explain_nth").proto.max)
    big, small = max(sizes, key=sizes.get), min(sizes, key=sizes.get)
    assert sizes[big] > sizes[small]
    at.selectbox(key="explain_label").set_value(big).run()
    at.number_input(key="explain_nth").set_value(sizes[big]).run()
    at.selectbox(key="explain_label").set_value(small).run()
    no_failure(at)
    assert at.number_input(key="explain_nth").value == sizes[small]


def test_two_uploads_with_the_same_name_get_their_own_numbers(app_test):
    import numpy as np

    at = open_explain(app_test, "digits-mlp-z2")
    ladders = []
    for brightness in (0.2, 0.8):
        pixels = np.full((1, 1, 8, 8), brightness, np.float32)
        at.session_state["explain_image"] = {"model": "digits-mlp-z2", "name": "drawing", "x": pixels}
        at.radio(key="explain_mode").set_value("all at once")
        at.run()
        no_failure(at)
        assert at.radio(key="explain_how").value == "from Upload & draw"
        ladders.append(at.table[0].value.to_string())
    assert ladders[0] != ladders[1]


def test_a_model_saved_later_joins_the_references_without_recomputing_the_test_iwae(app_test, checkpoint_root,
                                                                                   monkeypatch):
    import shutil

    from vae import likelihood

    calls = []
    real = likelihood.iwae_of_test_split
    monkeypatch.setattr(likelihood, "iwae_of_test_split", lambda *a, **k: calls.append(1) or real(*a, **k))
    at = open_explain(app_test, "digits-mlp-z2")
    at.radio(key="explain_mode").set_value("all at once").run()
    no_failure(at)
    assert "independent pixels" in table_text(at) and "model digits-later" not in table_text(at)
    computed = len(calls)
    shutil.copytree(checkpoint_root / "digits-mlp-z2", checkpoint_root / "digits-later")  # another student's run ends
    at.run()
    no_failure(at)
    assert "model digits-later" in table_text(at)
    assert len(calls) == computed  # the test split's IWAE of this model was kept, not recomputed
