"""`python -m vae.projection CHECKPOINT...`: compute and save a checkpoint's maps ahead of time."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from vae.checkpoints import CheckpointError, load_checkpoint
from vae.datasets import DataError, load_dataset
from vae.projection.store import ProjectionStore


def main(argv: list[str] | None = None) -> int:
    """`python -m vae.projection CHECKPOINT...`: compute and save a checkpoint's maps ahead of time,
    so a class opening it never waits (the shipped models' maps are made this way)."""
    parser = argparse.ArgumentParser(prog="python -m vae.projection", description=main.__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path, help="checkpoint folders")
    parser.add_argument("--methods", nargs="+", default=["pca", "umap", "tsne"], choices=["pca", "umap", "tsne"])
    args = parser.parse_args(argv)
    for path in args.checkpoints:
        try:
            checkpoint = load_checkpoint(path)
            dataset = load_dataset(checkpoint.dataset_name, checkpoint.config["train"].get("data_dir"))
        except (CheckpointError, DataError) as error:
            print(f"error: {path}: {error}", file=sys.stderr)
            return 2
        store = ProjectionStore(path, checkpoint.model, dataset)
        started = time.perf_counter()
        codes = store.codes()
        print(f"{path.name}: {len(codes):,} codes ({time.perf_counter() - started:.1f} s)")
        options = {option.method: option for option in codes.options()}
        for method in args.methods:
            if not options[method].offered:
                print(f"{path.name}: {method} not offered: {options[method].reason}")
                continue
            projection = store.projection(method)
            print(f"{path.name}: {method} ({projection.source}, {projection.seconds:.1f} s)")
        if store.disk_error:
            print(f"error: {store.disk_error}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
