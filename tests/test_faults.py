"""Faults mid-run: a server killed while saving, a full or read-only disk, reproducibility."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from conftest import tiny_model
from vae import checkpoint_files, checkpoints
from vae.checkpoints import CheckpointError, list_checkpoints, load_checkpoint, save_checkpoint
from vae.datasets import load_dataset
from vae.models import ModelConfig
from vae.train import TrainConfig, train

ROOT = Path(__file__).resolve().parent.parent

SAVER = textwrap.dedent("""
    import sys, torch
    from vae.checkpoints import save_checkpoint
    from vae.models import ModelConfig, build_model
    root = sys.argv[1]
    for i in range(100000):
        torch.manual_seed(i)
        model = build_model(ModelConfig(image_shape=(1, 28, 28), latent_dim=8, hidden=(512,)))
        save_checkpoint(f"{root}/victim", model, dataset={"name": "mnist5k"}, train={"round": i},
                        history=[], overwrite=True)
        save_checkpoint(f"{root}/fresh-{i}", model, dataset={"name": "mnist5k"}, train={"round": i}, history=[])
        print(i, flush=True)
""")


@pytest.mark.parametrize("saves_before_kill", [1, 3, 6])
def test_sigkill_while_saving_leaves_every_checkpoint_whole_or_absent(tmp_path, saves_before_kill):
    saver = subprocess.Popen([sys.executable, "-c", SAVER, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(saves_before_kill):
            assert saver.stdout.readline(), "the saver died before it was killed"
    finally:
        saver.send_signal(signal.SIGKILL)
        saver.wait()
    summaries = list_checkpoints(tmp_path)
    names = {summary.name for summary in summaries}
    assert "victim" in names, "the overwritten checkpoint must survive (old or new copy)"
    assert {f"fresh-{i}" for i in range(saves_before_kill)} <= names
    for summary in summaries:
        assert summary.error is None, summary.error
        load_checkpoint(summary.path)  # raises if anything is half-written
    assert not list(tmp_path.glob(".victim.old-*")), "a retired copy was left behind"


@pytest.mark.parametrize("failure", [errno.ENOSPC, errno.EROFS])
def test_full_or_read_only_folder_gives_a_clear_error_and_keeps_the_old_checkpoint(tmp_path, monkeypatch, failure):
    target = tmp_path / "kept"
    save_checkpoint(target, tiny_model(1), dataset={"name": "digits"}, train={"round": 1}, history=[])
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def refuse(*args, **kwargs):
        raise OSError(failure, os.strerror(failure))

    monkeypatch.setattr(checkpoints, "save_file", refuse)
    with pytest.raises(CheckpointError, match=os.strerror(failure)) as raised:
        save_checkpoint(target, tiny_model(2), dataset={"name": "digits"}, train={"round": 2}, history=[], overwrite=True)
    assert "unchanged" in str(raised.value)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".") and p.name != ".lock"] == []


def test_unwritable_checkpoints_folder_is_a_clear_error(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(checkpoint_files.tempfile, "mkdtemp", refuse)
    with pytest.raises(CheckpointError, match="Read-only file system"):
        save_checkpoint(tmp_path / "new", tiny_model(), dataset={"name": "digits"}, train={}, history=[])
    assert not (tmp_path / "new").exists()


def test_same_seed_same_data_same_settings_give_identical_history_on_cpu():
    dataset = load_dataset("digits")
    model_config = ModelConfig(image_shape=dataset.image_shape, latent_dim=3, hidden=(64,))
    train_config = TrainConfig(dataset="digits", epochs=2, batch_size=64, seed=7, device="cpu")

    def figures(result):
        return [(entry["train"], entry["test"], entry["kl_per_dim"]) for entry in result.history]

    first = train(model_config, train_config, dataset=dataset)
    second = train(model_config, train_config, dataset=dataset)
    assert figures(first) == figures(second)
    for key, value in first.model.state_dict().items():
        assert torch.equal(value, second.model.state_dict()[key]), key
    other_seed = train(model_config, TrainConfig(**{**train_config.to_dict(), "seed": 8}), dataset=dataset)
    assert figures(other_seed) != figures(first)
