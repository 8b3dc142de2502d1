"""Compare page speed: the page with 4 models once they are loaded, and MI + MIG for 10,000 shapes codes.

    OMP_NUM_THREADS=1 python bench/compare.py [--models A B C D] [--repeats 5]

1. The Compare page (AppTest, the whole app script as the server runs it) with 4 checkpoints: the
   first run loads the models and data sets and computes each shapes model's MI matrix (cached);
   then the page is run again `repeats` times and the best and median seconds are printed. That is
   the server's side of a redraw after a widget change: every figure built and sent.
2. `vae.disentangle.disentanglement` on 10,000 posterior means of a shapes model (the first shapes
   checkpoint given, else random codes, D = 10) against the five factors: best and median of `repeats`.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_MODELS = ["shapes64-conv-z10-beta1", "shapes64-conv-z10-beta4", "mnist5k-conv-z16", "mnist5k-mlp-z2"]


def page_seconds(models: list[str], repeats: int) -> list[float]:
    from streamlit.testing.v1 import AppTest

    os.environ.setdefault("LATENT_LAB_UMAP_WARMUP", "0")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600).run()
    at.switch_page("views/compare.py").run()
    at.multiselect(key="compare_models").set_value(models).run()  # loads, encodes, measures MI once
    if at.exception or len(at.get("plotly_chart")) < 6:
        raise SystemExit(f"the page did not draw: {[e.value for e in at.exception]}")
    if at.multiselect(key="compare_models").value != models:
        raise SystemExit(f"not every model could be read: the page kept {at.multiselect(key='compare_models').value}")
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - started)
    return times


def mig_seconds(models: list[str], repeats: int) -> tuple[list[float], str]:
    import numpy as np
    import torch

    from vae.checkpoints import list_checkpoints, load_checkpoint
    from vae.datasets import load_dataset
    from vae.datasets.shapes import SHAPES_DATASETS
    from vae.disentangle import disentanglement

    dataset = load_dataset("shapes")  # random codes are measured against its factors
    source = "random codes, D = 10"
    mu = np.random.default_rng(0).normal(size=(10_000, 10))
    paths = {summary.name: summary.path for summary in list_checkpoints()}  # saved or shipped
    for name in models:
        checkpoint = load_checkpoint(paths[name])
        if checkpoint.dataset_name in SHAPES_DATASETS:
            dataset = load_dataset(checkpoint.dataset_name)
            images = dataset.train_images[:10_000]
            with torch.no_grad():
                mu = torch.cat([checkpoint.model.encode(images[i:i + 1000]).mean for i in range(0, 10_000, 1000)]).numpy()
            source = f"{name}'s posterior means, D = {mu.shape[1]}"
            break
    factors = {factor: values[:10_000].numpy() for factor, values in dataset.train_factors.items()}
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        disentanglement(mu, factors)
        times.append(time.perf_counter() - started)
    return times, source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs=4, default=DEFAULT_MODELS)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    page = page_seconds(args.models, args.repeats)
    print(f"Compare page, 4 models ({', '.join(args.models)}), after loading: best {min(page):.2f} s, "
          f"median {statistics.median(page):.2f} s over {args.repeats} reruns (target < 3 s)")
    mig, source = mig_seconds(args.models, args.repeats)
    print(f"MI matrix + MIG, 10,000 codes ({source}) x 5 factors: best {min(mig):.3f} s, "
          f"median {statistics.median(mig):.3f} s (target < 1 s)")


if __name__ == "__main__":
    main()
