"""Background training jobs: queue order, stop, clear errors, NaN refusal, saving."""

from __future__ import annotations

import pytest
import torch

import vae.train
from vae import jobs
from vae.checkpoints import CheckpointError, CheckpointExistsError, load_checkpoint
from vae.jobs import JobManager, progress_text
from vae.losses import ELBOParts
from vae.train import TrainConfig

SMALL = {"arch": "mlp", "latent_dim": 2, "hidden": (32,)}
WAIT = 120  # seconds; generous, the machine is shared


def digits(epochs: int = 1, **settings) -> TrainConfig:
    return TrainConfig(dataset="digits", epochs=epochs, batch_size=256, **settings)


def test_jobs_run_one_at_a_time_in_submission_order_with_queue_positions(tmp_path):
    manager = JobManager(start=False)
    first, second, third = (manager.submit(name, SMALL, digits(), root=tmp_path) for name in ("first", "second", "third"))
    assert [job.view().position for job in (first, second, third)] == [0, 1, 2]
    assert progress_text(third.view()).startswith("Queued, position 2")
    manager.start()
    views = [job.wait(WAIT) for job in (first, second, third)]
    assert [view.status for view in views] == [jobs.FINISHED] * 3
    # One at a time, in order: each run started only after the one before it had ended.
    assert views[0].ended <= views[1].started and views[1].ended <= views[2].started
    assert all(view.checkpoint == tmp_path / view.name for view in views)
    assert [job.id for job in manager.jobs()] == [third.id, second.id, first.id]


def test_queue_positions_move_up_when_a_queued_job_is_stopped(tmp_path):
    manager = JobManager(start=False)
    first, second, third = (manager.submit(name, SMALL, digits(), root=tmp_path) for name in ("a", "b", "c"))
    manager.stop(second.id)
    assert second.view().status == jobs.STOPPED and "nothing was trained" in second.view().message
    assert third.view().position == 1
    manager.start()
    assert first.wait(WAIT).status == jobs.FINISHED and third.wait(WAIT).status == jobs.FINISHED
    assert not (tmp_path / "b").exists()


def test_finished_job_saves_a_loadable_checkpoint_with_its_history(tmp_path):
    manager = JobManager()
    job = manager.submit("digits-small", SMALL, digits(epochs=2), root=tmp_path)
    view = job.wait(WAIT)
    assert view.status == jobs.FINISHED, view.message
    assert view.fraction == 1.0 and len(view.history) == 2 and view.preview is not None
    assert view.preview.shape[0] == 2 * vae.train.PREVIEW_COUNT and len(view.kl_per_dim) == 2
    assert view.step_trace and view.step_trace[-1]["epoch"] == pytest.approx(2.0)
    saved = load_checkpoint(tmp_path / "digits-small")
    assert [record["epoch"] for record in saved.history] == [1, 2]
    assert saved.config["train"]["status"] == "finished" and saved.dataset_name == "digits"
    assert "Saved as 'digits-small'" in view.message


def test_stop_ends_the_run_and_saves_the_last_complete_epoch(tmp_path):
    manager = JobManager()
    job = manager.submit("stopped-run", SMALL, digits(epochs=500), root=tmp_path)
    job.wait_until(lambda view: len(view.history) >= 1, WAIT)
    manager.stop(job.id)
    view = job.wait(WAIT)
    assert view.status == jobs.STOPPED, view.message
    assert 1 <= len(view.history) < 500
    saved = load_checkpoint(tmp_path / "stopped-run")
    assert len(saved.history) == len(view.history)
    assert saved.config["train"]["status"] == "stopped"


@pytest.mark.parametrize("settings, expected", [
    ({"dataset": "no-such-data"}, "Unknown data set 'no-such-data'"),
    ({"dataset": "digits", "device": "cuda:7"}, "GPU" if torch.cuda.is_available() else "CUDA was asked for"),
])
def test_errors_become_the_jobs_message_not_a_traceback(tmp_path, settings, expected):
    manager = JobManager()
    job = manager.submit("broken", SMALL, TrainConfig(epochs=1, **settings), root=tmp_path)
    view = job.wait(WAIT)
    assert view.status == jobs.ERROR
    assert expected in view.message and "Traceback" not in view.message
    assert not (tmp_path / "broken").exists()


def test_model_settings_that_do_not_fit_the_data_are_a_clear_error(tmp_path):
    manager = JobManager()
    # digits are 8x8: three stride-2 convolutions would need a multiple of 8 per side after halving thrice.
    job = manager.submit("odd-conv", {"arch": "conv", "latent_dim": 2, "conv_channels": (8, 8, 8, 8)}, digits(), root=tmp_path)
    view = job.wait(WAIT)
    assert view.status == jobs.ERROR and "multiples of 16" in view.message


def test_bad_and_taken_names_are_refused_at_submission(tmp_path):
    manager = JobManager(start=False)
    with pytest.raises(CheckpointError, match="not a valid checkpoint name"):
        manager.submit("../escape", SMALL, digits(), root=tmp_path)
    (tmp_path / "taken").mkdir()
    with pytest.raises(CheckpointExistsError, match="already exists"):
        manager.submit("taken", SMALL, digits(), root=tmp_path)
    manager.submit("pending", SMALL, digits(), root=tmp_path)
    with pytest.raises(CheckpointExistsError, match="already queued or running"):
        manager.submit("pending", SMALL, digits(), root=tmp_path)
    assert manager.suggest_name("pending", tmp_path) == "pending-1"
    (tmp_path / "run-1").mkdir()
    assert manager.suggest_name("run", tmp_path) == "run-2"


def test_a_name_taken_while_queued_keeps_the_model_under_a_derived_name_and_says_so(tmp_path):
    manager = JobManager(start=False)
    job = manager.submit("late-clash", SMALL, digits(), root=tmp_path)
    (tmp_path / "late-clash").mkdir()  # another process saved under the name meanwhile
    manager.start()
    view = job.wait(WAIT)
    assert view.status == jobs.FINISHED
    assert view.checkpoint == tmp_path / "late-clash-2"
    assert "Saved as 'late-clash-2'" in view.message and "named 'late-clash' was saved elsewhere" in view.message
    assert load_checkpoint(view.checkpoint).config["name"] == "late-clash-2"
    assert not any((tmp_path / "late-clash").iterdir())


def test_nan_after_a_good_epoch_is_refused_and_the_good_epoch_saved(tmp_path, monkeypatch):
    manager = JobManager(start=False)
    job = manager.submit("nan-run", SMALL, digits(epochs=3), root=tmp_path)
    real_elbo_parts = vae.train.elbo_parts

    def poisoned_after_first_epoch(model, x, *args, **kwargs):
        parts = real_elbo_parts(model, x, *args, **kwargs)
        if torch.is_grad_enabled() and job.view().history:  # training steps of epoch 2 onwards
            return ELBOParts(recon=parts.recon * float("nan"), kl=parts.kl, kl_per_dim=parts.kl_per_dim)
        return parts

    monkeypatch.setattr(vae.train, "elbo_parts", poisoned_after_first_epoch)
    manager.start()
    view = job.wait(WAIT)
    assert view.status == jobs.NAN
    assert "refused" in view.message and "epoch 2" in view.message and "Saved as 'nan-run' (1 epoch" in view.message
    saved = load_checkpoint(tmp_path / "nan-run")
    assert len(saved.history) == 1 and saved.config["train"]["status"] == "nan"


def test_nan_in_the_first_epoch_saves_nothing_and_says_so(tmp_path):
    manager = JobManager()
    job = manager.submit("nan-at-once", SMALL, digits(), root=tmp_path,
                         dataset=_digits_with_a_nan_pixel())
    view = job.wait(WAIT)
    assert view.status == jobs.NAN and "nothing was saved" in view.message
    assert not (tmp_path / "nan-at-once").exists()


def _digits_with_a_nan_pixel():
    from dataclasses import replace

    from vae.datasets import load_dataset

    clean = load_dataset("digits")
    poisoned = clean.train_images.clone()
    poisoned[:, 0, 0, 0] = float("nan")
    return replace(clean, train_images=poisoned)


def test_views_are_snapshots_that_later_training_does_not_change(tmp_path):
    manager = JobManager()
    job = manager.submit("snapshot", SMALL, digits(epochs=2), root=tmp_path)
    early = job.wait_until(lambda view: len(view.history) >= 1, WAIT)
    epochs_seen = len(early.history)
    final = job.wait(WAIT)
    assert len(final.history) == 2 and len(early.history) == epochs_seen
