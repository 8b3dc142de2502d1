"""How long generating the `shapes` data set takes: 20,000 images, 28x28 (the registry's) and 64x64.

Run: python bench/shapes_generation.py [--repeats 5]
Prints the first (cold) time and the best and median of the repeats, and the time of the registry
entry (generation + the seeded train/test split into tensors). The target is under 2 s for 20,000.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vae.datasets import load_dataset  # noqa: E402
from vae.datasets.shapes import SHAPES_COUNT, generate_shapes  # noqa: E402


def timed(function) -> tuple[float, object]:
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for size in (28, 64):
        seconds = [timed(lambda: generate_shapes(SHAPES_COUNT, size=size, seed=0))[0] for _ in range(args.repeats)]
        shapes = generate_shapes(SHAPES_COUNT, size=size, seed=0)
        megabytes = shapes.images.nbytes / 2 ** 20
        print(f"generate_shapes({SHAPES_COUNT:,}, size={size}): first {seconds[0]:.3f} s, best {min(seconds):.3f} s, "
              f"median {statistics.median(seconds):.3f} s over {args.repeats} runs "
              f"({SHAPES_COUNT / min(seconds):,.0f} images/s, {megabytes:.0f} MiB of float32)")
    seconds, dataset = timed(lambda: load_dataset("shapes"))
    print(f"load_dataset('shapes') cold: {seconds:.3f} s -> train {tuple(dataset.train_images.shape)}, "
          f"test {tuple(dataset.test_images.shape)}, factors {', '.join(dataset.train_factors)}")
    seconds, _ = timed(lambda: load_dataset("shapes"))
    print(f"load_dataset('shapes') cached: {seconds * 1e6:.1f} us")


if __name__ == "__main__":
    main()
