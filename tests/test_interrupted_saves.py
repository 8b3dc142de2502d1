"""Saves and map write-backs that are interrupted or overtaken: clean up, don't resurrect, say what happened."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from conftest import ROOT, SHIPPED, same_weights, tiny_model
from conftest import save_tiny as save
from vae import checkpoints, jobs
from vae.checkpoints import CONFIG_FILE, WEIGHTS_FILE, list_checkpoints, load_checkpoint, save_checkpoint
from vae.datasets import load_dataset
from vae.jobs import JobManager
from vae.projection import ProjectionStore
from vae.train import TrainConfig

# A save that kills its own process (SIGKILL: no cleanup runs) after the weights are written.
KILLED_SAVER = textwrap.dedent("""
    import os, signal, sys, torch
    from vae import checkpoints
    from vae.models import ModelConfig, build_model

    def die(path):
        os.kill(os.getpid(), signal.SIGKILL)

    checkpoints._fsync = die
    model = build_model(ModelConfig(image_shape=(1, 8, 8), latent_dim=2, hidden=(16,)))
    checkpoints.save_checkpoint(sys.argv[1] + "/half-saved", model, dataset={"name": "digits"}, train={}, history=[])
""")


def hidden_entries(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith(".") and p.name != ".lock")


def test_a_save_killed_mid_way_leaves_no_staging_folder_once_the_folder_is_listed(tmp_path):
    killed = subprocess.run([sys.executable, "-c", KILLED_SAVER, str(tmp_path)], cwd=ROOT)
    assert killed.returncode == -9
    assert [name.split(".tmp-")[0] for name in hidden_entries(tmp_path)] == [".half-saved"]  # what the kill left

    assert list_checkpoints(tmp_path) == []
    assert hidden_entries(tmp_path) == []


def test_a_live_saves_staging_folder_is_left_alone(tmp_path, monkeypatch):
    writing, release = threading.Event(), threading.Event()
    real_save_file = checkpoints.save_file

    def slow_save_file(tensors, path, metadata=None):
        real_save_file(tensors, path, metadata=metadata)
        writing.set()
        assert release.wait(30)

    monkeypatch.setattr(checkpoints, "save_file", slow_save_file)
    model = tiny_model()
    saver = threading.Thread(target=save_checkpoint, args=(tmp_path / "in-progress", model),
                             kwargs={"dataset": {"name": "digits"}, "train": {}, "history": []})
    saver.start()
    assert writing.wait(30)
    list_checkpoints(tmp_path)  # runs the clean-up while the save is still writing
    assert len(hidden_entries(tmp_path)) == 1
    release.set()
    saver.join(30)
    assert load_checkpoint(tmp_path / "in-progress").name == "in-progress"
    assert hidden_entries(tmp_path) == []


@pytest.mark.parametrize("then", ["codes", "pca"])
def test_a_checkpoint_deleted_while_its_map_computes_does_not_come_back(tmp_path, then):
    folder = tmp_path / "checkpoints" / "doomed"
    shutil.copytree(SHIPPED / "digits-mlp-z2", folder, ignore=shutil.ignore_patterns("projections"))
    checkpoint = load_checkpoint(folder)
    store = ProjectionStore(folder, checkpoint.model, load_dataset("digits"))
    if then == "pca":
        store.codes()
    shutil.rmtree(folder)  # deleted (by its owner, or replaced) while this session's map was computing

    if then == "codes":
        assert len(store.codes()) == 1797  # still served from memory to the session that asked
    else:
        assert store.projection("pca").coords.shape == (1797, 2)
    assert not folder.exists()
    assert list_checkpoints(tmp_path / "checkpoints") == []


def test_a_map_computed_for_replaced_weights_is_not_written_into_the_new_checkpoint(tmp_path):
    folder = tmp_path / "replaced"
    shutil.copytree(SHIPPED / "digits-mlp-z2", folder, ignore=shutil.ignore_patterns("projections"))
    checkpoint = load_checkpoint(folder)
    store = ProjectionStore(folder, checkpoint.model, load_dataset("digits"))
    shutil.rmtree(folder)
    shutil.copytree(SHIPPED / "mnist5k-mlp-z2", folder, ignore=shutil.ignore_patterns("projections"))
    store.codes()
    assert not (folder / "projections").exists()


def test_two_servers_training_to_one_name_both_keep_their_model_and_the_second_is_told(tmp_path):
    dataset = load_dataset("digits")
    config = TrainConfig(dataset="digits", epochs=1, batch_size=256)
    settings = {"arch": "mlp", "latent_dim": 2, "hidden": (16,)}
    first_server, second_server = JobManager(start=False), JobManager(start=False)
    # Both accept the name: neither server knows of the other's run, and no folder exists yet.
    first = first_server.submit("shared-name", settings, config, root=tmp_path, dataset=dataset)
    second = second_server.submit("shared-name", settings, config, root=tmp_path, dataset=dataset)
    first_server.start()
    assert first.wait(120).status == jobs.FINISHED
    second_server.start()
    view = second.wait(120)

    assert view.status == jobs.FINISHED, view.message
    assert view.checkpoint == tmp_path / "shared-name-2"
    assert "'shared-name' was saved elsewhere" in view.message and "saved as 'shared-name-2'" in view.message
    assert {s.name for s in list_checkpoints(tmp_path) if s.error is None} == {"shared-name", "shared-name-2"}


def test_the_checkpoint_is_whole_after_every_step_of_an_overwrite(tmp_path, monkeypatch):
    """Where the file system can swap two folders atomically, no moment exists without the checkpoint."""
    first, second = tmp_path / "probe-a", tmp_path / "probe-b"
    first.mkdir()
    second.mkdir()
    if not checkpoints._exchange(first, second):
        pytest.skip("this file system has no atomic exchange; saves fall back to two renames")
    root = tmp_path / "checkpoints"
    folder = save(root / "busy", seed=0)
    seen = []

    def whole() -> bool:
        return (folder / CONFIG_FILE).is_file() and (folder / WEIGHTS_FILE).is_file()

    def watched(step):
        def run(*args):
            result = step(*args)
            seen.append(whole())
            return result
        return run

    monkeypatch.setattr(checkpoints.os, "rename", watched(os.rename))
    monkeypatch.setattr(checkpoints, "_exchange", watched(checkpoints._exchange))
    save(root / "busy", seed=1, overwrite=True)
    assert seen and all(seen)
    assert same_weights(load_checkpoint(folder).model, tiny_model(1))
