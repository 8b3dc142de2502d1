"""A hostile config.json in any checkpoint folder is listed with its error and never breaks a page.

Each case is a folder a student (or a broken disk) could leave in the checkpoints root: JSON nested
100,000 deep, a 5,000-digit number, a text where a number belongs. None is the selected model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import ROOT, SHIPPED
from vae.checkpoints import CONFIG_FILE, CheckpointError, list_checkpoints, load_checkpoint

GOOD = SHIPPED / "digits-mlp-z2"
PAGES = tuple(line.split('"')[1] for line in (ROOT / "app.py").read_text().splitlines() if "st.Page(" in line)  # every page


def good_config() -> dict:
    return json.loads((GOOD / CONFIG_FILE).read_text())


def edited(change) -> str:
    config = good_config()
    change(config)
    return json.dumps(config)


def with_raw(key_path: tuple[str, ...], raw: str) -> str:
    """The good config with one value replaced by raw JSON text (numbers json.dumps could not write)."""
    config = good_config()
    target = config
    for key in key_path[:-1]:
        target = target[key]
    target[key_path[-1]] = "@@RAW@@"
    return json.dumps(config).replace('"@@RAW@@"', raw)


HOSTILE = {
    "nested 100,000 deep": ('{"model": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    "nested 100,000 deep inside an extra entry": (with_raw(("notes",), "[" * 100_000 + "]" * 100_000), "nested too deeply"),
    "400,000 one-item lists": (with_raw(("notes",), "[" + ",".join(["[0]"] * 400_000) + "]"), "lists and objects"),
    "a 5,000-digit latent size": (with_raw(("model", "latent_dim"), "9" * 5000), "5,000 digits"),
    "a 5,000-digit loss": (with_raw(("final_test", "total"), "1" * 5000), "5,000 digits"),
    "beta is a word": (edited(lambda c: c["train"].update(beta="high")), "train.beta must be a number"),
    "the final loss is a word": (edited(lambda c: c["final_test"].update(total="low")), "final_test.total must be a number"),
    "a hidden width is a word": (edited(lambda c: c["model"].update(hidden=["wide"])), "Hidden widths must be whole numbers"),
    "a billion hidden units": (edited(lambda c: c["model"].update(hidden=[10 ** 9])), "hidden layers"),
    "a loss is NaN": (with_raw(("history", 0, "test", "kl"), "NaN"), "NaN"),
    "a history loss is a list": (edited(lambda c: c["history"][0]["train"].update(recon=[1])), "history[1].train.recon"),
    "kl per dimension holds words": (edited(lambda c: c["history"][-1].update(kl_per_dim=["a", "b"])), "kl_per_dim"),
    "the epoch count is a word": (edited(lambda c: c["train"].update(epochs="many")), "train.epochs"),
    "the data set name is a number": (edited(lambda c: c["dataset"].update(name=7)), "dataset.name"),
}


def hostile_root(root: Path) -> Path:
    for number, (text, _) in enumerate(HOSTILE.values()):
        folder = root / f"hostile-{number:02d}"
        shutil.copytree(GOOD, folder, ignore=shutil.ignore_patterns("projections"))
        (folder / CONFIG_FILE).write_text(text)
    return root


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_config_is_listed_with_its_error_and_refused_before_any_model_is_built(tmp_path, monkeypatch, case):
    import vae.models

    text, message = HOSTILE[case]
    folder = tmp_path / "victim"
    shutil.copytree(GOOD, folder, ignore=shutil.ignore_patterns("projections"))
    (folder / CONFIG_FILE).write_text(text)
    shutil.copytree(GOOD, tmp_path / "good", ignore=shutil.ignore_patterns("projections"))

    def no_model(*args, **kwargs):
        raise AssertionError("a model was built from a config that failed validation")

    monkeypatch.setattr(vae.models, "build_model", no_model)
    summaries = {summary.name: summary for summary in list_checkpoints(tmp_path)}
    assert summaries["good"].error is None
    error = summaries["victim"].error
    assert error and message in error and "victim" in error and len(error) < 400, error
    assert summaries["victim"].label == "victim (unusable)"
    with pytest.raises(CheckpointError, match="victim"):
        load_checkpoint(folder)


@pytest.fixture
def hostile_app(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from conftest import copy_shipped_checkpoints

    root = hostile_root(copy_shipped_checkpoints(tmp_path / "checkpoints"))
    monkeypatch.setenv("LATENT_LAB_CHECKPOINTS", str(root))
    monkeypatch.setenv("LATENT_LAB_UMAP_WARMUP", "0")
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=180)


def test_every_page_works_beside_hostile_checkpoint_folders(hostile_app):
    at = hostile_app.run()
    assert not at.exception, [e.value for e in at.exception]
    picker = at.sidebar.selectbox(key="checkpoint_name")
    assert {f"hostile-{n:02d} (unusable)" for n in range(len(HOSTILE))} <= set(picker.options)
    for page in PAGES:
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])


def test_choosing_a_hostile_checkpoint_shows_its_error_on_each_page(hostile_app):
    at = hostile_app.run()
    for number, (_, message) in enumerate(HOSTILE.values()):
        at.sidebar.selectbox(key="checkpoint_name").set_value(f"hostile-{number:02d}").run()
        assert not at.exception, [e.value for e in at.exception]
        assert any(message in error.value for error in at.sidebar.error), (message, [e.value for e in at.sidebar.error])
    for page in PAGES[1:]:
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])


def test_a_weights_file_far_larger_than_its_settings_need_is_not_read(tmp_path, monkeypatch):
    from vae import checkpoints

    folder = tmp_path / "padded"
    shutil.copytree(GOOD, folder, ignore=shutil.ignore_patterns("projections"))
    with open(folder / "model.safetensors", "ab") as handle:
        handle.truncate(64 * 2**20)  # 64 MB where a 64-256-2 MLP needs about 0.3 MB

    def no_read(*args, **kwargs):
        raise AssertionError("the oversized weights file was read")

    monkeypatch.setattr(checkpoints, "load_file", no_read)
    with pytest.raises(CheckpointError, match="far larger than its model settings need"):
        load_checkpoint(folder)
