"""What a checkpoint's `config.json` holds, as a typed object.

`CheckpointInfo.from_dict(json.loads(text)).to_dict()` is the same dict, keys in the same order,
so `json.dumps(..., indent=1)` writes the file back byte for byte: the format is unchanged.
Validation of untrusted files stays in `vae.checkpoints.read_config` (and
`vae.checkpoint_schema`); this class only names the fields.
"""

from __future__ import annotations

import importlib.metadata
import platform
from dataclasses import dataclass, field

from vae import __version__

FORMAT = "latent-lab-checkpoint"
FORMAT_VERSION = 1
_FIELDS = ("format", "format_version", "name", "model", "dataset", "train", "history", "final_test", "versions",
           "created")


@dataclass(frozen=True)
class CheckpointInfo:
    """One checkpoint's settings and story (the JSON beside its weights).

    model: `vae.configs.ModelConfig.to_dict()`; dataset: {"name", "image_shape", ...}; train: the
    training settings; history: one record per epoch (see vae.train), losses in nats per image;
    final_test: the last epoch's test figures (None before any epoch); versions: the libraries
    that wrote it; created: ISO 8601 UTC time of the save; extra: any further keys, kept after
    these, in their order.
    """

    name: str
    model: dict
    dataset: dict
    train: dict
    history: list[dict]
    final_test: dict | None = None
    versions: dict = field(default_factory=dict)
    created: str | None = None
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    extra: dict = field(default_factory=dict)
    # The keys of the dict it was read from, in order (a file written by an older version may lack
    # some): to_dict writes exactly those back. Empty for a new checkpoint: every field is written.
    keys: tuple[str, ...] = field(default=(), repr=False, compare=False)

    @property
    def dataset_name(self) -> str:
        return self.dataset["name"]

    @property
    def beta(self) -> float:
        """The KL weight the model was trained with (1.0: the plain ELBO)."""
        return float(self.train.get("beta", 1.0))

    def to_dict(self) -> dict:
        """The JSON object of config.json (known fields first, then `extra`)."""
        known = {key: getattr(self, key) for key in _FIELDS}
        if not self.keys:
            return {**known, **self.extra}
        return {key: known[key] if key in known else self.extra[key] for key in self.keys}

    @classmethod
    def from_dict(cls, data: dict) -> CheckpointInfo:
        """The info of a config.json object already checked by `vae.checkpoints.read_config`.

        Raises TypeError when model, dataset, train or history is missing.
        """
        known = {key: data[key] for key in _FIELDS if key in data}
        known.setdefault("name", "")
        extra = {key: value for key, value in data.items() if key not in _FIELDS}
        return cls(**known, extra=extra, keys=tuple(data))


def library_versions() -> dict:
    """The versions of Python and the libraries saving a checkpoint (its `versions` field)."""
    import numpy
    import safetensors
    import torch

    try:  # read from the package metadata: importing torchvision costs seconds
        torchvision_version = importlib.metadata.version("torchvision")
    except importlib.metadata.PackageNotFoundError:
        torchvision_version = None
    return {
        "latent_lab": __version__, "python": platform.python_version(), "torch": torch.__version__,
        "torchvision": torchvision_version, "safetensors": safetensors.__version__, "numpy": numpy.__version__,
    }
