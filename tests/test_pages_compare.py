"""AppTest of the Compare page, and of a sweep started on the Train page that ends on it."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from conftest import WAIT, no_failure, open_page, page_text
from vae import jobs


pytestmark = pytest.mark.usefixtures("no_umap_warmup")


def compare(at, names: list[str]):
    at = open_page(at, "views/compare.py")
    at.multiselect(key="compare_models").set_value(names)
    return at.run()


def charts(at) -> int:
    return len(at.get("plotly_chart"))


def test_two_models_of_different_data_sets_are_drawn_with_a_sentence_saying_they_do_not_compare(app_test):
    at = compare(app_test.run(), ["digits-mlp-z2", "mnist5k-conv-z16"])
    no_failure(at)
    assert "not comparable" in at.warning[0].value and "different data sets (digits, mnist5k)" in at.warning[0].value
    # curves, plane, two reconstruction grids (one per data set), KL bars, two traversals
    assert charts(at) == 7
    assert [row["model"] for row in at.dataframe[0].value.to_dict("records")] == ["digits-mlp-z2", "mnist5k-conv-z16"]


def test_six_models_of_one_data_set_compare_and_a_seventh_cannot_be_added(app_test, checkpoint_root):
    names = ["digits-mlp-z2"]
    for copy in range(1, 6):
        shutil.copytree(checkpoint_root / "digits-mlp-z2", checkpoint_root / f"digits-copy-{copy}")
        names.append(f"digits-copy-{copy}")
    at = compare(app_test.run(), names)
    no_failure(at)
    assert "All 6 models were trained on digits" in at.success[0].value
    assert charts(at) == 4 + 6  # curves, plane, one reconstruction grid, KL bars; six traversals
    assert at.multiselect(key="compare_models").max_selections == 6


def test_a_checkpoint_deleted_while_selected_is_taken_off_with_a_message(app_test, checkpoint_root):
    at = compare(app_test.run(), ["digits-mlp-z2", "mnist5k-mlp-z2", "mnist5k-conv-z16"])
    no_failure(at)
    shutil.rmtree(checkpoint_root / "mnist5k-conv-z16")
    at.run()
    assert not at.exception
    assert "mnist5k-conv-z16 can no longer be read" in at.warning[0].value
    assert at.multiselect(key="compare_models").value == ["digits-mlp-z2", "mnist5k-mlp-z2"]
    assert charts(at) > 0
    shutil.rmtree(checkpoint_root / "mnist5k-mlp-z2")
    at.run()
    assert not at.exception
    assert "Choose at least 2 models" in at.info[0].value


def test_one_model_only_asks_for_another(app_test):
    at = compare(app_test.run(), ["digits-mlp-z2"])
    no_failure(at)
    assert "Choose at least 2 models" in at.info[0].value


def test_a_sweep_of_two_betas_queues_two_runs_and_both_appear_in_compare(app_test, checkpoint_root):
    at = open_page(app_test.run(), "views/train.py")
    at.selectbox(key="train_dataset").set_value("digits").run()
    at.number_input(key="train_epochs").set_value(1)
    at.number_input(key="train_batch").set_value(256)
    at.text_input(key="train_name").set_value("digits-sweep")
    at.selectbox(key="train_sweep").set_value("beta")
    at.text_input(key="train_sweep_values").set_value("1, 4")
    at.button(key="train_start").click().run()
    no_failure(at)
    group = [job for job in jobs.shared_manager().jobs() if job.name.startswith("digits-sweep-")]
    assert sorted(job.name for job in group) == ["digits-sweep-beta1", "digits-sweep-beta4"]
    assert len({job.group for job in group}) == 1
    assert "Sweep: digits-sweep (2 runs" in page_text(at) or any("Sweep: digits-sweep" in s.value for s in at.subheader)
    for job in group:
        assert job.wait(WAIT).status == jobs.FINISHED, job.view().message
    at.run()  # the Train page sees the sweep has ended and opens Compare on it
    no_failure(at)
    assert at.title[0].value == "Compare models"
    assert at.multiselect(key="compare_models").value == ["digits-sweep-beta1", "digits-sweep-beta4"]
    assert "β (1, 4)" in at.success[0].value
    assert (checkpoint_root / "digits-sweep-beta4" / "config.json").exists()


def train_tiny_shapes_model(root, name: str, beta: float) -> None:
    """A 1-epoch MLP on `shapes` saved as a checkpoint under root (seconds on one thread)."""
    import torch

    from vae.checkpoints import save_checkpoint
    from vae.datasets import load_dataset
    from vae.models import ModelConfig
    from vae.train import TrainConfig, checkpoint_story, train

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        dataset = load_dataset("shapes")
        model_config = ModelConfig(arch="mlp", image_shape=dataset.image_shape, latent_dim=3, hidden=(32,))
        train_config = TrainConfig(dataset="shapes", epochs=1, batch_size=256, beta=beta, device="cpu")
        result = train(model_config, train_config, dataset=dataset)
        save_checkpoint(root / name, result.model, **checkpoint_story(model_config, train_config, dataset, result))
    finally:
        torch.set_num_threads(threads)


def test_shapes_models_get_the_mi_matrix_mig_and_traversal_rows_named_by_factor(app_test, checkpoint_root):
    for name, beta in (("tiny-shapes-b1", 1.0), ("tiny-shapes-b4", 4.0)):
        train_tiny_shapes_model(checkpoint_root, name, beta)
    at = compare(app_test.run(), ["tiny-shapes-b1", "tiny-shapes-b4"])
    no_failure(at)
    table = at.dataframe[0].value.to_dict("records")
    assert all(0.0 <= row["MIG"] <= 1.0 for row in table)
    assert "MIG (Chen et al. 2018)" in page_text(at)
    figures = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    heatmaps = [trace for figure in figures for trace in figure["data"] if trace.get("type") == "heatmap"]
    assert len(heatmaps) == 2 and all(trace["y"] == ["shape", "scale", "rotation", "x", "y"] for trace in heatmaps)
    rows = [label for figure in figures if figure["data"][0].get("type") == "image" and "KL" in str(figure["layout"]["yaxis"])
            for label in figure["layout"]["yaxis"]["ticktext"]]
    assert rows and all(re.fullmatch(r"z\d · KL \d+\.\d\d · (shape|scale|rotation|x|y) \(\d+%\)", label) for label in rows)


def test_the_latent_map_colours_shapes_by_any_factor_and_a_digits_model_by_label_only(app_test, checkpoint_root):
    train_tiny_shapes_model(checkpoint_root, "tiny-shapes-map", 1.0)
    at = open_page(app_test.run(), "views/latent_map.py", "tiny-shapes-map")
    no_failure(at)
    colour = at.radio(key="map_colour")
    assert colour.options == ["label", "shape", "scale", "rotation", "x", "y"]
    colour.set_value("rotation").run()
    no_failure(at)
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    data = [trace for trace in figure["data"] if trace.get("customdata")]
    assert len(data) == 1 and data[0]["marker"]["colorbar"]["title"]["text"] == "rotation"
    at.radio(key="map_colour").set_value("shape").run()
    figure = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert {trace["name"] for trace in figure["data"]} >= {"square", "ellipse", "triangle", "heart"}
    at = open_page(at, "views/latent_map.py", "digits-mlp-z2")
    no_failure(at)
    assert not [radio for radio in at.radio if radio.key == "map_colour"]


def test_a_model_whose_config_names_a_folder_the_server_does_not_offer_is_compared_without_reading_it(
        app_test, checkpoint_root, tmp_path):
    import numpy as np
    from PIL import Image

    private = tmp_path / "private"  # pictures on the server that the operator never offered
    for label in ("a", "b"):
        (private / label).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.full((28, 28), 40 * i, np.uint8)).save(private / label / f"{i}.png")
    shutil.copytree(checkpoint_root / "digits-mlp-z2", checkpoint_root / "digits-elsewhere")
    config_file = checkpoint_root / "digits-elsewhere" / "config.json"
    config = json.loads(config_file.read_text())
    config["dataset"]["name"] = config["train"]["dataset"] = f"folder:{private}?size=28"
    config_file.write_text(json.dumps(config))
    at = compare(app_test.run(), ["digits-mlp-z2", "digits-elsewhere"])
    no_failure(at)
    assert any("folder this server does not offer" in w.value for w in at.warning), [w.value for w in at.warning] + [m.value for m in at.multiselect]


def test_another_test_image_or_the_prior_centre_redraws_the_traversals_from_there(app_test):
    at = compare(app_test.run(), ["digits-mlp-z2", "mnist5k-mlp-z2"])
    no_failure(at)

    def traversal_pictures(at) -> list[str]:
        return [chart.proto.spec for chart in at.get("plotly_chart")
                if json.loads(chart.proto.spec)["layout"].get("title", {}).get("text")]

    first = traversal_pictures(at)
    assert len(first) == 2
    at.number_input(key="compare_image").set_value(5).run()
    no_failure(at)
    moved = traversal_pictures(at)
    assert len(moved) == 2 and all(a != b for a, b in zip(first, moved))
    at.radio(key="compare_base").set_value("0, the centre of the prior").run()
    no_failure(at)
    assert at.number_input(key="compare_image").disabled
    centre = traversal_pictures(at)
    assert len(centre) == 2 and all(a != b for a, b in zip(moved, centre))
