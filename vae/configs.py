"""Model settings: plain data, importable without PyTorch (the app lists checkpoints with it)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from vae.hyperparameters import ARCHITECTURES, HYPERPARAMETERS, LIKELIHOODS, MAX_LATENT_DIM, MAX_WIDTH  # noqa: F401 (re-exported)
from vae.hyperparameters import _shown

MAX_IMAGE_SIDE = 512  # pixels; the data sets here are 8 to 64
MAX_CHANNELS = 4
MAX_CONV_LAYERS = 6
MAX_PARAMETERS = 100_000_000  # 400 MB of float32 weights: checked before a model is built from a config


class ModelConfigError(ValueError):
    """A model configuration that cannot be built."""


@dataclass
class ModelConfig:
    """Everything needed to rebuild a VAE; saved verbatim in a checkpoint's config.json.

    `hidden` is the dense layer width(s) between the image and the latent code (MLP: the
    Kingma & Welling hidden layer; conv: a dense layer after the convolutions). `conv_channels`
    lists the channels of the strided convolutions, each halving height and width. Empty
    tuples mean "the default for this architecture and image size".
    """

    arch: str = HYPERPARAMETERS["arch"].default
    image_shape: tuple[int, int, int] = (1, 28, 28)
    latent_dim: int = HYPERPARAMETERS["latent_dim"].default
    likelihood: str = HYPERPARAMETERS["likelihood"].default
    hidden: tuple[int, ...] = ()
    conv_channels: tuple[int, ...] = ()
    gaussian_sigma: float = 0.1  # fixed decoder standard deviation of the Gaussian likelihood

    def __post_init__(self) -> None:
        # Settings may come from any config.json: check types and sizes before anything uses them.
        # Not frozen, so the defaults ("()") and JSON lists become tuples here by plain assignment.
        self.image_shape = _whole_numbers(self.image_shape, "Image shape")
        self.hidden = _whole_numbers(self.hidden, "Hidden widths")
        self.conv_channels = _whole_numbers(self.conv_channels, "Conv channels")
        if self.arch not in ARCHITECTURES:
            raise ModelConfigError(f"Unknown architecture '{self.arch}'; choose one of {', '.join(ARCHITECTURES)}.")
        if self.likelihood not in LIKELIHOODS:
            raise ModelConfigError(f"Unknown likelihood '{self.likelihood}'; choose one of {', '.join(LIKELIHOODS)}.")
        HYPERPARAMETERS["latent_dim"].check(self.latent_dim, ModelConfigError)
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise ModelConfigError(f"Image shape must be (channels, height, width), not {self.image_shape}.")
        if self.image_shape[0] > MAX_CHANNELS or max(self.image_shape[1:]) > MAX_IMAGE_SIDE:
            raise ModelConfigError(f"Images of at most {MAX_CHANNELS} channels and "
                                   f"{MAX_IMAGE_SIDE} pixels a side, not {self.image_shape}.")
        if not self.hidden:
            self.hidden = (400,) if self.arch == "mlp" else (256,)
        if any(HYPERPARAMETERS["hidden"].problem(h) for h in self.hidden) or len(self.hidden) > 2:
            raise ModelConfigError(f"Use one or two hidden layers, each with 1 to {MAX_WIDTH:,} units.")
        if self.arch == "conv":
            if not self.conv_channels:
                # Above 32 pixels: the four 32-32-64-64 convolutions of the beta-VAE papers' 64x64 models
                # (Higgins et al. 2017; Burgess et al. 2018), down to 4x4 before the dense layer.
                self.conv_channels = (32, 64) if max(self.image_shape[1:]) <= 32 else (32, 32, 64, 64)
            if any(not 1 <= c <= MAX_WIDTH for c in self.conv_channels) or len(self.conv_channels) > MAX_CONV_LAYERS:
                raise ModelConfigError(f"Use 1 to {MAX_CONV_LAYERS} convolutions, "
                                       f"each with 1 to {MAX_WIDTH:,} channels.")
            step = 2 ** len(self.conv_channels)
            _, height, width = self.image_shape
            if height % step or width % step:
                raise ModelConfigError(
                    f"The conv model halves the image {len(self.conv_channels)} times, so height and width "
                    f"must be multiples of {step}; {height}x{width} is not. Use the mlp architecture or resize."
                )
        if isinstance(self.gaussian_sigma, bool) or not isinstance(self.gaussian_sigma, (int, float)) \
                or not 0 < self.gaussian_sigma < math.inf:
            raise ModelConfigError("The Gaussian likelihood's sigma must be a positive number, not "
                                   f"{self.gaussian_sigma!r}.")
        if self.parameter_count() > MAX_PARAMETERS:
            raise ModelConfigError(f"This model would have {self.parameter_count():,} weights; at most "
                                   f"{MAX_PARAMETERS:,} can be built.")

    def parameter_count(self) -> int:
        """Weights and biases of the VAE these settings build (vae.models.VAE), counted without building it."""
        channels, height, width = self.image_shape
        dense_in = self.pixels
        convs = 0
        if self.arch == "conv":
            widths = [channels, *self.conv_channels]
            # Encoder convolutions and decoder transposed convolutions, 4x4 kernels, one bias per output channel.
            convs = sum(a * b * 16 for a, b in zip(widths, widths[1:])) * 2 + sum(widths[1:]) + sum(widths[:-1])
            dense_in = self.conv_channels[-1] * (height >> len(self.conv_channels)) * (width >> len(self.conv_channels))
        encoder = [dense_in, *self.hidden, 2 * self.latent_dim]
        decoder = [self.latent_dim, *reversed(self.hidden), dense_in]
        return convs + sum(a * b + b for path in (encoder, decoder) for a, b in zip(path, path[1:]))

    @property
    def pixels(self) -> int:
        return math.prod(self.image_shape)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        if not isinstance(data, dict):
            raise ModelConfigError("Model settings must be a JSON object.")
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ModelConfigError(f"Unknown model settings: {', '.join(sorted(unknown))}.")
        return cls(**data)


def _whole_numbers(values, what: str) -> tuple[int, ...]:
    """`values` as a tuple of ints; refuses strings, booleans and fractions (a config.json may hold anything)."""
    if not isinstance(values, (list, tuple)) or len(values) > 8:
        raise ModelConfigError(f"{what} must be a short list of whole numbers, not {_shown(values)}.")
    numbers = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or (isinstance(value, float) and not (math.isfinite(value) and value.is_integer())):
            raise ModelConfigError(f"{what} must be whole numbers, not {_shown(value)}.")
        numbers.append(int(value))
    return tuple(numbers)
