"""A class's runs at once: in-process vs a Ray cluster simulated on this machine.

Submits `--runs` student-sized runs (mnist5k, `--epochs` epochs, the Train page's default MLP
with a 2-D latent) at once to a JobManager and prints, per executor: the time until every run
is saved, and per run the time from submission to its first step, from being placed (started)
to its first step (for Ray: an actor process starting, importing PyTorch and loading the data on
the worker) and from its last step to saved (the last epoch's test pass, the weights' trip back
and the atomic save). Executors: `inprocess` (one run at a time, the default), `ray1` and `ray2`
(a Ray head with no CPUs and 1 or 2 worker nodes of `--node-cpus` CPUs; each run asks for 1 CPU).

    python bench/cluster.py                      # 8 runs, 3 epochs, inprocess,ray1,ray2
    python bench/cluster.py --runs 2 --modes ray2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from vae import jobs  # noqa: E402
from vae.jobs import JobManager  # noqa: E402
from vae.train import TrainConfig  # noqa: E402

STUDENT_MODEL = {"arch": "mlp", "latent_dim": 2}
POLL = 0.02  # seconds between looks at the runs


def watch(runs: list, submitted: float) -> dict:
    """Poll the runs until all are done; per run the moments of its first step, last step and end."""
    first, last, ended, steps = {}, {}, {}, {}
    while len(ended) < len(runs):
        now = time.perf_counter()
        for job in runs:
            view = job.view()
            done_steps = len(view.history) * view.steps_per_epoch + view.step
            if done_steps and job.id not in first:
                first[job.id] = now
            if done_steps != steps.get(job.id):
                steps[job.id], last[job.id] = done_steps, now
            if view.done and job.id not in ended:
                ended[job.id] = now
                assert view.status == jobs.FINISHED, view.message
        time.sleep(POLL)
    return {"first": first, "last": last, "ended": ended, "started": {job.id: job.view().started for job in runs}}


def measure(manager: JobManager, runs: int, epochs: int, root: Path) -> dict:
    config = TrainConfig(dataset="mnist5k", epochs=epochs, batch_size=128)
    submitted_wall, submitted = time.time(), time.perf_counter()
    started_runs = [manager.submit(f"student-{index}", STUDENT_MODEL, config, root=root) for index in range(runs)]
    moments = watch(started_runs, submitted)
    to_first = [moments["first"][job.id] - submitted for job in started_runs]
    placed_to_first = [moments["first"][job.id] - (submitted + moments["started"][job.id] - submitted_wall) for job in started_runs]
    last_to_saved = [moments["ended"][job.id] - moments["last"][job.id] for job in started_runs]
    return {"all saved": max(moments["ended"].values()) - submitted, "submit to first step (first run)": min(to_first),
            "placed to first step (median)": statistics.median(placed_to_first),
            "last step to saved (median)": statistics.median(last_to_saved)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--modes", default="inprocess,ray1,ray2")
    parser.add_argument("--node-cpus", type=int, default=1, help="CPUs each simulated worker node advertises")
    args = parser.parse_args()
    from vae.datasets import load_dataset

    load_dataset("mnist5k")  # the in-process runs find it loaded, as on a warm server
    results = {}
    for mode in args.modes.split(","):
        root = Path(tempfile.mkdtemp(prefix=f"bench-cluster-{mode}-"))
        if mode == "inprocess":
            results[mode] = measure(JobManager(), args.runs, args.epochs, root)
        else:
            import ray
            from ray.cluster_utils import Cluster

            from vae.executors.ray_cluster import RayExecutor

            cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False,
                                                                    "object_store_memory": 100 * 2**20})
            for _ in range(int(mode.removeprefix("ray"))):
                cluster.add_node(num_cpus=args.node_cpus, object_store_memory=100 * 2**20)
            ray.init(address=cluster.address, log_to_driver=False)
            try:
                results[mode] = measure(JobManager(executor=RayExecutor(None, num_cpus=1)), args.runs, args.epochs, root)
            finally:
                ray.shutdown()
                cluster.shutdown()
        print(mode, {key: round(value, 2) for key, value in results[mode].items()}, flush=True)
    print(f"\n{args.runs} runs of mnist5k, {args.epochs} epochs, MLP z=2, submitted at once (seconds)")
    keys = list(next(iter(results.values())))
    print("| executor | " + " | ".join(keys) + " |")
    print("| --- " * (len(keys) + 1) + "|")
    for mode, figures in results.items():
        print(f"| {mode} | " + " | ".join(f"{figures[key]:.1f}" for key in keys) + " |")


if __name__ == "__main__":
    main()
