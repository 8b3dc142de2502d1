"""Device choice: auto picks cuda, then mps, then cpu; a named device must exist, else a clear error."""

from __future__ import annotations

import pytest
import torch

from vae import devices
from vae.devices import DeviceError, available_devices, resolve_device


def pretend(monkeypatch, cuda: bool, mps: bool, gpus: int = 1):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus if cuda else 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


@pytest.mark.parametrize("cuda, mps, expected", [
    (True, True, "cuda"), (True, False, "cuda"), (False, True, "mps"), (False, False, "cpu"),
])
def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    pretend(monkeypatch, cuda, mps)
    assert available_devices()[0] == expected and available_devices()[-1] == "cpu"
    for spelling in ("auto", None, ""):
        assert resolve_device(spelling).type == expected


def test_cpu_is_always_there():
    assert resolve_device("cpu") == torch.device("cpu")
    assert "cpu" in available_devices()


def test_naming_a_missing_cuda_is_a_clear_error(monkeypatch):
    pretend(monkeypatch, cuda=False, mps=False)
    with pytest.raises(DeviceError, match="no usable CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(DeviceError, match="no usable CUDA GPU"):
        resolve_device("cuda:0")


def test_naming_a_gpu_number_beyond_the_count_is_a_clear_error(monkeypatch):
    pretend(monkeypatch, cuda=True, mps=False, gpus=1)
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(DeviceError, match="no GPU number 3: this machine has 1"):
        resolve_device("cuda:3")


def test_naming_a_missing_mps_is_a_clear_error(monkeypatch):
    pretend(monkeypatch, cuda=False, mps=False)
    with pytest.raises(DeviceError, match="MPS was asked for"):
        resolve_device("mps")


def test_mps_is_used_when_named_and_present(monkeypatch):
    pretend(monkeypatch, cuda=False, mps=True)
    assert resolve_device("mps").type == "mps"


@pytest.mark.parametrize("name", ["gpu", "banana", "cuda:x"])
def test_nonsense_names_are_a_clear_error(name):
    with pytest.raises(DeviceError, match="not a device name"):
        resolve_device(name)


@pytest.mark.parametrize("name", ["meta", "xpu"])
def test_device_types_the_project_does_not_support_are_refused(name):
    with pytest.raises(DeviceError, match="not supported"):
        resolve_device(name)


def test_device_error_is_a_value_error_for_callers_that_catch_those():
    assert issubclass(devices.DeviceError, ValueError)
