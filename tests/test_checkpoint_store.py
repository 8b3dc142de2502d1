"""Where checkpoints live and what their config.json holds: the per-user runs folder beside the
shipped models, the typed info that writes the JSON back unchanged, and a module that imports
on systems without fcntl (Windows)."""

from __future__ import annotations

import errno
import importlib
import json
import os
import sys
import threading

import pytest

import vae
from conftest import SHIPPED, tiny_model
from vae import checkpoints
from vae.checkpoint_info import CheckpointInfo
from vae.checkpoints import CheckpointExistsError, default_root, list_checkpoints, save_checkpoint
from vae.jobs import JobManager
from vae.train import TrainConfig

SHIPPED_NAMES = sorted(path.name for path in SHIPPED.iterdir() if (path / "config.json").is_file())


@pytest.mark.parametrize("name", SHIPPED_NAMES)
def test_every_shipped_config_json_round_trips_byte_for_byte(name):
    text = (SHIPPED / name / "config.json").read_text(encoding="utf-8")
    info = CheckpointInfo.from_dict(json.loads(text))
    assert json.dumps(info.to_dict(), indent=1, allow_nan=False) == text
    assert info.history and info.final_test == info.history[-1]["test"]


def test_a_config_with_fewer_or_extra_keys_round_trips_in_its_own_order():
    data = {"versions": {}, "name": "old", "model": {"latent_dim": 2}, "dataset": {"name": "digits"},
            "train": {"beta": 4}, "history": [], "teacher_note": "kept"}
    info = CheckpointInfo.from_dict(data)
    assert list(info.to_dict().items()) == list(data.items())
    assert info.beta == 4.0 and info.extra == {"teacher_note": "kept"}


def test_a_saved_checkpoint_reads_back_as_the_same_info(tmp_path):
    folder = save_checkpoint(tmp_path / "story", tiny_model(), dataset={"name": "digits"}, train={"epochs": 1},
                             history=[], extra={"note": "x"})
    text = (folder / "config.json").read_text()
    info = CheckpointInfo.from_dict(json.loads(text))
    assert list(info.to_dict())[-1] == "note" and json.dumps(info.to_dict(), indent=1) == text
    assert not (folder / ".save.lock").exists()  # the staging lock never ends up in the checkpoint


def test_the_checkpoints_module_imports_and_saves_without_fcntl(tmp_path, monkeypatch):
    # Windows has no fcntl: the app must still start there. The modules are put back afterwards.
    monkeypatch.setitem(sys.modules, "fcntl", None)  # `import fcntl` now raises ImportError
    for module in ("vae.checkpoints", "vae.checkpoint_files"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setattr(vae, "checkpoints", vae.checkpoints)
    monkeypatch.setattr(vae, "checkpoint_files", vae.checkpoint_files, raising=False)
    fresh = importlib.import_module("vae.checkpoints")
    fresh.save_checkpoint(tmp_path / "saved", tiny_model(), dataset={"name": "digits"}, train={}, history=[])
    assert [summary.name for summary in fresh.list_checkpoints(tmp_path)] == ["saved"]


def test_new_runs_go_to_the_per_user_data_folder_not_the_code(tmp_path, monkeypatch):
    monkeypatch.delenv("LATENT_LAB_CHECKPOINTS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))  # platformdirs' user data folder on Linux
    if sys.platform.startswith("linux"):
        assert default_root() == tmp_path / "data-home" / "latent-lab" / "checkpoints"
    assert not default_root().resolve().is_relative_to(SHIPPED.parent)
    monkeypatch.setenv("LATENT_LAB_CHECKPOINTS", str(tmp_path / "mine"))
    assert default_root() == tmp_path / "mine"


@pytest.fixture
def user_folder(monkeypatch):
    """The default: no $LATENT_LAB_CHECKPOINTS, runs in the (scratch) per-user data folder."""
    monkeypatch.delenv("LATENT_LAB_CHECKPOINTS", raising=False)
    return default_root()


def test_the_picker_lists_saved_runs_and_the_shipped_models_marked_shipped(user_folder):
    save_checkpoint(user_folder / "my-run", tiny_model(), dataset={"name": "digits"}, train={}, history=[])
    summaries = {summary.name: summary for summary in list_checkpoints()}
    assert set(summaries) == {"my-run", *SHIPPED_NAMES}
    assert not summaries["my-run"].shipped and "shipped" not in summaries["my-run"].label
    for name in SHIPPED_NAMES:
        assert summaries[name].shipped and summaries[name].label.startswith(f"{name} (shipped): ")
        assert summaries[name].path == SHIPPED / name
    assert [summary.name for summary in list_checkpoints(user_folder)] == ["my-run"]  # one folder when named


def test_a_checkpoints_folder_chosen_by_the_environment_is_listed_alone_as_before(checkpoint_root):
    summaries = list_checkpoints()  # checkpoint_root: a copy of the shipped models, via $LATENT_LAB_CHECKPOINTS
    assert sorted(summary.name for summary in summaries) == SHIPPED_NAMES
    assert not any(summary.shipped for summary in summaries)
    assert all(summary.path.parent == checkpoint_root for summary in summaries)


def test_a_saved_run_of_a_shipped_models_name_is_listed_instead_of_it(user_folder):
    save_checkpoint(user_folder / SHIPPED_NAMES[0], tiny_model(), dataset={"name": "digits"}, train={}, history=[])
    [summary] = [summary for summary in list_checkpoints() if summary.name == SHIPPED_NAMES[0]]
    assert not summary.shipped and summary.path == user_folder / SHIPPED_NAMES[0]


def test_a_run_cannot_take_a_shipped_models_name(user_folder):
    before = sorted(path.name for path in SHIPPED.iterdir())
    with pytest.raises(CheckpointExistsError, match="shipped model"):
        JobManager(start=False).submit(SHIPPED_NAMES[0], {"arch": "mlp", "latent_dim": 2}, TrainConfig(dataset="digits"),
                                       overwrite=True, teacher=True, owner="teacher")
    assert sorted(path.name for path in SHIPPED.iterdir()) == before
    assert not (user_folder / SHIPPED_NAMES[0]).exists()
    checkpoints.refuse_shipped_name(user_folder, "a-new-name")  # any other name is free


def test_a_folder_whose_lock_file_cannot_be_written_is_listed_at_once(tmp_path, monkeypatch):
    # As on a read-only install (root ignores file modes, so the refusal is simulated): the listing
    # skips the clean-up instead of waiting for a lock it can never take.
    save_checkpoint(tmp_path / "kept", tiny_model(), dataset={"name": "digits"}, train={}, history=[])
    real_open = os.open

    def refuse_lock_files(path, flags, *args, **kwargs):
        if str(path).endswith(".lock"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))  # a read-only file system
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", refuse_lock_files)
    listed = []
    worker = threading.Thread(target=lambda: listed.extend(list_checkpoints(tmp_path)), daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert [summary.name for summary in listed] == ["kept"]


def test_locking_a_folder_that_vanished_fails_at_once_instead_of_waiting(tmp_path):
    from vae.checkpoint_files import folder_lock

    outcome = []

    def lock_gone_folder():
        try:
            with folder_lock(tmp_path / "gone"):
                outcome.append("locked")
        except OSError as error:
            outcome.append(error)

    worker = threading.Thread(target=lock_gone_folder, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert len(outcome) == 1 and isinstance(outcome[0], FileNotFoundError)
