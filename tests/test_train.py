"""The one training loop: events, per-epoch history, stopping between steps, refusing NaN/inf."""

from __future__ import annotations

import math
import threading

import pytest
import torch

import vae.train as train_module
from vae.datasets import load_dataset
from vae.losses import ELBOParts
from vae.models import ModelConfig, ModelConfigError
from vae.train import (PREVIEW_COUNT, EpochEvent, StepEvent, TrainConfig, TrainConfigError, TrainResult, evaluate,
                       train)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def model_config(latent_dim=3):
    return ModelConfig(image_shape=(1, 8, 8), latent_dim=latent_dim, hidden=(64,))


def settings(**overrides) -> TrainConfig:
    return TrainConfig(**{"dataset": "digits", "epochs": 2, "batch_size": 128, "seed": 3, "device": "cpu", **overrides})


def same_weights(a, b) -> bool:
    return all(torch.equal(value, b.state_dict()[key]) for key, value in a.state_dict().items())


def test_every_step_and_epoch_is_reported_with_its_figures(digits):
    events = []
    result = train(model_config(), settings(epochs=2), dataset=digits, on_event=events.append)
    steps = [e for e in events if isinstance(e, StepEvent)]
    epochs = [e for e in events if isinstance(e, EpochEvent)]
    per_epoch = math.ceil(len(digits.train_images) / 128)
    assert len(steps) == 2 * per_epoch and len(epochs) == 2
    assert [(e.epoch, e.step) for e in steps] == [(ep, st) for ep in (1, 2) for st in range(1, per_epoch + 1)]
    for event in steps:
        assert event.steps_per_epoch == per_epoch and event.epochs == 2
        assert event.total == pytest.approx(event.recon + event.kl, rel=1e-5)
        assert event.images_per_second > 0 and event.elapsed_seconds >= 0
        assert event.preview is None or event.preview.shape == (2 * PREVIEW_COUNT, 1, 8, 8)
    assert steps[0].preview is None  # a preview at most once a second, not on every step
    for event, record in zip(epochs, result.history):
        assert event.record is record
        assert event.preview.shape == (2 * PREVIEW_COUNT, 1, 8, 8)
        shown = train_module.preview_indices(digits.test_labels, PREVIEW_COUNT, len(digits.test_images))
        assert torch.equal(event.preview[:PREVIEW_COUNT], digits.test_images[shown])
        assert event.preview.min() >= 0 and event.preview.max() <= 1
    # Epoch events come after that epoch's steps and before the next epoch's.
    assert events.index(epochs[0]) == per_epoch


def test_history_has_one_entry_per_epoch_with_the_issues_keys(digits):
    result = train(model_config(latent_dim=4), settings(epochs=3), dataset=digits)
    assert isinstance(result, TrainResult)
    assert result.status == "finished" and result.epochs_completed == 3 and result.device == "cpu"
    assert [entry["epoch"] for entry in result.history] == [1, 2, 3]
    for entry in result.history:
        assert {"epoch", "train", "test", "kl_per_dim"} <= set(entry)
        assert set(entry["train"]) == set(entry["test"]) == {"recon", "kl", "total"}
        for split in ("train", "test"):
            figures = entry[split]
            assert all(isinstance(v, float) and math.isfinite(v) for v in figures.values())
            assert figures["total"] == pytest.approx(figures["recon"] + figures["kl"], rel=1e-6)
        assert len(entry["kl_per_dim"]) == 4
        assert sum(entry["kl_per_dim"]) == pytest.approx(entry["test"]["kl"], rel=1e-4)
    assert result.history[-1]["test"]["total"] < result.history[0]["test"]["total"]  # it learns
    assert not result.model.training


def test_the_recorded_test_figures_are_the_evaluation_of_the_returned_model(digits):
    config = settings(epochs=1)
    result = train(model_config(), config, dataset=digits)
    again = evaluate(result.model, digits.test_images, seed=config.seed)
    assert again["total"] == pytest.approx(result.history[-1]["test"]["total"], rel=1e-5)
    assert again["kl_per_dim"] == pytest.approx(result.history[-1]["kl_per_dim"], rel=1e-5)


def test_kl_warm_up_is_recorded_per_epoch(digits):
    result = train(model_config(), settings(epochs=3, beta=2.0, warmup_epochs=2), dataset=digits)
    assert [entry["beta"] for entry in result.history] == [1.0, 2.0, 2.0]


def test_beta_changes_what_is_learned(digits):
    plain = train(model_config(), settings(epochs=2), dataset=digits)
    heavy = train(model_config(), settings(epochs=2, beta=20.0), dataset=digits)
    assert heavy.history[-1]["test"]["kl"] < plain.history[-1]["test"]["kl"]


def test_stop_between_steps_keeps_the_last_complete_epoch(digits):
    stop = threading.Event()

    def stop_in_epoch_two(event):
        if isinstance(event, StepEvent) and event.epoch == 2 and event.step == 3:
            stop.set()

    stopped = train(model_config(), settings(epochs=4), dataset=digits, on_event=stop_in_epoch_two, stop=stop)
    one_epoch = train(model_config(), settings(epochs=1), dataset=digits)
    assert stopped.status == "stopped" and "epoch 2" in stopped.message
    assert len(stopped.history) == 1 and stopped.history[0]["test"] == one_epoch.history[0]["test"]
    assert same_weights(stopped.model, one_epoch.model)


def test_stop_before_the_first_step_keeps_nothing(digits):
    stop = threading.Event()
    stop.set()
    result = train(model_config(), settings(), dataset=digits, stop=stop)
    assert result.status == "stopped" and result.history == [] and "0 complete" in result.message


@pytest.mark.parametrize("bad_value", [float("nan"), float("inf")])
def test_a_non_finite_loss_is_refused_with_a_clear_message_and_the_last_good_weights_kept(digits, monkeypatch, bad_value):
    real_elbo_parts = train_module.elbo_parts
    per_epoch = math.ceil(len(digits.train_images) / 128)
    training_calls = []

    def turns_bad_in_epoch_two(model, x, *args, **kwargs):
        parts = real_elbo_parts(model, x, *args, **kwargs)
        if "generator" in kwargs:  # the test-split evaluation
            return parts
        training_calls.append(1)
        if len(training_calls) == per_epoch + 2:
            return ELBOParts(recon=parts.recon * bad_value, kl=parts.kl, kl_per_dim=parts.kl_per_dim)
        return parts

    monkeypatch.setattr(train_module, "elbo_parts", turns_bad_in_epoch_two)
    events = []
    result = train(model_config(), settings(epochs=3), dataset=digits, on_event=events.append)
    monkeypatch.undo()
    one_epoch = train(model_config(), settings(epochs=1), dataset=digits)

    assert result.status == "nan"
    assert f"became {bad_value}" in result.message and "epoch 2, step 2" in result.message
    assert "smaller learning rate" in result.message
    assert len(result.history) == 1
    assert same_weights(result.model, one_epoch.model)
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
    assert len(training_calls) == per_epoch + 2  # nothing ran after the bad step
    assert max(e.epoch for e in events if isinstance(e, EpochEvent)) == 1


class BlowsUpOnStep:
    """Adam whose `at`-th update leaves a NaN in the first weight, as a diverging step does."""

    def __init__(self, optimizer, at: int):
        self.optimizer, self.at, self.steps = optimizer, at, 0

    def zero_grad(self, **kwargs):
        self.optimizer.zero_grad(**kwargs)

    def step(self):
        self.optimizer.step()
        self.steps += 1
        if self.steps == self.at:
            with torch.no_grad():
                next(iter(self.optimizer.param_groups[0]["params"]))[0].fill_(float("nan"))


@pytest.mark.parametrize("steps_per_epoch", [1, 2])
def test_a_blow_up_on_the_last_step_of_an_epoch_keeps_the_last_truly_good_epoch(digits, monkeypatch, tmp_path, steps_per_epoch):
    from vae.checkpoints import load_checkpoint, save_checkpoint

    batch = math.ceil(len(digits.train_images) / steps_per_epoch)
    real_adam = train_module._adam  # epoch 2's last update leaves a NaN; its loss was finite when checked
    monkeypatch.setattr(train_module, "_adam", lambda *args: BlowsUpOnStep(real_adam(*args), at=2 * steps_per_epoch))
    config = settings(epochs=3, batch_size=batch)
    result = train(model_config(), config, dataset=digits)
    monkeypatch.undo()
    one_epoch = train(model_config(), settings(epochs=1, batch_size=batch), dataset=digits)

    assert result.status == "nan" and "Epoch 2 ended with non-finite weights" in result.message
    assert "last complete epoch (1)" in result.message
    assert len(result.history) == 1 and result.history[0]["test"] == one_epoch.history[0]["test"]
    assert same_weights(result.model, one_epoch.model)
    # ...and it saves: nothing non-finite reaches the checkpoint.
    saved = save_checkpoint(tmp_path / "kept", result.model, dataset={"name": "digits"}, train=config.to_dict(),
                            history=result.history)
    assert len(load_checkpoint(saved).history) == 1


def test_the_live_preview_shows_a_spread_of_labels():
    from vae.datasets import Dataset

    mnist = load_dataset("mnist5k")
    assert mnist.test_labels[:PREVIEW_COUNT].unique().tolist() == [0]  # the test split is sorted by label
    small = Dataset("mnist5k", mnist.train_images[::40], mnist.test_images, mnist.train_labels[::40], mnist.test_labels)
    events = []
    train(ModelConfig(image_shape=(1, 28, 28), latent_dim=2, hidden=(16,)), settings(epochs=1, dataset="mnist5k"),
          dataset=small, on_event=events.append)
    originals = [e for e in events if isinstance(e, EpochEvent)][0].preview[:PREVIEW_COUNT]
    rows = [int((mnist.test_images == image).flatten(1).all(1).nonzero()[0]) for image in originals]
    assert sorted(int(mnist.test_labels[row]) for row in rows) == list(range(PREVIEW_COUNT))


@pytest.mark.parametrize("labels, count, expected", [
    (torch.tensor([0, 0, 0, 1, 1, 2]), 6, [0, 3, 5, 1, 4, 2]),
    (torch.tensor([2, 0, 1, 0]), 3, [1, 2, 0]),
    (torch.tensor([5, 5, 5]), 8, [0, 1, 2]),  # fewer images than asked for: all of them
    (None, 3, [0, 2, 5]),  # no labels: evenly spaced over six images
])
def test_preview_indices_take_each_label_in_turn(labels, count, expected):
    assert train_module.preview_indices(labels, count, 6 if labels is None else len(labels)) == expected


def test_a_huge_learning_rate_never_leaves_non_finite_weights(digits):
    result = train(ModelConfig(image_shape=(1, 8, 8), latent_dim=2, hidden=(32,), likelihood="gaussian",
                               gaussian_sigma=1e-3), settings(epochs=3, lr=1.0), dataset=digits)
    assert result.status in ("finished", "nan")
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
    if result.status == "nan":
        assert "smaller learning rate" in result.message and len(result.history) < 3


def test_a_model_for_another_image_shape_is_refused_before_training(digits):
    with pytest.raises(ModelConfigError, match="expects images"):
        train(ModelConfig(image_shape=(1, 28, 28)), settings(), dataset=digits)


@pytest.mark.parametrize("field, value", [
    ("epochs", 0), ("epochs", 2.5), ("batch_size", 0), ("lr", 0.0), ("lr", float("nan")), ("lr", 2.0),
    ("beta", -1.0), ("beta", float("inf")), ("warmup_epochs", -1.0),
])
def test_nonsense_training_settings_are_refused(field, value):
    with pytest.raises(TrainConfigError):
        settings(**{field: value})


def test_the_data_set_is_loaded_by_name_when_not_given():
    result = train(model_config(), settings(epochs=1))
    assert result.history[0]["epoch"] == 1
