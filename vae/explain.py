"""One image through a VAE, step by step, with the model's own numbers (the Explain page's library).

    x -> encoder -> (mu, log sigma^2) -> sigma = exp(log sigma^2 / 2) -> eps ~ N(0, I) -> z = mu + sigma * eps
      -> decoder -> p(x|z)'s parameters -> recon = -log p(x|z),  KL(q(z|x) || p(z)),  ELBO = -(recon + KL)

The numbers come from the same functions as everywhere else (`VAE.encode`, `vae.losses.elbo_parts`), so
the ELBO shown here is the one training optimises (Kingma & Welling 2014, eq. 7 and Appendix B).
Arrays are NumPy on the CPU; images (C, H, W) in [0, 1]; per-dimension values (D,); nats per image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from vae.losses import elbo_parts, reconstruction_nll_per_pixel
from vae.models import VAE


@dataclass(frozen=True)
class ForwardTrace:
    """Every stage of one image's pass, for one draw of epsilon (`seed`).

    image, decoded: (C, H, W) in [0, 1] (decoded: the mean of p(x|z) at the drawn z); mu, log_var, sigma,
    eps, z, kl_per_dim: (D,); log_px_per_pixel: (C, H, W) log p(x_i|z) in nats (sums to -recon).
    """

    seed: int
    image: np.ndarray
    mu: np.ndarray
    log_var: np.ndarray
    sigma: np.ndarray
    eps: np.ndarray
    z: np.ndarray
    decoded: np.ndarray
    log_px_per_pixel: np.ndarray
    recon: float  # -log p(x|z), nats
    kl_per_dim: np.ndarray
    kl: float  # KL(q(z|x) || p(z)), nats

    @property
    def elbo(self) -> float:
        return -(self.recon + self.kl)

    def objective(self, beta: float) -> float:
        """What the optimiser minimises for this image at this beta: recon + beta * KL (= -ELBO at beta = 1)."""
        return self.recon + beta * self.kl


def epsilon(model: VAE, seed: int) -> torch.Tensor:
    """The epsilon (1, D) `elbo_parts` draws first from a generator seeded with `seed` on the model's device."""
    generator = torch.Generator(device=model.device).manual_seed(int(seed))
    return torch.randn((1, model.config.latent_dim), generator=generator, device=model.device)


@torch.no_grad()
def forward_trace(model: VAE, x: torch.Tensor, seed: int = 0) -> ForwardTrace:
    """Trace one image x (1, C, H, W) in [0, 1] through `model` with epsilon drawn from `seed`."""
    x = x.to(model.device)
    parts = elbo_parts(model, x, sample=True, generator=torch.Generator(device=model.device).manual_seed(int(seed)))
    posterior, z = parts.posterior, parts.z
    eps = epsilon(model, seed)  # the draw behind that z: same generator, same first draw
    decoded = parts.decoded
    per_pixel = -reconstruction_nll_per_pixel(decoded, x, model.config.likelihood, model.config.gaussian_sigma)
    numpy = lambda tensor: tensor[0].detach().cpu().numpy().astype(np.float64)  # noqa: E731
    return ForwardTrace(
        seed=int(seed), image=numpy(x), mu=numpy(posterior.mean), log_var=numpy(2 * torch.log(posterior.stddev)),
        sigma=numpy(posterior.stddev), eps=numpy(eps), z=numpy(z), decoded=numpy(model.images_from_decoded(decoded)),
        log_px_per_pixel=numpy(per_pixel), recon=float(parts.recon[0]), kl_per_dim=numpy(parts.kl_per_dim),
        kl=float(parts.kl[0]),
    )


@dataclass(frozen=True)
class Layer:
    """One layer as a diagram shows it: `kind` (Linear, Conv2d, ...), its settings, and its output shape."""

    part: str  # "encoder" or "decoder"
    kind: str
    detail: str
    output_shape: tuple[int, ...]


def _describe(layer: nn.Module) -> str:
    if isinstance(layer, nn.Linear):
        return f"{layer.in_features} → {layer.out_features}"
    if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
        kernel = "×".join(str(size) for size in layer.kernel_size)
        return f"{layer.in_channels} → {layer.out_channels} channels, {kernel}, stride {layer.stride[0]}"
    return ""


@torch.no_grad()
def architecture(model: VAE) -> list[Layer]:
    """The model's layers in order, read from the model itself (not a fixed drawing), with the shape each
    one outputs for one image, found by passing zeros through."""
    layers = []
    h = torch.zeros((1, *model.config.image_shape), device=model.device)
    for part, sequence in (("encoder", model.encoder), ("decoder", model.decoder)):
        if part == "decoder":
            h = torch.zeros((1, model.config.latent_dim), device=model.device)
        for layer in sequence:
            h = layer(h)
            layers.append(Layer(part, type(layer).__name__, _describe(layer), tuple(h.shape[1:])))
    return layers


STAGES = ("image", "encoder", "sigma", "epsilon", "z", "decoder", "reconstruction", "kl", "elbo")


def _shape(shape: tuple[int, ...]) -> str:
    return "×".join(str(s) for s in shape)


def architecture_dot(model: VAE, current: str | None = None) -> str:
    """A Graphviz (DOT) diagram of the path x → encoder → (mu, log sigma²) → sigma, eps → z → decoder → the
    loss terms, the layers listed inside the encoder and decoder boxes; `current` (a name in STAGES) is
    highlighted."""
    layers = architecture(model)
    latent, likelihood = model.config.latent_dim, model.config.likelihood

    def rows(part: str) -> str:
        cells = []
        for index, layer in enumerate(layers):
            if layer.part != part or layer.kind in ("ReLU", "Flatten", "Unflatten"):
                continue
            after = layers[index + 1].kind if index + 1 < len(layers) and layers[index + 1].part == part else ""
            cells.append(f"<tr><td align='left'>{layer.kind} {layer.detail}{' · ReLU' if after == 'ReLU' else ''}</td>"
                         f"<td align='right'>{_shape(layer.output_shape)}</td></tr>")
        return "".join(cells)

    def style(stage: str) -> str:
        current_style = 'style="filled,bold" fillcolor="#ffe08a" penwidth=3'
        return current_style if stage == current else 'style=filled fillcolor="#f4f4f4"'

    nodes = {
        "image": f'"x\\n{_shape(model.config.image_shape)} image"',
        "encoder": "<<table border='0' cellspacing='0'><tr><td "
                   f"colspan='2'><b>encoder</b></td></tr>{rows('encoder')}</table>>",
        "mu": f'"μ, log σ²\\n2 × {latent}"', "sigma": f'"σ = exp(½ log σ²)\\n{latent}"',
        "epsilon": f'"ε ~ N(0, I)\\n{latent}"', "z": f'"z = μ + σ·ε\\n{latent}"', "decoder": "<<table border='0' "
        f"cellspacing='0'><tr><td colspan='2'><b>decoder</b></td></tr>{rows('decoder')}</table>>",
        "reconstruction": f'"{"Bernoulli means" if likelihood == "bernoulli" else "Gaussian means"}\\n−log p(x|z)"',
        "kl": '"KL(q(z|x) ‖ p(z))"', "elbo": '"ELBO = −recon − KL"',
    }
    highlight = {"mu": "encoder"}
    lines = ["digraph vae {", "rankdir=LR; node [shape=box fontname=Helvetica fontsize=11]; edge [color=\"#666\"];"]
    for name, label in nodes.items():
        lines.append(f"{name} [label={label} {style(highlight.get(name, name))}];")
    for a, b in (("image", "encoder"), ("encoder", "mu"), ("mu", "sigma"), ("sigma", "z"), ("mu", "z"),
                 ("epsilon", "z"), ("z", "decoder"), ("decoder", "reconstruction"), ("image", "reconstruction"),
                 ("mu", "kl"), ("sigma", "kl"), ("reconstruction", "elbo"), ("kl", "elbo")):
        lines.append(f"{a} -> {b};")
    lines.append("}")
    return "\n".join(lines)
