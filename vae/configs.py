"""Model settings: plain data, importable without PyTorch (the app lists checkpoints with it)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

ARCHITECTURES = ("mlp", "conv")
LIKELIHOODS = ("bernoulli", "gaussian")
MAX_LATENT_DIM = 128


class ModelConfigError(ValueError):
    """A model configuration that cannot be built."""


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a VAE; saved verbatim in a checkpoint's config.json.

    `hidden` is the dense layer width(s) between the image and the latent code (MLP: the
    Kingma & Welling hidden layer; conv: a dense layer after the convolutions). `conv_channels`
    lists the channels of the strided convolutions, each halving height and width. Empty
    tuples mean "the default for this architecture and image size".
    """

    arch: str = "mlp"
    image_shape: tuple[int, int, int] = (1, 28, 28)
    latent_dim: int = 20
    likelihood: str = "bernoulli"
    hidden: tuple[int, ...] = ()
    conv_channels: tuple[int, ...] = ()
    gaussian_sigma: float = 0.1  # fixed decoder standard deviation of the Gaussian likelihood

    def __post_init__(self) -> None:
        set_field = object.__setattr__.__get__(self)
        set_field("image_shape", tuple(int(s) for s in self.image_shape))
        set_field("hidden", tuple(int(h) for h in self.hidden))
        set_field("conv_channels", tuple(int(c) for c in self.conv_channels))
        if self.arch not in ARCHITECTURES:
            raise ModelConfigError(f"Unknown architecture '{self.arch}'; choose one of {', '.join(ARCHITECTURES)}.")
        if self.likelihood not in LIKELIHOODS:
            raise ModelConfigError(f"Unknown likelihood '{self.likelihood}'; choose one of {', '.join(LIKELIHOODS)}.")
        if isinstance(self.latent_dim, bool) or not isinstance(self.latent_dim, int) or not 1 <= self.latent_dim <= MAX_LATENT_DIM:
            raise ModelConfigError(f"Latent dimension must be a whole number from 1 to {MAX_LATENT_DIM}, not {self.latent_dim!r}.")
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise ModelConfigError(f"Image shape must be (channels, height, width), not {self.image_shape}.")
        if not self.hidden:
            set_field("hidden", (400,) if self.arch == "mlp" else (256,))
        if any(h < 1 for h in self.hidden) or len(self.hidden) > 2:
            raise ModelConfigError("Use one or two hidden layers, each with at least one unit.")
        if self.arch == "conv":
            if not self.conv_channels:
                set_field("conv_channels", (32, 64) if max(self.image_shape[1:]) <= 32 else (32, 64, 128))
            step = 2 ** len(self.conv_channels)
            _, height, width = self.image_shape
            if height % step or width % step:
                raise ModelConfigError(
                    f"The conv model halves the image {len(self.conv_channels)} times, so height and width "
                    f"must be multiples of {step}; {height}x{width} is not. Use the mlp architecture or resize."
                )
        if not self.gaussian_sigma > 0:
            raise ModelConfigError("The Gaussian likelihood's sigma must be positive.")

    @property
    def pixels(self) -> int:
        return math.prod(self.image_shape)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ModelConfigError(f"Unknown model settings: {', '.join(sorted(unknown))}.")
        return cls(**data)
