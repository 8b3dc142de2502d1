"""What a checkpoint's config.json may hold, checked before anything reads it.

Any folder of the checkpoints root is listed on every page, so its config.json is untrusted
input: JSON nested 100,000 deep, a 5,000-digit number or `"beta": "high"` must become one
message for that folder, never an exception in a page. Parsing is bounded (the file's size is
capped by the caller, numbers by their digits, nesting by the decoder's recursion guard and a
walk below), then every field a page reads is checked for its type and range.
"""

from __future__ import annotations

import json
import math
import re

MAX_DEPTH = 16  # a checkpoint's settings nest 4 deep; extra entries get some room
MAX_NUMBER_CHARS = 40  # digits of an int or characters of a float, as written in the file
MAX_TEXT_CHARS = 4096  # any one text a page reads
MAX_EPOCHS = 100_000  # history entries
MAX_CONTAINERS = 300_000  # lists and objects: 4 per epoch, and an epoch takes 250+ bytes of the 8 MB


class ConfigSchemaError(ValueError):
    """A config.json that is not a checkpoint's settings; the message says where and what."""


_LONG_NUMBER = re.compile(rf"[0-9]{{{MAX_NUMBER_CHARS + 1},}}")


def parse_config_text(text: str) -> object:
    """The JSON value of `text`, refusing long digit runs, NaN/Infinity and deep nesting.

    Raises ConfigSchemaError. Time and memory are linear in len(text), which the caller caps: the
    digit runs are found by one regular-expression scan before parsing (Python's int() is
    quadratic in the digits), lists and objects are counted before parsing, and the nesting walk
    skips lists that hold no containers.
    """
    containers = text.count("[") + text.count("{")
    if containers > MAX_CONTAINERS:
        raise ConfigSchemaError(f"holds {containers:,} lists and objects; a checkpoint's settings hold far fewer")
    long_number = _LONG_NUMBER.search(text)
    if long_number:
        raise ConfigSchemaError(f"holds a number with {long_number.end() - long_number.start():,} digits")
    try:
        value = json.loads(text, parse_constant=_constant)
    except RecursionError:  # the C decoder's own guard, about 1,000 levels deep
        raise ConfigSchemaError("is nested too deeply to be a checkpoint's settings") from None
    except ConfigSchemaError:
        raise
    except ValueError as error:  # json.JSONDecodeError is one
        raise ConfigSchemaError(f"is not valid JSON ({_short(str(error))})") from None
    _check_depth(value)
    return value


def _constant(text: str):
    raise ConfigSchemaError(f"holds {text}, which is not a number JSON allows")


_CONTAINERS = {dict, list}


def _check_depth(value: object) -> None:
    """Nesting depth, one level at a time; a list holding no containers costs one C-level pass."""
    level, depth = [value], 1
    while level:
        if depth > MAX_DEPTH:
            raise ConfigSchemaError(f"is nested more than {MAX_DEPTH} levels deep")
        below = []
        for item in level:
            children = item.values() if type(item) is dict else item
            if _CONTAINERS & set(map(type, children)):
                below.extend(child for child in children if type(child) in _CONTAINERS)
        level, depth = below, depth + 1


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _shown(value: object) -> str:
    return _short(repr(value), 40)


def _number(value: object, where: str, *, whole: bool = False, low: float = -math.inf) -> None:
    is_number = isinstance(value, int) or (isinstance(value, float) and not whole)
    if isinstance(value, bool) or not is_number or not math.isfinite(value):
        raise ConfigSchemaError(f"{where} must be a {'whole ' if whole else ''}number, not {_shown(value)}")
    if value < low:
        raise ConfigSchemaError(f"{where} must be at least {low:g}, not {_shown(value)}")


def _text(value: object, where: str, optional: bool = False) -> None:
    if not (isinstance(value, str) or (optional and value is None)):
        raise ConfigSchemaError(f"{where} must be a text, not {_shown(value)}")
    if isinstance(value, str) and len(value) > MAX_TEXT_CHARS:
        raise ConfigSchemaError(f"{where} is a text of {len(value):,} characters; at most {MAX_TEXT_CHARS:,}")


def _object(value: object, where: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigSchemaError(f"{where} must be a JSON object, not {_shown(value)}")
    return value


TRAIN_NUMBERS = {"beta": 0.0, "warmup_epochs": 0.0, "lr": 0.0, "seconds": 0.0}
TRAIN_WHOLE_NUMBERS = {"epochs": 0, "batch_size": 1, "seed": 0}
LOSS_KEYS = ("recon", "kl", "total")


def check_settings(config: dict, latent_dim: int) -> None:
    """Types and ranges of every field a page reads, beyond the model settings (vae.configs checks those).

    config: the parsed config.json (a dict with the required keys). Raises ConfigSchemaError.
    """
    dataset = _object(config["dataset"], "dataset")
    _text(dataset.get("name"), "dataset.name")
    if "label_names" in dataset and dataset["label_names"] is not None:
        if not isinstance(dataset["label_names"], list) or not all(isinstance(n, str) for n in dataset["label_names"]):
            raise ConfigSchemaError("dataset.label_names must be a list of texts")
        for label in dataset["label_names"]:
            _text(label, "dataset.label_names")
    train = _object(config["train"], "train")
    for key, low in TRAIN_NUMBERS.items():
        if key in train:
            _number(train[key], f"train.{key}", low=low)
    for key, low in TRAIN_WHOLE_NUMBERS.items():
        if key in train:
            _number(train[key], f"train.{key}", whole=True, low=low)
    for key in ("dataset", "device", "device_used", "status", "data_dir"):
        if key in train:
            _text(train[key], f"train.{key}", optional=key == "data_dir")
    history = config["history"]
    if not isinstance(history, list):
        raise ConfigSchemaError("history must be a list")
    if len(history) > MAX_EPOCHS:
        raise ConfigSchemaError(f"history has {len(history):,} epochs; at most {MAX_EPOCHS:,} are read")
    for number, entry in enumerate(history, 1):
        where = f"history[{number}]"
        entry = _object(entry, where)
        _number(entry.get("epoch"), f"{where}.epoch", whole=True)
        for split in ("train", "test"):
            figures = _object(entry.get(split), f"{where}.{split}")
            for key in LOSS_KEYS:
                _number(figures.get(key), f"{where}.{split}.{key}")
        if "kl_per_dim" in entry:
            kl_per_dim = entry["kl_per_dim"]
            if not isinstance(kl_per_dim, list) or len(kl_per_dim) != latent_dim:
                raise ConfigSchemaError(f"{where}.kl_per_dim must list {latent_dim} numbers, one per latent dimension")
            for value in kl_per_dim:
                _number(value, f"{where}.kl_per_dim")
        for key in ("beta", "seconds", "images_per_second"):
            if key in entry:
                _number(entry[key], f"{where}.{key}")
    final = config.get("final_test")
    if final is not None:
        for key in LOSS_KEYS:
            if key in _object(final, "final_test"):
                _number(final[key], f"final_test.{key}")
    _object(config["versions"], "versions")
    for key in ("name", "created"):
        if key in config:
            _text(config[key], key)
