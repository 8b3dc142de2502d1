"""Generating from a trained VAE: prior samples, interpolation, latent dimensions by KL, and the
decoder exported for the browser's latent pad.

Shapes at the border: codes z are (N, D) float tensors; images are (N, C, H, W) in [0, 1].
Every function runs the model under torch.no_grad() and never changes it (the app's models are
shared by all sessions).
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
import threading
import weakref
from dataclasses import dataclass

import torch

from vae.history import COLLAPSED_KL_NATS, EpochRecord, dimension_name, is_collapsed, last_kl_per_dim
from vae.images import to_display_image
from vae.models import VAE

INTERPOLATIONS = ("linear", "spherical")


@dataclass(frozen=True)
class LatentDimension:
    """One latent dimension as the learner sees it: its index in z (0-based), its average KL, whether it collapsed."""

    index: int
    kl: float | None  # nats per image, from the last epoch's test set; None when the history has none
    unused: bool  # collapsed onto the prior (vae.history.is_collapsed)

    @property
    def name(self) -> str:
        """z1 .. zD, the name a person reads (vae.history.dimension_name)."""
        return dimension_name(self.index)

    @property
    def label(self) -> str:
        if self.kl is None:
            return self.name
        return f"{self.name} · KL {self.kl:.2f}" + (" · collapsed" if self.unused else "")


def dimensions_by_kl(latent_dim: int, history: list[EpochRecord],
                     threshold: float = COLLAPSED_KL_NATS) -> list[LatentDimension]:
    """The latent dimensions, most informative first, ordered by the last epoch's per-dimension KL.

    A dimension whose KL(q(z_i|x) || p(z_i)) averages under `threshold` nats (default: the app's one
    threshold, vae.history.COLLAPSED_KL_NATS) is marked collapsed: the encoder leaves it at the prior
    ("posterior collapse"), so moving it barely changes the image. Without a usable history the
    dimensions keep their natural order and none is marked.
    """
    kl_per_dim = last_kl_per_dim(history)
    if not isinstance(kl_per_dim, list) or len(kl_per_dim) != latent_dim:
        return [LatentDimension(i, None, False) for i in range(latent_dim)]
    order = sorted(range(latent_dim), key=lambda i: (-float(kl_per_dim[i]), i))
    return [LatentDimension(i, float(kl_per_dim[i]), is_collapsed(kl_per_dim[i], threshold)) for i in order]


def default_pair(dims: list[LatentDimension]) -> tuple[int, int]:
    """The two dimensions (0-based) a 2-D view of z starts on: (across, up) = (x, y).

    The two most informative ones (dims as dimensions_by_kl orders them), the lower index across:
    a 2-D latent is then always z1 across and z2 up, as the Latent map draws it, and the Generate
    pad and a map of two chosen dimensions agree (x = the first, y = the second). Needs D >= 2.
    """
    if len(dims) < 2:
        raise ValueError("a 2-D view needs at least two latent dimensions")
    first, second = sorted((dims[0].index, dims[1].index))
    return first, second


def prior_codes(latent_dim: int, count: int, seed: int) -> torch.Tensor:
    """`count` codes (count, D) drawn from the prior N(0, I) with a seeded generator (same seed, same codes)."""
    generator = torch.Generator().manual_seed(int(seed))
    return torch.randn((count, latent_dim), generator=generator)


def decode(model: VAE, z: torch.Tensor) -> torch.Tensor:
    """Images (N, C, H, W) in [0, 1] for codes z (N, D) or one code (D,)."""
    z = torch.as_tensor(z, dtype=torch.float32).reshape(-1, model.config.latent_dim)
    with torch.no_grad():
        return model.decode_images(z.to(model.device)).cpu()


def prior_samples(model: VAE, count: int, seed: int) -> torch.Tensor:
    """`count` images (N, C, H, W) decoded from seeded draws of the prior."""
    return decode(model, prior_codes(model.config.latent_dim, count, seed))


def posterior_means(model: VAE, images: torch.Tensor) -> torch.Tensor:
    """The posterior means mu(x) (N, D) of images (N, C, H, W) in [0, 1]: each image's "own" code."""
    with torch.no_grad():
        return model.encode(images.to(model.device)).mean.cpu()


def contrasting_pair(labels: torch.Tensor | None) -> tuple[int, int]:
    """Two image indices worth interpolating between by default: the first image, and the first one
    with a different label (0 and 1 when there are no labels or only one class; callers clamp to their size)."""
    if labels is not None and len(labels) > 1:
        different = torch.nonzero(labels != labels[0]).flatten()
        if len(different):
            return 0, int(different[0])
    return 0, 1


def interpolate(z_start: torch.Tensor, z_end: torch.Tensor, steps: int, method: str = "linear") -> torch.Tensor:
    """`steps` codes (steps, D) from z_start to z_end, both ends included.

    linear: z = (1 - t) z_start + t z_end. Its middle codes are shorter than the ends, and under a
    high-dimensional Gaussian prior short codes are atypical (most mass lies near radius sqrt(D)).
    spherical (slerp, Shoemake 1985; White 2016 "Sampling Generative Networks"): travel along the great
    circle between the two directions, z = sin((1-t) w)/sin w z_start + sin(t w)/sin w z_end with w the
    angle between them, so the norm stays near the ends'. Falls back to linear when w is ~0 or ~pi.
    """
    if method not in INTERPOLATIONS:
        raise ValueError(f"method must be one of {', '.join(INTERPOLATIONS)}, not {method!r}")
    if steps < 2:
        raise ValueError("an interpolation needs at least 2 steps (the two ends)")
    a = torch.as_tensor(z_start, dtype=torch.float64).flatten()
    b = torch.as_tensor(z_end, dtype=torch.float64).flatten()
    if a.shape != b.shape:
        raise ValueError(f"the two codes differ in length: {a.numel()} and {b.numel()}")
    t = torch.linspace(0.0, 1.0, steps, dtype=torch.float64).unsqueeze(1)
    if method == "spherical":
        norms = a.norm() * b.norm()
        cosine = (a @ b / norms).clamp(-1.0, 1.0) if norms > 0 else torch.tensor(1.0, dtype=torch.float64)
        omega = torch.arccos(cosine)
        sin_omega = torch.sin(omega)
        if sin_omega > 1e-6:
            path = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / sin_omega
            return path.float()
    return ((1 - t) * a + t * b).float()


# --- the decoder for the browser -------------------------------------------------------------


@dataclass(frozen=True)
class BrowserDecoder:
    """The decoder as plain data for the latent pad's JavaScript.

    key: a content hash of the weights (the browser keeps decoders by it, so a model is sent once);
    spec: VAE.decoder_spec(), each weight name replaced by [offset, length] into `weights`;
    weights: every decoder tensor, float32 little-endian, concatenated and base64-encoded.
    """

    key: str
    spec: list[dict]
    weights: str
    image_shape: tuple[int, int, int]
    latent_dim: int

    def as_data(self) -> dict:
        """JSON-ready form, as the component's `data=` sends it."""
        return {"key": self.key, "spec": self.spec, "weights": self.weights,
                "image_shape": list(self.image_shape), "latent_dim": self.latent_dim}


def _export(model: VAE) -> BrowserDecoder:
    state = model.state_dict()
    chunks: list[bytes] = []
    offset = 0  # in float32 elements
    spec: list[dict] = []
    for op in model.decoder_spec():
        op = dict(op)
        for field in ("weight", "bias"):
            if field in op:
                tensor = state[op[field]].detach().to("cpu", torch.float32).contiguous()
                chunks.append(tensor.numpy().astype("<f4").tobytes())
                op[field] = [offset, tensor.numel()]
                offset += tensor.numel()
        spec.append(op)
    raw = b"".join(chunks)
    key = hashlib.sha256(raw + repr(spec).encode()).hexdigest()[:16]
    return BrowserDecoder(key=key, spec=spec, weights=base64.b64encode(raw).decode("ascii"),
                          image_shape=tuple(model.config.image_shape), latent_dim=model.config.latent_dim)


_exports: "weakref.WeakKeyDictionary[VAE, BrowserDecoder]" = weakref.WeakKeyDictionary()
_exports_lock = threading.Lock()


def browser_decoder(model: VAE) -> BrowserDecoder:
    """The decoder of `model` exported for the browser (computed once per model object).

    Shared models are never trained, so their export cannot go stale; a model that is being
    trained must not be exported through this cache.
    """
    with _exports_lock:
        exported = _exports.get(model)
        if exported is None:
            exported = _exports[model] = _export(model)
        return exported


def code_norms(z: torch.Tensor) -> torch.Tensor:
    """Euclidean norm of each code (N,) of z (N, D); a prior draw's norm is about sqrt(D)."""
    return torch.as_tensor(z, dtype=torch.float32).reshape(len(z), -1).norm(dim=1)


def typical_norm(latent_dim: int) -> float:
    """sqrt(D): where the prior N(0, I) puts most of its mass in D dimensions."""
    return math.sqrt(latent_dim)


def image_png(image: torch.Tensor, width: int = 280) -> bytes:
    """One image (C, H, W) in [0, 1] as PNG bytes, `width` pixels wide, scaled with no blur."""
    buffer = io.BytesIO()
    to_display_image(image, width).save(buffer, format="PNG")
    return buffer.getvalue()
