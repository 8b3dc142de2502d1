"""Encoders, decoders and the VAE module.

Shapes at the border: images are float tensors (N, C, H, W) in [0, 1]; latent codes z are (N, D).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from vae.configs import ARCHITECTURES, LIKELIHOODS, MAX_LATENT_DIM, ModelConfig, ModelConfigError  # noqa: F401 (re-exported)
from vae.posterior import DiagonalGaussian


def _mlp(sizes: list[int]) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return layers


class VAE(nn.Module):
    """A VAE with a diagonal Gaussian posterior q(z|x) = N(mu(x), sigma(x)^2) and prior N(0, I)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        channels, height, width = config.image_shape
        latent = config.latent_dim
        if config.arch == "mlp":
            self.encoder = nn.Sequential(nn.Flatten(), *_mlp([config.pixels, *config.hidden, 2 * latent]))
            self.decoder = nn.Sequential(*_mlp([latent, *reversed(config.hidden), config.pixels]),
                                         nn.Unflatten(1, config.image_shape))
        else:
            steps = len(config.conv_channels)
            feature_shape = (config.conv_channels[-1], height >> steps, width >> steps)
            features = math.prod(feature_shape)
            encoder: list[nn.Module] = []
            previous = channels
            for out in config.conv_channels:
                encoder += [nn.Conv2d(previous, out, kernel_size=4, stride=2, padding=1), nn.ReLU()]
                previous = out
            encoder += [nn.Flatten(), *_mlp([features, *config.hidden, 2 * latent])]
            self.encoder = nn.Sequential(*encoder)
            decoder: list[nn.Module] = [*_mlp([latent, *reversed(config.hidden), features]), nn.ReLU(),
                                        nn.Unflatten(1, feature_shape)]
            widths = [*reversed(config.conv_channels), channels]
            for i, (fan_in, fan_out) in enumerate(zip(widths, widths[1:])):
                decoder.append(nn.ConvTranspose2d(fan_in, fan_out, kernel_size=4, stride=2, padding=1))
                if i < len(widths) - 2:
                    decoder.append(nn.ReLU())
            self.decoder = nn.Sequential(*decoder)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def encode(self, x: torch.Tensor) -> DiagonalGaussian:
        """Posterior q(z|x) for images x (N, C, H, W) in [0, 1]: N diagonal Gaussians over D dims (vae.posterior)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        # Bounded log-variance keeps exp() finite early in training; sigma stays in [3e-7, 2e4].
        # validate_args=False: a NaN mean must reach the loss, where training refuses it with a
        # message and keeps the last good epoch, instead of raising from inside the distribution.
        return DiagonalGaussian(mu, torch.exp(0.5 * logvar.clamp(-30.0, 20.0)), validate_args=False)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Pre-sigmoid decoder output (N, C, H, W) for codes z (N, D)."""
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Likelihood parameters of p(x|z): Bernoulli logits, or Gaussian means in [0, 1]."""
        logits = self.decode_logits(z)
        return logits if self.config.likelihood == "bernoulli" else torch.sigmoid(logits)

    def decode_images(self, z: torch.Tensor) -> torch.Tensor:
        """The picture a code stands for, (N, C, H, W) in [0, 1]: the Bernoulli or Gaussian mean."""
        return torch.sigmoid(self.decode_logits(z))

    def images_from_decoded(self, decoded: torch.Tensor) -> torch.Tensor:
        """`decode_images` from what `decode` already returned (N, C, H, W), without decoding again."""
        return torch.sigmoid(decoded) if self.config.likelihood == "bernoulli" else decoded

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reconstruct(x, sample=True)

    def reconstruct(self, x: torch.Tensor, sample: bool = False,
                    generator: torch.Generator | None = None) -> torch.Tensor:
        """Images (N, C, H, W) in [0, 1] decoded from the posterior mean (or a sample of it)."""
        posterior = self.encode(x)
        return self.decode_images(posterior.sample(generator=generator) if sample else posterior.mode())

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images (N, C, H, W) in [0, 1] decoded from z drawn from the prior N(0, I)."""
        z = torch.randn((n, self.config.latent_dim), generator=generator,
                        device=generator.device if generator else self.device)
        return self.decode_images(z.to(self.device))

    @torch.no_grad()
    def start_output_at_mean(self, images: torch.Tensor) -> None:
        """Start a conv decoder's output at the mean brightness of `images` (N, C, H, W) in [0, 1].

        A transposed convolution has one output bias per channel, and Adam at lr 1e-3 moves it by
        about 1e-3 a step: from PyTorch's default (about 0, a grey image) it would need thousands of
        steps to reach the dark background of digits (log-odds about -2), and training sits on a
        plateau near the mean image meanwhile. So the bias starts at the log-odds of each channel's
        mean pixel. The MLP's last layer has a bias per pixel and leaves that plateau by itself, so it
        keeps PyTorch's default start (the one the canonical example uses). Works for both
        likelihoods, whose means are sigmoid(decoder output).
        """
        last = self.decoder[-1]
        if self.config.arch != "conv" or not isinstance(last, nn.ConvTranspose2d) or len(images) == 0:
            return
        mean = images.to(last.bias.device, torch.float32).mean(dim=(0, 2, 3)).clamp(1e-3, 1 - 1e-3)
        last.bias.copy_(torch.logit(mean))

    def decoder_spec(self) -> list[dict]:
        """The decoder as a list of plain ops (for a decoder written in another language, e.g. JS).

        Weight entries name tensors in `state_dict()`; the last op is the sigmoid giving images.
        """
        ops: list[dict] = []
        for index, layer in enumerate(self.decoder):
            prefix = f"decoder.{index}"
            if isinstance(layer, nn.Linear):
                ops.append({"op": "linear", "in": layer.in_features, "out": layer.out_features,
                            "weight": f"{prefix}.weight", "bias": f"{prefix}.bias"})
            elif isinstance(layer, nn.ReLU):
                ops.append({"op": "relu"})
            elif isinstance(layer, nn.Unflatten):
                ops.append({"op": "reshape", "shape": list(layer.unflattened_size)})
            elif isinstance(layer, nn.ConvTranspose2d):
                ops.append({
                    "op": "conv_transpose2d", "in": layer.in_channels, "out": layer.out_channels,
                    "kernel": layer.kernel_size[0], "stride": layer.stride[0], "padding": layer.padding[0],
                    "weight": f"{prefix}.weight", "bias": f"{prefix}.bias",
                })
            else:  # pragma: no cover - guarded by the architectures above
                raise TypeError(f"decoder layer {layer!r} has no spec")
        ops.append({"op": "sigmoid"})
        return ops


def build_model(config: ModelConfig, device: torch.device | str = "cpu") -> VAE:
    return VAE(config).to(device)
