"""Checkpoints: round trip, every broken file refused with one clear error and nothing changed on disk,
atomic saves that survive a failure mid-way, and two saves racing for one name."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import pickletools
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from conftest import TINY_HISTORY as HISTORY, same_weights, tiny_model
from conftest import save_tiny as save
from vae import checkpoints
from vae.checkpoints import (CONFIG_FILE, REQUIRED_KEYS, WEIGHTS_FILE, Checkpoint, CheckpointError, CheckpointExistsError,
                             checkpoint_path, list_checkpoints, load_checkpoint, read_config, save_checkpoint, validate_name)

def disk_state(root: Path) -> dict[str, tuple]:
    """Every path under root with its kind and content hash: equal states mean nothing changed."""
    state = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            state[key] = ("link", os.readlink(path))
        elif path.is_file():
            state[key] = ("file", hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
        else:
            state[key] = ("dir",)
    return state


def test_save_then_load_gives_the_same_model_and_story(tmp_path):
    folder = save(tmp_path / "roundtrip", seed=3)
    assert sorted(p.name for p in folder.iterdir()) == [CONFIG_FILE, WEIGHTS_FILE]
    loaded = load_checkpoint(folder)
    assert isinstance(loaded, Checkpoint) and loaded.name == "roundtrip"
    assert same_weights(loaded.model, tiny_model(3))
    assert not loaded.model.training and loaded.model.device.type == "cpu"
    assert loaded.history == HISTORY and loaded.dataset_name == "digits" and loaded.beta == 1.0
    config = json.loads((folder / CONFIG_FILE).read_text())
    for key in REQUIRED_KEYS:
        assert key in config
    assert config["dataset"] == {"name": "digits", "image_shape": [1, 8, 8]}
    assert config["model"]["latent_dim"] == 2 and config["final_test"] == HISTORY[-1]["test"]
    assert {"torch", "safetensors", "python", "latent_lab"} <= set(config["versions"])


def test_list_shows_usable_and_broken_checkpoints_sorted(tmp_path):
    save(tmp_path / "b-good")
    broken = save(tmp_path / "a-broken")
    (broken / CONFIG_FILE).write_text("{")
    (tmp_path / "stray-file.txt").write_text("not a checkpoint")
    summaries = list_checkpoints(tmp_path)
    assert [s.name for s in summaries] == ["a-broken", "b-good"]
    assert summaries[0].error and "not valid JSON" in summaries[0].error and summaries[0].label == "a-broken (unusable)"
    assert summaries[1].error is None and summaries[1].label == "b-good: digits, mlp, z=2, test -ELBO 33.5"
    assert list_checkpoints(tmp_path / "missing") == []


# ---------------------------------------------------------------- every broken checkpoint: one clear error

def truncate_weights(folder: Path, marker: Path) -> None:
    data = (folder / WEIGHTS_FILE).read_bytes()
    (folder / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])


def empty_weights(folder: Path, marker: Path) -> None:
    (folder / WEIGHTS_FILE).write_bytes(b"")


class WritesAFileWhenUnpickled:
    """A pickle whose loading would create `marker`: proof that nothing unpickles."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "unpickled!"))


def pickle_renamed_as_weights(folder: Path, marker: Path) -> None:
    payload = pickle.dumps(WritesAFileWhenUnpickled(marker))
    assert "write_text" in "".join(str(arg) for _, arg, _ in pickletools.genops(payload))  # a real, armed pickle
    (folder / WEIGHTS_FILE).write_bytes(payload)


def torch_save_renamed_as_weights(folder: Path, marker: Path) -> None:
    torch.save({"weights": tiny_model().state_dict(), "bomb": WritesAFileWhenUnpickled(marker)}, folder / WEIGHTS_FILE)


def drop_key(key: str):
    def edit(folder: Path, marker: Path) -> None:
        config = json.loads((folder / CONFIG_FILE).read_text())
        del config[key]
        (folder / CONFIG_FILE).write_text(json.dumps(config))
    edit.__name__ = f"config_without_{key}"
    return edit


def edit_config(change):
    def edit(folder: Path, marker: Path) -> None:
        config = json.loads((folder / CONFIG_FILE).read_text())
        change(config)
        (folder / CONFIG_FILE).write_text(json.dumps(config))
    return edit


def wrong_weight_shape(folder: Path, marker: Path) -> None:
    weights = {k: v for k, v in tiny_model().state_dict().items()}
    weights["encoder.1.weight"] = torch.zeros(17, 64)
    save_file(weights, folder / WEIGHTS_FILE)


def missing_layer(folder: Path, marker: Path) -> None:
    weights = dict(tiny_model().state_dict())
    weights.pop("decoder.0.bias")
    save_file(weights, folder / WEIGHTS_FILE)


def non_finite_weight(folder: Path, marker: Path) -> None:
    weights = dict(tiny_model().state_dict())
    weights["decoder.0.bias"] = torch.full_like(weights["decoder.0.bias"], float("nan"))
    save_file(weights, folder / WEIGHTS_FILE)


BREAKAGES = {
    "truncated safetensors": (truncate_weights, "not a readable safetensors file"),
    "empty safetensors": (empty_weights, "not a readable safetensors file"),
    "pickle renamed model.safetensors": (pickle_renamed_as_weights, "not a readable safetensors file"),
    "torch.save file renamed model.safetensors": (torch_save_renamed_as_weights, "not a readable safetensors file"),
    "no weights file": (lambda folder, marker: (folder / WEIGHTS_FILE).unlink(), "has no model.safetensors"),
    "no config file": (lambda folder, marker: (folder / CONFIG_FILE).unlink(), "has no config.json"),
    "config not JSON": (lambda folder, marker: (folder / CONFIG_FILE).write_text("{'model': 1"), "not valid JSON"),
    "config a pickle": (lambda folder, marker: (folder / CONFIG_FILE).write_bytes(pickle.dumps(WritesAFileWhenUnpickled(marker))),
                        "not valid JSON"),
    "config a list": (lambda folder, marker: (folder / CONFIG_FILE).write_text("[1, 2]"), "must hold a JSON object"),
    **{f"config without {key}": (drop_key(key), f"missing {key}") for key in REQUIRED_KEYS},
    "dataset without image_shape": (edit_config(lambda c: c["dataset"].pop("image_shape")), "needs a name and an image_shape"),
    "history not a list": (edit_config(lambda c: c.update(history={"epoch": 1})), "history must be a list"),
    "history entry without test": (edit_config(lambda c: c["history"][0].pop("test")), "every history entry"),
    "unknown model setting": (edit_config(lambda c: c["model"].update(dropout=0.1)), "model settings are invalid"),
    "latent dim out of range": (edit_config(lambda c: c["model"].update(latent_dim=500)), "model settings are invalid"),
    "image shape differs from data set": (edit_config(lambda c: c["dataset"].update(image_shape=[1, 28, 28])), "does not match"),
    "config latent dim differs from weights": (edit_config(lambda c: c["model"].update(latent_dim=3)), "one per latent dimension"),
    "config hidden width differs from weights": (edit_config(lambda c: c["model"].update(hidden=[32])), "has shape"),
    "config architecture differs from weights": (edit_config(lambda c: c["model"].update(arch="conv")), "different layers"),
    "a weight of the wrong shape": (wrong_weight_shape, "has shape"),
    "a layer missing": (missing_layer, "different layers"),
    "a NaN weight": (non_finite_weight, "not finite"),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_each_broken_checkpoint_gives_one_clear_error_and_changes_nothing_on_disk(tmp_path, breakage):
    root = tmp_path / "checkpoints"
    marker = tmp_path / "pwned.txt"
    save(root / "good")
    folder = save(root / "victim")
    damage, message = BREAKAGES[breakage]
    damage(folder, marker)
    before = disk_state(tmp_path)

    with pytest.raises(CheckpointError, match=message) as raised:
        load_checkpoint(folder)
    assert "Traceback" not in str(raised.value) and "victim" in str(raised.value)
    summaries = {s.name: s for s in list_checkpoints(root)}

    assert disk_state(tmp_path) == before
    assert not marker.exists()
    assert summaries["good"].error is None
    if breakage in ("truncated safetensors", "empty safetensors", "pickle renamed model.safetensors",
                    "torch.save file renamed model.safetensors", "no weights file", "a weight of the wrong shape",
                    "a layer missing", "a NaN weight", "config latent dim differs from weights",
                    "config hidden width differs from weights", "config architecture differs from weights"):
        return  # the weights are only read on load; the listing reads the settings
    assert summaries["victim"].error and summaries["victim"].config is None


@pytest.mark.parametrize("name", ["..", "../escape", "a/b", "/etc", "a/../b", "./x", "..hidden", "x/..", ""])
def test_names_with_dot_dot_or_slash_are_refused_and_nothing_is_written(tmp_path, name):
    root = tmp_path / "checkpoints"
    save(root / "good")
    before = disk_state(tmp_path)
    with pytest.raises(CheckpointError, match="not a valid checkpoint name"):
        validate_name(name)
    with pytest.raises(CheckpointError, match="not a valid checkpoint name"):
        checkpoint_path(root, name)
    assert disk_state(tmp_path) == before


@pytest.mark.parametrize("name", ["..", "...", ".hidden"])
def test_saving_under_a_dotted_name_is_refused(tmp_path, name):
    root = tmp_path / "checkpoints"
    root.mkdir()
    with pytest.raises(CheckpointError, match="not a valid checkpoint name"):
        save_checkpoint(os.path.join(root, name), tiny_model(), dataset={"name": "digits"}, train={}, history=[])
    assert list(tmp_path.rglob("*")) == [root]


def test_a_symlink_leading_outside_the_root_is_refused_and_nothing_changes(tmp_path):
    outside = save(tmp_path / "elsewhere" / "secret")
    root = tmp_path / "checkpoints"
    save(root / "good")
    (root / "sneaky").symlink_to(outside, target_is_directory=True)
    before = disk_state(tmp_path)
    with pytest.raises(CheckpointError, match="outside the checkpoints folder"):
        checkpoint_path(root, "sneaky")
    summaries = {s.name: s for s in list_checkpoints(root)}
    assert "outside" in summaries["sneaky"].error and summaries["good"].error is None
    assert disk_state(tmp_path) == before


def test_symlinked_files_inside_a_checkpoint_are_refused(tmp_path):
    outside = save(tmp_path / "elsewhere" / "secret")
    folder = save(tmp_path / "checkpoints" / "linked")
    (folder / CONFIG_FILE).unlink()
    (folder / CONFIG_FILE).symlink_to(outside / CONFIG_FILE)
    before = disk_state(tmp_path)
    with pytest.raises(CheckpointError, match="has no config.json"):
        read_config(folder)
    assert disk_state(tmp_path) == before


# ---------------------------------------------------------------- atomic saves

class Crash(OSError):
    pass


def test_a_crash_while_writing_weights_keeps_the_old_checkpoint_whole(tmp_path, monkeypatch):
    root = tmp_path / "checkpoints"
    save(root / "kept", seed=1)
    before = disk_state(root / "kept")

    def write_half_then_crash(tensors, path, metadata=None):
        Path(path).write_bytes(b"\x00" * 100)  # a partial file, as a crash would leave it
        raise Crash(28, "No space left on device")

    monkeypatch.setattr(checkpoints, "save_file", write_half_then_crash)
    with pytest.raises(CheckpointError, match="No space left on device.*unchanged"):
        save(root / "kept", seed=2, overwrite=True)
    assert disk_state(root / "kept") == before
    assert same_weights(load_checkpoint(root / "kept").model, tiny_model(1))
    assert [s.name for s in list_checkpoints(root)] == ["kept"]
    assert [p.name for p in root.iterdir() if p.name != ".lock"] == ["kept"]  # no partial left behind


def test_a_crash_on_the_final_rename_keeps_the_old_checkpoint_whole(tmp_path, monkeypatch):
    """Where no atomic exchange exists the save takes two renames; the second failing puts the old one back."""
    root = tmp_path / "checkpoints"
    save(root / "kept", seed=1)
    before = disk_state(root / "kept")
    real_rename = os.rename
    calls = []

    def rename(source, target):
        calls.append((Path(source).name, Path(target).name))
        if Path(source).name.startswith(".kept.tmp-"):
            raise Crash(5, "Input/output error")
        return real_rename(source, target)

    monkeypatch.setattr(checkpoints, "_exchange", lambda first, second: False)
    monkeypatch.setattr(checkpoints.os, "rename", rename)
    with pytest.raises(CheckpointError, match="Input/output error"):
        save(root / "kept", seed=2, overwrite=True)
    assert any(source == "kept" for source, _ in calls)  # the old one really was moved aside first
    monkeypatch.setattr(checkpoints.os, "rename", real_rename)
    assert disk_state(root / "kept") == before
    assert same_weights(load_checkpoint(root / "kept").model, tiny_model(1))
    assert [s.name for s in list_checkpoints(root)] == ["kept"]
    assert [p.name for p in root.iterdir() if p.name != ".lock"] == ["kept"]


def test_a_crash_on_the_exchange_keeps_the_old_checkpoint_whole(tmp_path, monkeypatch):
    root = tmp_path / "checkpoints"
    save(root / "kept", seed=1)
    before = disk_state(root / "kept")

    def exchange(first, second):
        raise Crash(5, "Input/output error")

    monkeypatch.setattr(checkpoints, "_exchange", exchange)
    with pytest.raises(CheckpointError, match="Input/output error"):
        save(root / "kept", seed=2, overwrite=True)
    assert disk_state(root / "kept") == before
    assert [s.name for s in list_checkpoints(root)] == ["kept"]
    assert [p.name for p in root.iterdir() if p.name != ".lock"] == ["kept"]


def test_a_crash_saving_a_new_name_leaves_nothing_in_the_listing(tmp_path, monkeypatch):
    root = tmp_path / "checkpoints"
    save(root / "other")

    def write_then_crash(tensors, path, metadata=None):
        Path(path).write_bytes(b"partial")
        raise Crash(28, "No space left on device")

    monkeypatch.setattr(checkpoints, "save_file", write_then_crash)
    with pytest.raises(CheckpointError):
        save(root / "fresh")
    assert [s.name for s in list_checkpoints(root)] == ["other"]
    assert not (root / "fresh").exists()
    assert [p.name for p in root.iterdir() if p.name != ".lock"] == ["other"]


@pytest.mark.parametrize("exchange_available", [True, False])
def test_overwrite_replaces_the_old_checkpoint(tmp_path, monkeypatch, exchange_available):
    if not exchange_available:
        monkeypatch.setattr(checkpoints, "_exchange", lambda first, second: False)
    root = tmp_path / "checkpoints"
    save(root / "model", seed=1)
    with pytest.raises(CheckpointExistsError, match="already exists"):
        save(root / "model", seed=2)
    assert same_weights(load_checkpoint(root / "model").model, tiny_model(1))
    save(root / "model", seed=2, overwrite=True)
    assert same_weights(load_checkpoint(root / "model").model, tiny_model(2))
    assert [p.name for p in root.iterdir() if p.name != ".lock"] == ["model"]


def test_two_concurrent_saves_under_one_name_one_wins_the_other_is_told(tmp_path, monkeypatch):
    root = tmp_path / "checkpoints"
    root.mkdir()
    both_written = threading.Barrier(2, timeout=30)
    real_save_file = checkpoints.save_file

    def save_file_then_wait(tensors, path, metadata=None):
        real_save_file(tensors, path, metadata=metadata)
        both_written.wait()  # both savers have passed the "does it exist?" check before either renames

    monkeypatch.setattr(checkpoints, "save_file", save_file_then_wait)
    outcomes: dict[int, object] = {}
    models = {seed: tiny_model(seed) for seed in (1, 2)}  # built here: torch's seed is global, threads would race on it

    def saver(seed: int) -> None:
        try:
            outcomes[seed] = save_checkpoint(root / "shared", models[seed], dataset={"name": "digits"},
                                             train={"epochs": 1, "seed": seed}, history=HISTORY)
        except Exception as error:  # noqa: BLE001 - the test sorts the outcomes below
            outcomes[seed] = error

    threads = [threading.Thread(target=saver, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    errors = [o for o in outcomes.values() if isinstance(o, Exception)]
    winners = [seed for seed, o in outcomes.items() if not isinstance(o, Exception)]
    assert len(winners) == 1 and len(errors) == 1
    assert isinstance(errors[0], CheckpointExistsError), errors[0]
    assert same_weights(load_checkpoint(root / "shared").model, tiny_model(winners[0]))
    assert [p.name for p in root.iterdir() if p.name != ".lock"] == ["shared"]


def test_a_history_json_cannot_hold_is_refused_and_leaves_nothing_behind(tmp_path):
    root = tmp_path / "checkpoints"
    history = [{**HISTORY[0], "test": {"recon": float("nan"), "kl": 1.0, "total": float("nan")}}]
    with pytest.raises(CheckpointError, match="^Could not save 'nan': its history holds NaN or infinite numbers"):
        save_checkpoint(root / "nan", tiny_model(), dataset={"name": "digits"}, train={}, history=history)
    assert not root.exists() or [p.name for p in root.iterdir() if p.name != ".lock"] == []


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_and_the_old_checkpoint_kept(tmp_path, bad_value):
    folder = save(tmp_path / "kept")
    model = tiny_model(1)
    with torch.no_grad():
        next(model.parameters())[0, 0] = bad_value
    with pytest.raises(CheckpointError, match="^Could not save 'kept': its weights hold NaN or infinite values"):
        save_checkpoint(folder, model, dataset={"name": "digits"}, train={}, history=HISTORY, overwrite=True)
    assert same_weights(load_checkpoint(folder).model, tiny_model(0))
