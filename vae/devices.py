"""Picking the device a model runs on."""

from __future__ import annotations

import torch


class DeviceError(ValueError):
    """A device was named that this machine does not have."""


def available_devices() -> list[str]:
    """Device names usable here, best first, always ending with "cpu"."""
    names = []
    if torch.cuda.is_available():
        names.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    names.append("cpu")
    return names


def resolve_device(name: str | None = "auto") -> torch.device:
    """`auto` (or None) picks cuda, then mps, then cpu; a named device must exist."""
    if name in (None, "", "auto"):
        return torch.device(available_devices()[0])
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise DeviceError(f"'{name}' is not a device name (try auto, cpu, cuda or mps).") from error
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError("CUDA was asked for, but this machine has no usable CUDA GPU; use 'auto' or 'cpu'.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"There is no GPU number {device.index}: this machine has {torch.cuda.device_count()}.")
    elif device.type == "mps" and "mps" not in available_devices():
        raise DeviceError("Apple's MPS was asked for, but it is not available here; use 'auto' or 'cpu'.")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"Device '{name}' is not supported (use auto, cpu, cuda or mps).")
    return device
