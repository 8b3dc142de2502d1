"""What the Explain page computes for one image, and the likelihood CLI's test-set IWAE, timed.

    python bench/explain.py [--repeats 3] [--test-images 20]

For each shipped model, after loading it (not timed), the median of `--repeats` runs of:
  page, K <= 1000   the forward trace, the architecture diagram, the bound ladder up to K = 1000
                    and (2-D) the exact log p(x) on the grid: the page's work for a new image
  ladder, K = 5000  the ladder up to K = 5000 as the page draws it (ELBO row + one set of 5,000 draws)
  IWAE_5000, 1 img  vae.likelihood.iwae(model, x, 5000) alone
  test IWAE_20      the Upload page's typicality reference: every test image at K = 20 (once per model)
and, for the conv z=16 model, IWAE_5000 on the first `--test-images` test images, scaled to the whole
test split (what `python -m vae.likelihood checkpoints/mnist5k-conv-z16 --k 5000` costs).
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
MODELS = ("digits-mlp-z2", "mnist5k-mlp-z2", "mnist5k-conv-z16")


def timed(work, repeats: int) -> float:
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


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
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}")
    for name in MODELS:
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


if __name__ == "__main__":
    main()
