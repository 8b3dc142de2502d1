"""Latent map timings: UMAP / t-SNE / PCA of a whole data set, cold, warm, cached; placing an upload.

    python bench/latent_map.py [--checkpoint mnist5k-mlp-z2] [--uptime 60] [--tsne]

Works on a scratch copy of the checkpoint (nothing is written into checkpoints/). It does what a
server does: starts the UMAP warm-up thread, lets `--uptime` seconds pass (a server that has been
up for a minute), then asks for each projection the way the Latent map page does and prints
how long it took until the coordinates were there, and again when cached in memory and on disk.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vae.checkpoints import load_checkpoint  # noqa: E402
from vae.datasets import load_dataset  # noqa: E402
from vae.projection import ProjectionStore, start_umap_warmup, umap_warmup_status, wait_for_umap_warmup  # noqa: E402


def timed(action):
    started = time.perf_counter()
    result = action()
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="mnist5k-mlp-z2")
    parser.add_argument("--uptime", type=float, default=60.0, help="seconds the 'server' has been up before asking")
    parser.add_argument("--tsne", action="store_true", help="also time t-SNE (about half a minute per 5,000 points)")
    args = parser.parse_args()

    server_start = time.monotonic()
    start_umap_warmup()
    scratch = Path(tempfile.mkdtemp(prefix="latent-map-bench-"))
    try:
        folder = shutil.copytree(ROOT / "checkpoints" / args.checkpoint, scratch / args.checkpoint,
                                 ignore=shutil.ignore_patterns("projections"))
        checkpoint = load_checkpoint(folder)
        dataset = load_dataset(checkpoint.dataset_name)
        store = ProjectionStore(folder, checkpoint.model, dataset)
        codes, seconds = timed(store.codes)
        print(f"model {args.checkpoint}: {len(codes):,} images, {codes.latent_dim}-D latent")
        print(f"encode data set once            {seconds:8.3f} s")

        pca, seconds = timed(lambda: store.projection("pca"))
        print(f"PCA, first ask (warm-up running){seconds:8.3f} s")
        fresh = ProjectionStore(folder, checkpoint.model, dataset)
        fresh.codes()
        _, seconds = timed(lambda: fresh.projection("pca"))
        print(f"PCA, from disk (new store)      {seconds:8.3f} s")
        for path in (folder / "projections" / "pca.npz",):
            path.unlink()
        again = ProjectionStore(folder, checkpoint.model, dataset)
        again.codes()
        _, seconds = timed(lambda: again.projection("pca"))
        print(f"PCA, computed again (warm)      {seconds:8.3f} s")

        remaining = args.uptime - (time.monotonic() - server_start)
        if remaining > 0:
            wait_for_umap_warmup(remaining)
        status = umap_warmup_status()
        print(f"UMAP warm-up: {status.stage} after {status.elapsed:.1f} s; asking at server uptime "
              f"{time.monotonic() - server_start:.1f} s")
        (folder / "projections" / "pca.npz").unlink()
        later = ProjectionStore(folder, checkpoint.model, dataset)
        later.codes()
        _, seconds = timed(lambda: later.projection("pca"))
        print(f"PCA, computed after the warm-up {seconds:8.3f} s")
        umap, seconds = timed(lambda: store.request("umap").result())
        print(f"UMAP of {len(codes):,} points, first ask   {seconds:8.3f} s")
        _, seconds = timed(lambda: store.request("umap").result())
        print(f"UMAP, cached in memory          {seconds:8.6f} s")
        fresh = ProjectionStore(folder, checkpoint.model, dataset)
        fresh.codes()
        from_disk, seconds = timed(lambda: fresh.projection("umap"))
        print(f"UMAP, from disk (new store)     {seconds:8.3f} s")
        placed, seconds = timed(lambda: store.place(umap, codes.mu[:1]))
        print(f"UMAP transform of one upload    {seconds:8.3f} s")
        placed, seconds = timed(lambda: fresh.place(from_disk, codes.mu[:1]))
        print(f"UMAP transform after a restart  {seconds:8.3f} s   (refits with the same seed first)")
        if args.tsne:
            _, seconds = timed(lambda: store.request("tsne").result())
            print(f"t-SNE of {len(codes):,} points          {seconds:8.3f} s")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
