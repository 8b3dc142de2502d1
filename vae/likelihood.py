"""How good is the ELBO as an estimate of log p(x)? The IWAE bound, and exact log p(x) for 2-D latents.

    log p(x) >= IWAE_K(x) = E[ log (1/K) sum_k w_k ],   w_k = p(x|z_k) p(z_k) / q(z_k|x),  z_k ~ q(z|x)

(Burda, Grosse & Salakhutdinov 2015, "Importance Weighted Autoencoders", eq. 8). K = 1 is the ELBO;
the bound never loosens as K grows (ibid., Theorem 1) and reaches log p(x) as K -> infinity. For a
2-D latent, log p(x) = log of the integral of p(x|z) p(z) over z, computed here on a grid, and the
true posterior p(z|x) = p(x|z) p(z) / p(x) on that grid. Every number is per image, in nats.

`python -m vae.likelihood CHECKPOINT --k 5000` prints a model's test-set figures.
"""

from __future__ import annotations

import math
import threading
import weakref
from dataclasses import dataclass

import numpy as np
import torch

from vae.fast_decoder import FastDecoder
from vae.fast_decoder import log_px_given_z as fast_log_px_given_z
from vae.models import VAE

LADDER_KS = (1, 10, 100, 1000, 5000)
ELBO_DRAWS = 1000  # the ladder's ELBO row: one-sample ELBOs averaged
TYPICALITY_K = 20  # the Upload page's IWAE: tight enough to rank, quick for a whole test split
_FLOATS_PER_CHUNK = 4_000_000  # decoder outputs held at once (16 MB of float32)
# Codes decoded at once: enough for full-speed matrix products, few enough that the conv decoder's
# feature maps (25 MB for the conv z=16 model) stay near the cache; 5,000 at once was 10% slower.
_CODES_PER_CHUNK = 1024


@dataclass(frozen=True)
class IWAEResult:
    """IWAE_K per image: bound (N,) in nats (a lower bound on log p(x)); ess (N,) the effective sample
    size of the K importance weights, (sum w)^2 / sum w^2, between 1 (one sample carries all the weight:
    q(z|x) is a poor proposal) and K (all weights equal: q(z|x) is the true posterior)."""

    k: int
    bound: torch.Tensor
    ess: torch.Tensor


def _generator(model: VAE, seed: int) -> torch.Generator:
    return torch.Generator(device=model.device).manual_seed(int(seed))


@torch.no_grad()
def log_weights(model: VAE, x: torch.Tensor, samples: int, seed: int = 0) -> torch.Tensor:
    """log w = log p(x|z) + log p(z) - log q(z|x) for `samples` draws z ~ q(z|x) per image: (samples, N).

    x: images (N, C, H, W) in [0, 1], moved to the model's device; the result stays there. The same
    seed gives the same draws. Decodes with `vae.fast_decoder` (the model's own logits, faster on a
    CPU). Raises ValueError for samples < 1.
    """
    if samples < 1:
        raise ValueError(f"need at least one sample, not {samples}")
    x = x.to(model.device)
    posterior = model.encode(x)
    sigma = posterior.stddev
    decoder = FastDecoder(model)
    targets = x.flatten(1)  # (N, P): broadcast against every sample, never copied
    # log p(z) - log q(z|x) for z = mu + sigma * eps: the Gaussians' log 2 pi terms cancel and
    # (z - mu) / sigma is eps itself, so this is sum_d (eps^2 - z^2) / 2 + log sigma.
    log_sigma = torch.log(sigma).sum(-1)
    generator = _generator(model, seed)
    chunk = max(1, min(_CODES_PER_CHUNK, _FLOATS_PER_CHUNK // x[0].numel()) // len(x))
    out = []
    for start in range(0, samples, chunk):
        count = min(chunk, samples - start)
        z, eps = posterior.sample_with_noise((count,), generator=generator)  # (count, N, D)
        logits = decoder.decode_logits(z.flatten(0, 1)).view(count, len(x), -1)
        log_px_given_z = fast_log_px_given_z(logits, targets, model.config.likelihood, model.config.gaussian_sigma)
        out.append(log_px_given_z + 0.5 * (eps.pow(2) - z.pow(2)).sum(-1) + log_sigma)
    return torch.cat(out)


def iwae_from_log_weights(weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(bound, ess) per image from log weights (K, N): log-sum-exp minus log K, and the effective sample size."""
    k = weights.shape[0]
    bound = torch.logsumexp(weights, 0) - math.log(k)
    ess = torch.exp(2 * torch.logsumexp(weights, 0) - torch.logsumexp(2 * weights, 0))
    return bound, ess


def iwae(model: VAE, x: torch.Tensor, k: int, seed: int = 0, batch_size: int = 100) -> IWAEResult:
    """IWAE_K for images x (N, C, H, W) in [0, 1], in batches of `batch_size` images (batch b draws with
    seed + b); computed on the model's device, returned on the CPU. Raises ValueError for k < 1."""
    bounds, sizes = [], []
    for index, start in enumerate(range(0, len(x), batch_size)):
        weights = log_weights(model, x[start:start + batch_size], k, seed + index)
        bound, ess = iwae_from_log_weights(weights)
        bounds.append(bound.cpu())
        sizes.append(ess.cpu())
    return IWAEResult(k=k, bound=torch.cat(bounds), ess=torch.cat(sizes))


@dataclass(frozen=True)
class LadderRung:
    """One estimate of log p(x) for one image, nats: `value`, and `ess` (None for the ELBO and exact rows)."""

    name: str
    k: int | None
    value: float
    ess: float | None


@torch.no_grad()
def bound_ladder(model: VAE, x: torch.Tensor, ks: tuple[int, ...] = LADDER_KS, seed: int = 0) -> list[LadderRung]:
    """The ELBO, then IWAE_K for each K, for one image x (1, C, H, W): the bound tightening towards log p(x).

    One set of max(ks) draws serves every K: IWAE_K is averaged over the max(ks) // K disjoint blocks of K
    weights (so small K comes with less noise). The ELBO row is `elbo_parts`'s estimate (one draw of
    log p(x|z), closed-form KL) averaged over ELBO_DRAWS draws of its own, the same draws `elbo_parts`
    makes for the image repeated ELBO_DRAWS times (its KL is exact, so it needs fewer). For a 2-D latent
    add `exact_log_likelihood`.
    """
    draws = max(ks)
    weights = log_weights(model, x, draws, seed)[:, 0]
    x = x.to(model.device)
    posterior = model.encode(x)
    z = posterior.sample((min(draws, ELBO_DRAWS),), generator=_generator(model, seed + 1)).flatten(0, 1)  # (draws, D)
    logits = FastDecoder(model).decode_logits(z).flatten(1)
    recon = -fast_log_px_given_z(logits, x.flatten(1), model.config.likelihood, model.config.gaussian_sigma)
    rungs = [LadderRung("ELBO", 1, -float(recon.mean() + posterior.kl().sum()), None)]
    for k in ks:
        blocks = weights[: (draws // k) * k].view(draws // k, k).T  # (k, blocks)
        bound, ess = iwae_from_log_weights(blocks)
        rungs.append(LadderRung(f"IWAE, K = {k:,}", k, float(bound.mean()), float(ess.mean())))
    return rungs


# --- exact log p(x) for a 2-D latent ---------------------------------------------------------


class GridError(ValueError):
    """The grid could not be made fine and wide enough (the message says which)."""


@dataclass(frozen=True)
class GridPosterior:
    """log p(x) by integrating p(x|z) p(z) over a square grid in a 2-D z, and the true posterior there.

    z1, z2: (G,) grid coordinates; posterior: (G, G) p(z|x) density, [i, j] at (z1[j], z2[i]);
    log_px: nats; spacing: grid step; edge_mass: the fraction of p(z|x) on the grid's outermost cells
    (wide enough when tiny); halving_change: |log p(x) on this grid - on every other point|, nats
    (fine enough when tiny: halving the spacing again would change it less).
    """

    z1: np.ndarray
    z2: np.ndarray
    posterior: np.ndarray
    log_px: float
    spacing: float
    edge_mass: float
    halving_change: float


@torch.no_grad()
def _log_joint(model: VAE, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """log p(x|z) + log p(z) for one image x (1, C, H, W) at codes z (M, 2): (M,)."""
    out = []
    decoder, targets = FastDecoder(model), x.flatten(1)
    chunk = max(1, min(_CODES_PER_CHUNK, _FLOATS_PER_CHUNK // x[0].numel()))
    for part in z.split(chunk):
        log_px_given_z = fast_log_px_given_z(decoder.decode_logits(part).flatten(1), targets, model.config.likelihood,
                                             model.config.gaussian_sigma)
        out.append(log_px_given_z - 0.5 * part.pow(2).sum(1) - math.log(2 * math.pi))
    return torch.cat(out)


def _grid(model: VAE, x: torch.Tensor, low: np.ndarray, high: np.ndarray, points: int,
          coarser: torch.Tensor | None = None):
    """The log joint on a points x points grid over [low, high]; `coarser`, the log joint on the same box
    with (points + 1) // 2 points a side, holds every other point here: those are kept, not decoded again."""
    z1 = torch.linspace(float(low[0]), float(high[0]), points, dtype=torch.float32)
    z2 = torch.linspace(float(low[1]), float(high[1]), points, dtype=torch.float32)
    zz2, zz1 = torch.meshgrid(z2, z1, indexing="ij")
    codes = torch.stack([zz1.flatten(), zz2.flatten()], 1).to(model.device)
    if coarser is None:
        joint = _log_joint(model, x, codes).view(points, points).double().cpu()
    else:
        joint = torch.empty((points, points), dtype=torch.float64)
        joint[::2, ::2] = coarser
        new = torch.ones((points, points), dtype=torch.bool)
        new[::2, ::2] = False
        joint[new] = _log_joint(model, x, codes[new.flatten().to(codes.device)]).double().cpu()
    cell = float((z1[1] - z1[0]) * (z2[1] - z2[0]))
    return z1.numpy(), z2.numpy(), joint, cell


def exact_log_likelihood(model: VAE, x: torch.Tensor, points: int = 129, reach: float = 7.0,
                         tolerance: float = 1e-3, max_points: int = 513) -> GridPosterior:
    """log p(x) for one image x (1, C, H, W) of a model with a 2-D latent, by a Riemann sum on a grid.

    A coarse grid over [-reach, reach]^2 (the prior puts less than 1e-10 of its mass outside) finds where
    p(x|z) p(z) lives (within 30 nats of its peak); a `points` x `points` grid over that box, widened by
    two coarse cells, then integrates it. For a smooth integrand that vanishes at the edges the Riemann
    sum converges faster than any power of the spacing, so two checks suffice: the posterior mass on the
    outermost cells (< 1e-6), and the change when every other point is dropped (< `tolerance` nats); the
    grid's spacing is halved (up to `max_points` a side) until both pass. Raises GridError when they never
    do, and ValueError for a latent that is not 2-D.
    """
    if model.config.latent_dim != 2:
        raise ValueError(f"exact integration is for a 2-D latent; this model has {model.config.latent_dim}")
    x = x.to(model.device)
    coarse_points = 71  # a step of 0.2: p(x|z) p(z) varies smoothly in log space, and 30 nats is a wide margin
    z1, z2, joint, _ = _grid(model, x, np.array([-reach, -reach]), np.array([reach, reach]), coarse_points)
    keep = (joint > joint.max() - 30.0).numpy()
    step = 2 * reach / (coarse_points - 1)
    rows, cols = np.nonzero(keep)
    low = np.array([z1[cols.min()], z2[rows.min()]]) - 2 * step
    high = np.array([z1[cols.max()], z2[rows.max()]]) + 2 * step
    side = float(max(high - low))
    centre = (low + high) / 2
    low, high = centre - side / 2, centre + side / 2  # square cells: one spacing for both axes
    coarser = None
    while True:
        z1, z2, joint, cell = _grid(model, x, low, high, points, coarser)
        log_px = float(torch.logsumexp(joint.flatten(), 0)) + math.log(cell)
        coarse = float(torch.logsumexp(joint[::2, ::2].flatten(), 0)) + math.log(4 * cell)
        posterior = torch.exp(joint - (log_px - math.log(cell)))  # probability per cell
        edge = float(posterior.sum() - posterior[1:-1, 1:-1].sum())
        change = abs(log_px - coarse)
        if edge < 1e-6 and change < tolerance:
            return GridPosterior(z1, z2, (posterior / cell).numpy(), log_px, float(z1[1] - z1[0]), edge, change)
        if 2 * points - 1 > max_points:
            break
        points, coarser = 2 * points - 1, joint  # keeps every old point (not decoded again), halving the spacing
    raise GridError(f"the grid did not converge: edge mass {edge:.2g}, change on halving {change:.2g} nats")


# --- the test split's IWAE, for ranking uploads ----------------------------------------------

_test_iwae: "weakref.WeakKeyDictionary[VAE, dict]" = weakref.WeakKeyDictionary()
_test_iwae_lock = threading.Lock()


def iwae_of_test_split(model: VAE, test_images: torch.Tensor, k: int = TYPICALITY_K, seed: int = 0) -> np.ndarray:
    """-IWAE_K (nats, (N,)) of every test image, computed once per model object and K (shared models are
    never trained, so it cannot go stale). One computation at a time: concurrent callers wait, then share it."""
    with _test_iwae_lock:
        per_model = _test_iwae.setdefault(model, {})
        key = (k, seed, len(test_images))
        if key not in per_model:
            per_model[key] = (-iwae(model, test_images, k, seed).bound).numpy()
        return per_model[key]


# --- the command line ----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """`python -m vae.likelihood CHECKPOINT --k 5000`: the test split's -ELBO, -IWAE_K and (2-D) exact
    -log p(x), averaged per image in nats (lower is better), with bits per dimension."""
    import argparse
    import time

    from vae.baselines import bits_per_dim
    from vae.checkpoints import CheckpointError, load_checkpoint
    from vae.datasets import DataError, load_dataset
    from vae.devices import resolve_device
    from vae.train import evaluate

    parser = argparse.ArgumentParser(prog="python -m vae.likelihood", description=main.__doc__)
    parser.add_argument("checkpoint", help="a checkpoint folder")
    parser.add_argument("--k", type=int, default=5000, help="importance samples per image (default 5000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="only the first N test images")
    parser.add_argument("--no-exact", action="store_true", help="skip the grid integration of a 2-D latent")
    parser.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), or one of them")
    args = parser.parse_args(argv)
    if args.k < 1:
        parser.error("--k must be at least 1")
    try:
        device = resolve_device(args.device)
        checkpoint = load_checkpoint(args.checkpoint, device=device)
        dataset = load_dataset(checkpoint.dataset_name, checkpoint.config["train"].get("data_dir"))
    except (CheckpointError, DataError, ValueError, RuntimeError) as error:
        print(f"error: {error}")
        return 1
    model = checkpoint.model.eval()
    images = dataset.test_images[: args.limit]
    pixels = images[0].numel()
    started = time.perf_counter()
    neg_elbo = torch.tensor([evaluate(model, images, batch_size=500, seed=args.seed)["total"]])
    result = iwae(model, images, args.k, args.seed)
    rows = [("-ELBO (one sample per image)", neg_elbo), (f"-IWAE, K = {args.k}", -result.bound)]
    if model.config.latent_dim == 2 and not args.no_exact:
        rows.append(("-log p(x), exact (grid)", torch.tensor([-exact_log_likelihood(model, image[None]).log_px
                                                              for image in images])))
    seconds = time.perf_counter() - started
    print(f"{checkpoint.name}: {len(images)} test images of {checkpoint.dataset_name}, {device}, {seconds:.1f} s")
    for name, values in rows:
        mean = float(values.mean())
        print(f"  {name:32s} {mean:9.2f} nats/image  ({bits_per_dim(mean, pixels):.4f} bits/dim)")
    print(f"  effective sample size of the IWAE weights: median {float(result.ess.median()):.1f} of {args.k}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
