"""The Ray executor: runs as actors on a (simulated) cluster; select with `-m ray` or `-k ray`.

One local Ray (2 CPUs) serves the tests that need no cluster; the worker-node test simulates a
head and two worker nodes with `ray.cluster_utils.Cluster`. Both are shut down by their fixtures.
Runs are tiny (the embedded digits set, a small MLP), so the time goes to Ray starting actors.
"""

from __future__ import annotations

import os
import time

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reports from a test run
ray = pytest.importorskip("ray")

from vae import jobs  # noqa: E402
from vae.checkpoints import load_checkpoint  # noqa: E402
from vae.executors.ray_cluster import RayExecutor  # noqa: E402
from vae.jobs import JobManager, progress_text  # noqa: E402
from vae.jobstore import JobStore  # noqa: E402
from vae.train import TrainConfig  # noqa: E402

pytestmark = pytest.mark.ray

SMALL = {"arch": "mlp", "latent_dim": 2, "hidden": (32,)}
WAIT = 240  # seconds; generous: actors start slowly on a shared 2-core machine
RAY_START = {"include_dashboard": False, "object_store_memory": 80 * 2**20, "log_to_driver": False}


def digits(epochs: int) -> TrainConfig:
    return TrainConfig(dataset="digits", epochs=epochs, batch_size=256)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(address="local", num_cpus=2, **RAY_START)
    yield ray
    ray.shutdown()


@pytest.fixture
def manager(local_ray):
    made = []

    def make(store=None):
        made.append(JobManager(store=store, executor=RayExecutor(None, num_cpus=1)))
        return made[-1]

    yield make
    for each in made:  # end what a failed test left on the cluster (a shut-down manager's runs were reattached)
        if each._closing:
            continue
        for job in each.jobs():
            each.stop(job.id)
        for job in each.jobs():
            job.wait(60)


def until(condition, timeout: float = WAIT) -> None:
    """Wait for a state of several runs (a run's own `wait_until` watches one)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the runs never reached the state waited for"
        time.sleep(0.1)


def has_epochs(count: int):
    return lambda view: len(view.history) >= count or view.done


def test_ray_two_runs_train_at_once_and_both_save(manager, tmp_path):
    runs = manager()
    first, second = (runs.submit(name, SMALL, digits(3), root=tmp_path) for name in ("first", "second"))
    views = [job.wait(WAIT) for job in (first, second)]
    assert [view.status for view in views] == [jobs.FINISHED] * 2, [view.message for view in views]
    # At once: each started before the other ended (two actors of one CPU each on two CPUs).
    assert views[0].started < views[1].ended and views[1].started < views[0].ended
    for view in views:
        saved = load_checkpoint(tmp_path / view.name)
        assert [record["epoch"] for record in saved.history] == [1, 2, 3]
        assert saved.config["train"]["status"] == "finished" and saved.dataset_name == "digits"
        assert "cluster node" not in view.message and f"Saved as '{view.name}'" in view.message
        assert view.step_trace and view.preview is not None and len(view.kl_per_dim) == 2


def test_ray_stop_works_while_pending_and_while_training(manager, tmp_path):
    runs = manager()
    started = [runs.submit(name, SMALL, digits(400), root=tmp_path) for name in ("a", "b", "c")]
    # Two CPUs: two runs train, Ray keeps the third pending (which one is Ray's choice).
    until(lambda: sorted(job.view().status for job in started) == [jobs.QUEUED, jobs.RUNNING, jobs.RUNNING]
          and all(len(job.view().history) >= 1 for job in started if job.view().status == jobs.RUNNING))
    pending = [job for job in started if job.view().status == jobs.QUEUED]
    training = [job for job in started if job.view().status == jobs.RUNNING]
    assert len(pending) == 1 and len(training) == 2
    queued = pending[0].view()
    assert queued.position == 1 and "waiting for room on the cluster" in progress_text(queued)

    runs.stop(pending[0].id)
    stopped = pending[0].wait(WAIT)
    assert stopped.status == jobs.STOPPED and "before it started" in stopped.message
    assert not (tmp_path / stopped.name).exists()

    for job in training:
        runs.stop(job.id)
    for job in training:
        view = job.wait(WAIT)
        assert view.status == jobs.STOPPED, view.message
        saved = load_checkpoint(tmp_path / view.name)
        assert len(saved.history) == len(view.history) >= 1 and saved.config["train"]["status"] == "stopped"


def test_ray_an_uploaded_set_travels_to_the_worker_through_the_object_store(manager, tmp_path, monkeypatch):
    import io

    from PIL import Image

    from vae.datasets import registry
    from vae.student_data import store_upload

    def png(shade: int) -> bytes:
        buffer = io.BytesIO()
        Image.new("L", (28, 28), shade).save(buffer, format="PNG")
        return buffer.getvalue()

    # The worker processes started before this folder was named: they could not read the upload by name.
    monkeypatch.setenv("LATENT_LAB_UPLOADS", str(tmp_path / "uploads"))
    registry._load_cached.cache_clear()
    pictures = store_upload([(f"pets/{label}/{i}.png", png(40 * i + (120 if label == "dogs" else 0)))
                             for label in ("cats", "dogs") for i in range(3)], "pets")
    job = manager().submit("pets", SMALL, TrainConfig(dataset=pictures.dataset_name(), epochs=1, batch_size=4),
                           root=tmp_path / "models")
    view = job.wait(WAIT)
    registry._load_cached.cache_clear()
    assert view.status == jobs.FINISHED, view.message
    assert load_checkpoint(tmp_path / "models" / "pets").dataset_name == pictures.dataset_name()


def test_ray_a_server_folder_missing_on_a_node_is_a_clear_message_naming_no_path(tmp_path):
    from vae.executors.ray_actor import folder_missing_message

    assert folder_missing_message("digits") is None and folder_missing_message(f"folder:{tmp_path}") is None
    message = folder_missing_message(f"folder:{tmp_path / 'exam-answers'}?size=28")
    assert "not on the cluster node" in message and "same path" in message and "exam-answers" not in message


def test_ray_a_restarted_server_reattaches_to_its_runs_and_saves_them(manager, tmp_path):
    path = tmp_path / "jobs.sqlite3"
    before = manager(JobStore(path))
    job = before.submit("long", SMALL, digits(40), root=tmp_path / "models")
    assert job.wait_until(has_epochs(1), WAIT).status == jobs.RUNNING
    before.shutdown()  # the server stops: the run goes on on the cluster
    assert not job.view().done

    after = manager(JobStore(path))  # the restarted server, on the same job store
    again = after.get(job.id)
    view = again.wait(WAIT)
    assert view.status == jobs.FINISHED, view.message
    saved = load_checkpoint(tmp_path / "models" / "long")
    assert [record["epoch"] for record in saved.history] == list(range(1, 41))
    assert [record["epoch"] for record in view.history] == list(range(1, 41))
    assert JobStore(path).records()[0].status == jobs.FINISHED


def test_ray_an_unreachable_cluster_is_a_clear_message_on_the_run(tmp_path, monkeypatch):
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **_: (_ for _ in ()).throw(ConnectionError("no head at 10.0.0.9:10001")))
    runs = JobManager(executor=RayExecutor("ray://10.0.0.9:10001"))
    view = runs.submit("nowhere", SMALL, digits(1), root=tmp_path).wait(WAIT)
    assert view.status == jobs.ERROR and "cannot be reached" in view.message and "LATENT_LAB_RAY_ADDRESS" in view.message


def test_ray_the_executor_is_chosen_by_the_operator_and_in_process_needs_no_ray():
    from vae.executors.in_process import InProcessExecutor

    assert isinstance(jobs.chosen_executor({}), InProcessExecutor)
    chosen = jobs.chosen_executor({"LATENT_LAB_RAY_ADDRESS": "ray://head:10001", "LATENT_LAB_RAY_NUM_GPUS": "0.25"})
    assert isinstance(chosen, RayExecutor) and chosen.num_gpus == 0.25 and chosen.num_cpus == 1.0
    # A setting that makes no sense is logged and the server still starts, training in-process.
    assert isinstance(jobs.chosen_executor({"LATENT_LAB_RAY_ADDRESS": "head"}), InProcessExecutor)


@pytest.fixture
def cluster(tmp_path):
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    simulated = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, **{k: v for k, v in RAY_START.items()
                                                                                    if k != "log_to_driver"}})
    workers = [simulated.add_node(num_cpus=1, object_store_memory=80 * 2**20) for _ in range(2)]
    ray.init(address=simulated.address, log_to_driver=False)
    yield simulated, workers
    ray.shutdown()
    simulated.shutdown()


def test_ray_a_worker_node_that_dies_leaves_the_run_interrupted_with_its_last_epoch_saved(cluster, tmp_path):
    simulated, workers = cluster
    runs = JobManager(executor=RayExecutor(None, num_cpus=1))
    started = [runs.submit(name, SMALL, digits(400), root=tmp_path) for name in ("left", "right")]
    for job in started:  # one run per worker node (each has one CPU)
        assert job.wait_until(has_epochs(1), WAIT).status == jobs.RUNNING
    simulated.remove_node(workers[0])
    until(lambda: any(job.view().done for job in started))
    lost = next(job for job in started if job.view().done)
    view = lost.wait(WAIT)
    assert view.status == jobs.INTERRUPTED and "cluster node" in view.message, view.message
    saved = load_checkpoint(tmp_path / view.name)
    assert len(saved.history) >= 1 and [record["epoch"] for record in saved.history] == \
        [record["epoch"] for record in view.history[:len(saved.history)]]
    other = next(job for job in started if job is not lost)
    runs.stop(other.id)
    assert other.wait(WAIT).status == jobs.STOPPED
