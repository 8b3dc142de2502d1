"""What the Explain page computes for one image, and the likelihood CLI's test-set IWAE, timed.

    python bench/explain.py [--repeats 3] [--test-images 20] [--only MODEL] [--threads N] [--no-compare]

For each shipped model, after loading it (not timed), the median of `--repeats` runs of:
  page, K <= 1000   the forward trace, the architecture diagram, the bound ladder up to K = 1000
                    and (2-D) the exact log p(x) on the grid: the page's work for a new image
  ladder, K = 5000  the ladder up to K = 5000 as the page draws it (ELBO row + one set of 5,000 draws)
  IWAE_5000, 1 img  vae.likelihood.iwae(model, x, 5000) alone
  test IWAE_20      the Upload page's typicality reference: every test image at K = 20 (once per model)
and, for the conv z=16 model, IWAE_5000 on the first `--test-images` test images, scaled to the whole
test split (what `python -m vae.likelihood checkpoints/mnist5k-conv-z16 --k 5000` costs), then the
fast path (`vae.fast_decoder`) against the plain computation it replaced, back to back in this process
(ratios survive a busy machine better than seconds): 5,000 codes decoded, the log weights of one image
at K = 5,000, the test images' IWAE_5000 and the largest per-image difference between the two, nats.
Targets (issue 12, a 2-core CPU): page with K up to 1000 under 1 s, K = 5000 for one image under 2 s,
the conv model's test-set IWAE_5000 under 2 minutes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vae import explain, likelihood  # noqa: E402
from vae.checkpoints import load_checkpoint  # noqa: E402
from vae.datasets import load_dataset  # noqa: E402
from vae.fast_decoder import FastDecoder  # noqa: E402
from vae.losses import reconstruction_nll  # noqa: E402

MODELS = ("digits-mlp-z2", "mnist5k-mlp-z2", "mnist5k-conv-z16")


def timed(work, repeats: int) -> float:
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


@torch.no_grad()
def plain_log_weights(model, x, samples: int, seed: int = 0) -> torch.Tensor:
    """The log weights as first written (the model's decoder, x repeated per sample, the Normals'
    log_prob), with the chunks and draws `likelihood.log_weights` makes: the reference for the ratios."""
    posterior = model.encode(x)
    prior = torch.distributions.Normal(torch.zeros_like(posterior.mean), torch.ones_like(posterior.stddev))
    generator = torch.Generator().manual_seed(seed)
    chunk = max(1, likelihood._CODES_PER_CHUNK // len(x))
    out = []
    for start in range(0, samples, chunk):
        count = min(chunk, samples - start)
        z = posterior.mean + posterior.stddev * torch.randn((count, *posterior.mean.shape), generator=generator)
        decoded = model.decode(z.flatten(0, 1))
        targets = x.expand(count, *x.shape).flatten(0, 1)
        log_px_given_z = -reconstruction_nll(decoded, targets, model.config.likelihood, model.config.gaussian_sigma).view(count, len(x))
        out.append(log_px_given_z + prior.log_prob(z).sum(-1) - posterior.log_prob(z).sum(-1))
    return torch.cat(out)


def plain_iwae(model, x, k: int, batch_size: int = 100) -> torch.Tensor:
    return torch.cat([likelihood.iwae_from_log_weights(plain_log_weights(model, x[start:start + batch_size], k, index))[0]
                      for index, start in enumerate(range(0, len(x), batch_size))])


def cpu_timed(work) -> float:
    started = time.process_time()
    work()
    return time.process_time() - started


def paired(plain, fast, repeats: int) -> tuple[float, float, float, float]:
    """Median wall seconds of `plain` and `fast`, run alternately; the median of the pairs' ratios of wall
    time, and of CPU time (this process's: with one thread, the ratio other processes disturb least)."""
    pairs = []
    for _ in range(repeats):
        pairs.append((timed(plain, 1), cpu_timed(plain), timed(fast, 1), cpu_timed(fast)))
    return (statistics.median(p[0] for p in pairs), statistics.median(p[2] for p in pairs),
            statistics.median(p[0] / p[2] for p in pairs), statistics.median(p[1] / p[3] for p in pairs))


def compare_with_plain(model, x, part, repeats: int) -> None:
    z = torch.randn((5000, model.config.latent_dim), generator=torch.Generator().manual_seed(0))
    decoder = FastDecoder(model)
    with torch.no_grad():
        decode = paired(lambda: model.decode_logits(z), lambda: [decoder.decode_logits(codes) for codes in z.split(likelihood._CODES_PER_CHUNK)],
                        repeats)
    weights = paired(lambda: plain_log_weights(model, x, 5000), lambda: likelihood.log_weights(model, x, 5000), repeats)
    started = time.perf_counter()
    plain = plain_iwae(model, part, 5000)
    plain_seconds = time.perf_counter() - started
    started = time.perf_counter()
    fast = likelihood.iwae(model, part, 5000).bound
    fast_seconds = time.perf_counter() - started
    print(f"fast path vs plain, back to back: decode 5,000 codes {decode[0]:.3f} -> {decode[1]:.3f} s (x{decode[2]:.2f}, "
          f"CPU time x{decode[3]:.2f}); log weights, 1 image, K = 5,000 {weights[0]:.3f} -> {weights[1]:.3f} s "
          f"(x{weights[2]:.2f}, CPU time x{weights[3]:.2f}); IWAE_5000 of "
          f"{len(part)} test images {plain_seconds:.1f} -> {fast_seconds:.1f} s (x{plain_seconds / fast_seconds:.2f}), "
          f"largest difference {float((fast - plain).abs().max()):.1e} nats (mean IWAE_5000 {float(fast.mean()):.2f})")


def page_work(model, x, ks) -> None:
    explain.forward_trace(model, x, seed=1)
    explain.architecture_dot(model, "z")
    likelihood.bound_ladder(model, x, ks=ks)
    if model.config.latent_dim == 2 and max(ks) <= 1000:
        likelihood.exact_log_likelihood(model, x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--test-images", type=int, default=20)
    parser.add_argument("--no-compare", action="store_true", help="skip the fast-versus-plain comparison")
    parser.add_argument("--only", choices=MODELS, help="one model only")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: PyTorch's, one per core)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}")
    for name in [args.only] if args.only else MODELS:
        checkpoint = load_checkpoint(ROOT / "checkpoints" / name)
        model = checkpoint.model.eval()
        dataset = load_dataset(checkpoint.dataset_name)
        x = dataset.test_images[:1]
        page = timed(lambda: page_work(model, x, (1, 10, 100, 1000)), args.repeats)
        ladder = timed(lambda: page_work(model, x, likelihood.LADDER_KS), args.repeats)
        single = timed(lambda: likelihood.iwae(model, x, 5000), args.repeats)
        test_20 = timed(lambda: likelihood.iwae(model, dataset.test_images, likelihood.TYPICALITY_K), 1)
        print(f"{name}: page, K <= 1000 {page:.2f} s; ladder, K = 5000 {ladder:.2f} s; IWAE_5000, 1 image {single:.2f} s; "
              f"test IWAE_{likelihood.TYPICALITY_K} ({len(dataset.test_images)} images) {test_20:.2f} s")
        if name == "mnist5k-conv-z16":
            part = dataset.test_images[: args.test_images]
            seconds = timed(lambda: likelihood.iwae(model, part, 5000), 1)
            whole = seconds * len(dataset.test_images) / len(part)
            print(f"{name}: IWAE_5000 of {len(part)} test images {seconds:.1f} s, so the {len(dataset.test_images)}-image "
                  f"test split takes about {whole:.0f} s")
            if not args.no_compare:
                compare_with_plain(model, x, part, args.repeats)


if __name__ == "__main__":
    main()
