"""vae.history: typed epoch records that read and write the history JSON exactly as it is stored."""

from __future__ import annotations

import json

import pytest

from conftest import SHIPPED
from vae.checkpoints import read_config
from vae.history import EpochLosses, EpochRecord, final_numbers, last_kl_per_dim, read_history

SHIPPED_NAMES = sorted(path.name for path in SHIPPED.iterdir() if (path / "config.json").exists())


@pytest.mark.parametrize("name", SHIPPED_NAMES)
def test_every_shipped_history_round_trips_to_the_same_json(name):
    history = read_config(SHIPPED / name)["history"]
    records = read_history(history)
    assert len(records) == len(history) > 0
    written = [record.to_dict() for record in records]
    assert written == history
    # the same keys in the same order and the same number types: the JSON text is the same, byte for byte
    assert json.dumps(written, indent=1, allow_nan=False) == json.dumps(history, indent=1, allow_nan=False)


def test_typed_fields_read_the_figures_the_json_holds():
    history = read_config(SHIPPED / "digits-mlp-z2")["history"]
    last = read_history(history)[-1]
    assert last.epoch == history[-1]["epoch"] and last.test.kl == history[-1]["test"]["kl"]
    assert last.train.total == history[-1]["train"]["total"] and last.kl_per_dim == history[-1]["kl_per_dim"]
    numbers = final_numbers(read_history(history))
    assert numbers.recon == pytest.approx(history[-1]["test"]["recon"]) and numbers.epochs == len(history)


def test_fields_a_record_did_not_write_stay_absent():
    raw = {"epoch": 1, "train": {"recon": 3.0, "kl": 1.0, "total": 4.0}, "test": {"recon": 2.5, "kl": 1.5, "total": 4.0}}
    record = EpochRecord.from_dict(raw)
    assert record.kl_per_dim is None and record.beta is None and record.seconds is None
    assert record.to_dict() == raw and list(record.to_dict()) == ["epoch", "train", "test"]
    assert last_kl_per_dim([record]) is None and last_kl_per_dim([]) is None


def test_a_record_missing_a_loss_term_names_it():
    with pytest.raises(KeyError, match="total"):
        EpochRecord.from_dict({"epoch": 1, "train": {"recon": 1.0, "kl": 1.0}, "test": {"recon": 1.0, "kl": 1.0, "total": 2.0}})


def test_records_pass_through_read_history_unchanged():
    record = EpochRecord(epoch=1, train=EpochLosses(1.0, 2.0, 3.0), test=EpochLosses(1.5, 2.0, 3.5), kl_per_dim=[2.0])
    assert read_history([record])[0] is record
    assert read_history([record.to_dict()]) == [record]
