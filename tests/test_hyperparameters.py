"""Each hyperparameter is declared once (vae.hyperparameters): the library's configs, the command line
and the Train page accept and refuse the same values at the edges of its bounds."""

from __future__ import annotations

import dataclasses
import json

import pytest

from vae.hyperparameters import HYPERPARAMETERS
from vae.models import ModelConfig, ModelConfigError
from vae.train import TrainConfig, TrainConfigError
from vae.train_cli import build_parser

# setting, Train page key, lowest and highest allowed, and a value just outside on each side.
EDGES = [
    ("latent_dim", "train_latent", 1, 128, 0, 129),
    ("beta", "train_beta", 0.0, 1000.0, -0.001, 1000.001),
    ("warmup_epochs", "train_warmup", 0.0, 10_000.0, -0.5, 10_000.5),
    ("epochs", "train_epochs", 1, 10_000, 0, 10_001),
    ("batch_size", "train_batch", 1, 65_536, 0, 65_537),
    ("lr", "train_lr", 1e-8, 1.0, 1e-9, 1.001),
    ("seed", "train_seed", 0, 2**31 - 1, -1, 2**31),
]
IDS = [edge[0] for edge in EDGES]


def library_accepts(name: str, value) -> bool:
    try:
        if name == "latent_dim":
            ModelConfig(latent_dim=value)
        elif name == "hidden":
            ModelConfig(hidden=(value,))
        else:
            TrainConfig(**{name: value})
    except (ModelConfigError, TrainConfigError):
        return False
    return True


def command_line_accepts(name: str, value) -> bool:
    try:
        args = build_parser().parse_args(["--out", "x", HYPERPARAMETERS[name].flag, str(value)])
    except SystemExit:
        return False
    got = getattr(args, name)
    assert (got[0] if isinstance(got, list) else got) == value
    return True


@pytest.mark.parametrize("name, key, low, high, below, above", EDGES, ids=IDS)
def test_the_library_and_the_command_line_agree_on_every_edge(name, key, low, high, below, above):
    for value, allowed in ((low, True), (high, True), (below, False), (above, False)):
        assert library_accepts(name, value) is allowed, (name, value)
        assert command_line_accepts(name, value) is allowed, (name, value)


def test_hidden_units_have_the_same_bounds_on_the_command_line_and_in_a_config():
    for value, allowed in ((1, True), (16_384, True), (0, False), (16_385, False)):
        assert library_accepts("hidden", value) is allowed, value
        assert command_line_accepts("hidden", value) is allowed, value


def test_the_train_page_offers_exactly_the_declared_range(app_test, monkeypatch):
    monkeypatch.setenv("LATENT_LAB_UMAP_WARMUP", "0")  # the Train page never uses UMAP
    at = app_test.run().switch_page("views/train.py").run()
    assert not at.exception, [e.value for e in at.exception]
    for name, key, low, high, _, _ in EDGES:
        box = at.number_input(key=key)
        assert (box.proto.min, box.proto.max) == pytest.approx((low, high), rel=1e-12), name
        assert library_accepts(name, type(low)(box.proto.min)) and library_accepts(name, type(high)(box.proto.max)), name
    for name, key in (("arch", "train_arch"), ("likelihood", "train_likelihood")):
        assert tuple(at.selectbox(key=key).options) == HYPERPARAMETERS[name].choices


@pytest.mark.parametrize("value", [True, 2.0, "3", None])
def test_whole_number_settings_refuse_what_is_not_a_whole_number(value):
    with pytest.raises(TrainConfigError, match="Epochs must be a whole number"):
        TrainConfig(epochs=value)


def test_the_saved_settings_are_unchanged():
    """What a checkpoint's config.json holds for the model and the training, field for field."""
    model = ModelConfig(arch="conv", image_shape=[1, 28, 28], latent_dim=16, hidden=[256])
    assert json.loads(json.dumps(model.to_dict())) == {
        "arch": "conv", "image_shape": [1, 28, 28], "latent_dim": 16, "likelihood": "bernoulli", "hidden": [256],
        "conv_channels": [32, 64], "gaussian_sigma": 0.1}
    assert ModelConfig.from_dict(json.loads(json.dumps(model.to_dict()))) == model
    assert TrainConfig().to_dict() == {"dataset": "mnist5k", "data_dir": None, "epochs": 10, "batch_size": 128, "lr": 1e-3,
                                       "beta": 1.0, "warmup_epochs": 0.0, "seed": 0, "device": "auto"}
    assert dataclasses.replace(model, latent_dim=2).hidden == (256,)
