"""Caches keyed by what a user typed hold one copy per data set, however it was typed."""

from __future__ import annotations

import os

import pytest

from vae.datasets import registry
from vae.datasets import load_dataset


@pytest.fixture
def picture_folder(tmp_path, monkeypatch):
    from PIL import Image

    folder = tmp_path / "home" / "pictures"
    for label in ("cats", "dogs"):
        (folder / label).mkdir(parents=True)
        for index in range(3):
            Image.new("L", (12, 12), 40 * index + (100 if label == "dogs" else 0)).save(folder / label / f"{index}.png")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "link").symlink_to(folder, target_is_directory=True)
    registry._load_cached.cache_clear()
    yield folder
    registry._load_cached.cache_clear()


def spellings(folder) -> list[str]:
    parent = folder.parent
    return [f"folder:{folder}", f"folder:{folder}/", "folder:~/pictures", f"folder:{parent}/../{parent.name}/pictures//",
            f"folder:{folder}?size=28&color=gray", f"folder:{folder}?color=GRAY",
            f"folder:{parent.parent}/link"]


def test_one_folder_typed_many_ways_is_loaded_and_held_once(picture_folder):
    loaded = [load_dataset(name) for name in spellings(picture_folder)]
    assert all(dataset is loaded[0] for dataset in loaded)
    assert registry._load_cached.cache_info().currsize == 1
    assert loaded[0].name == f"folder:{os.path.realpath(picture_folder)}"
    assert load_dataset(f"folder:{picture_folder}?size=32") is not loaded[0]  # a different request stays different


def test_the_app_cache_holds_one_entry_per_data_set(picture_folder):
    import ui

    getattr(ui, "_cached_dataset", ui.get_dataset).clear()
    loaded = [ui.get_dataset(name) for name in spellings(picture_folder)]
    assert all(dataset is loaded[0] for dataset in loaded)
    assert ui.get_dataset("digits", "/somewhere/unused") is ui.get_dataset("digits")


def test_data_folders_are_spelled_one_way(tmp_path, monkeypatch):
    from vae.datasets import canonical_request

    monkeypatch.setenv("LATENT_LAB_DATA", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    keys = {canonical_request("mnist", folder) for folder in
            (None, "", str(tmp_path / "data"), f"{tmp_path}/data/", f"{tmp_path}/data/../data")}
    assert keys == {("mnist", str((tmp_path / "data").resolve()))}
    assert canonical_request("digits", "/anything") == ("digits", None)  # embedded sets read no data folder
    assert canonical_request("folder:", None) == ("folder:", None)  # invalid names pass through to their error
