"""Wall clock of the training CLI, start-up included, and the conv-versus-MLP test loss it reaches.

    python bench/cli_time.py [--repeats 2] [--skip-conv]

Runs, in a scratch folder, exactly what a user types (defaults: batch 128, lr 1e-3, seed 0):
    python -m vae.train --dataset mnist5k --arch mlp --latent-dim 20 --epochs 10 --out DIR
    python -m vae.train --dataset mnist5k --arch conv --latent-dim 16 --epochs 10 --out DIR
and prints each run's wall clock (target for the MLP: under 15 s) and the test -ELBO per image
after the 10th epoch, read back from the saved checkpoint (target: conv lower than MLP).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = {
    "mlp z=20": ["--arch", "mlp", "--latent-dim", "20"],
    "conv z=16": ["--arch", "conv", "--latent-dim", "16"],
}


def run_cli(flags: list[str], out: Path) -> tuple[float, dict]:
    command = [sys.executable, "-m", "vae.train", "--dataset", "mnist5k", *flags, "--epochs", "10", "--out", str(out), "--overwrite"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    config = json.loads((out / "config.json").read_text())
    return seconds, config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--skip-conv", action="store_true", help="time the MLP only")
    args = parser.parse_args()
    results: dict[str, tuple[list[float], dict]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for label, flags in RUNS.items():
            if args.skip_conv and label.startswith("conv"):
                continue
            times = []
            for repeat in range(args.repeats):
                seconds, config = run_cli(flags, Path(scratch) / f"bench-{label.split()[0]}")
                times.append(seconds)
                print(f"{label} run {repeat + 1}: {seconds:5.1f} s wall clock, of which training loop "
                      f"{config['train']['seconds']:.1f} s; test -ELBO {config['final_test']['total']:.2f} nats/image", flush=True)
            results[label] = (times, config)
    for label, (times, config) in results.items():
        final = config["final_test"]
        print(f"{label}: median {statistics.median(times):.1f} s, best {min(times):.1f} s; test recon {final['recon']:.2f} "
              f"+ KL {final['kl']:.2f} = -ELBO {final['total']:.2f} nats/image")
    if "mlp z=20" in results:
        print(f"MLP CLI wall clock target < 15 s: best {min(results['mlp z=20'][0]):.1f} s")
    if len(results) == 2:
        mlp, conv = (results[k][1]["final_test"]["total"] for k in RUNS)
        print(f"conv z=16 minus MLP z=20 test -ELBO: {conv - mlp:+.2f} nats/image (target < 0)")


if __name__ == "__main__":
    main()
