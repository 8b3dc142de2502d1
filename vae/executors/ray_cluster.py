"""The cluster executor: each run is a Ray actor (vae.executors.ray_actor) on a node with room for it.

Chosen by the operator (`vae.settings`: ray_address `auto` or `ray://HOST:10001`, and the
resources each run asks for, ray_num_cpus / ray_num_gpus); Ray is imported here only, when the
first run is handed over, so a server without Ray never needs it. The job records, owners, limits,
pages and training loop are those of the in-process executor; only where `vae.train.train` runs changes.

- Several runs train at once, as many as the cluster's resources allow: every run is handed to
  Ray at once and waits in Ray's pending state until a node has its CPUs/GPUs; the queue
  position a student sees counts the runs handed over before it that Ray has not started yet.
- The server polls each actor a few times a second for its events (steps, epochs, previews)
  and each completed epoch's weights (small VAEs: a few MB), so a worker node that dies mid-run
  leaves the run interrupted with its last complete epoch saved here, by the one atomic save
  (`vae.checkpoints.save_checkpoint`). Resent, not restarted: the server keeps the results, no
  shared filesystem is needed, and a run restarted elsewhere would need its optimizer state and
  would silently spend more of the class's compute than its owner asked for.
- Stop works in every phase: a pending or loading run (or one with no complete epoch) is
  killed at once; a training one ends after its current step and its last complete epoch is saved.
- Actors are named (`latent-lab-run-<job id>`) and detached in the namespace `latent-lab`, and
  the name is kept in the job store: a server that restarts reattaches to the runs still alive.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from vae.executors.in_process import _load_unless_stopped, save_outcome
from vae.job_state import ERROR, FINISHED, INTERRUPTED, NAN, QUEUED, RUNNING, STOPPED, Job
from vae.models import ModelConfig, build_model
from vae.train import TrainResult

log = logging.getLogger(__name__)

NAMESPACE = "latent-lab"
POLL_SECONDS = 0.25  # how often the server asks each actor for news
STOP_GRACE_SECONDS = 30.0  # a stopped run that has not ended by then is killed (its last complete epoch is kept)
RAY_PIN = "ray[client]==2.60.0"


class ClusterError(RuntimeError):
    """The cluster cannot be used (Ray missing, the head unreachable); the message says what to do."""


@dataclass(frozen=True)
class DatasetFacts:
    """What a checkpoint records of the data set a worker loaded (vae.train.checkpoint_story reads these)."""

    name: str
    image_shape: tuple
    train_size: int
    test_size: int
    label_names: list | None = None
    notes: str = ""
    device: str = "cpu"
    node: str = ""

    @property
    def train_images(self) -> range:  # only its length is recorded
        return range(self.train_size)

    @property
    def test_images(self) -> range:
        return range(self.test_size)


def actor_name(job_id: str) -> str:
    return f"latent-lab-run-{job_id}"


class RayExecutor:
    """Runs each job as a detached Ray actor asking for `num_cpus` CPUs and `num_gpus` GPUs (fractions allowed).

    address: `auto`, `ray://HOST:PORT` or None to use the Ray this process already initialised (tests);
    max_runs: runs handed to the cluster at once (pending or training), the manager's `slots`.
    """

    survives_restart = True  # the manager only detaches on shutdown: runs go on on the cluster
    queue_note = "waiting for room on the cluster"
    handover = {"status": QUEUED, "message": "Waiting for room on the cluster.", "position": 1}

    def __init__(self, address: str | None = "auto", num_cpus: float = 1.0, num_gpus: float = 0.0, max_runs: int = 64):
        self.address, self.num_cpus, self.num_gpus, self.slots = address, num_cpus, num_gpus, max_runs
        self._lock = threading.Lock()
        self._ray = None
        self._actor_class = None
        self._pending: list[Job] = []  # handed over, not started by Ray yet, in order
        self._detached = threading.Event()

    # ---- connection

    def connect(self):
        """The `ray` module, connected to the cluster (once). Raises ClusterError with what to do."""
        with self._lock:
            if self._ray is not None:
                return self._ray
            try:
                import ray
            except ImportError:
                raise ClusterError(f"This server is set to train on a Ray cluster (LATENT_LAB_RAY_ADDRESS), but Ray is "
                                   f"not installed here: pip install '{RAY_PIN}' "
                                   "(see docs/serving.md, On a cluster).") from None
            if not ray.is_initialized():
                import vae

                try:
                    # The app's code travels with the connection, so workers need only its requirements.
                    ray.init(address=self.address, namespace=NAMESPACE, log_to_driver=False,
                             runtime_env={"py_modules": [str(Path(vae.__file__).parent)]})
                except Exception as error:
                    raise ClusterError(f"The Ray cluster at {self.address} cannot be reached ({type(error).__name__}: "
                                       f"{error}). Start it (docs/serving.md, On a cluster) or unset "
                                       "LATENT_LAB_RAY_ADDRESS.") from None
            from vae.executors.ray_actor import RunActor

            self._actor_class = ray.remote(RunActor)
            self._warn_if_no_node_fits(ray)
            self._ray = ray
            return ray

    def _warn_if_no_node_fits(self, ray) -> None:
        # A run no node can hold waits in Ray's pending state for ever: say so in the server's log.
        try:
            nodes = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]
        except Exception:
            return
        if not any(node.get("CPU", 0) >= self.num_cpus and node.get("GPU", 0) >= self.num_gpus for node in nodes):
            log.error("No node of the Ray cluster has %g CPUs and %g GPUs for one run (LATENT_LAB_RAY_NUM_CPUS / "
                      "LATENT_LAB_RAY_NUM_GPUS): runs wait until such a node joins.", self.num_cpus, self.num_gpus)

    def alive(self, name: str) -> bool:
        """Whether the actor `name` still exists on the cluster (pending or training)."""
        ray = self.connect()
        try:
            ray.get_actor(name, namespace=NAMESPACE)
            return True
        except ValueError:
            return False

    def detach(self) -> None:
        """Stop following runs (the server is shutting down); they go on training on the cluster."""
        self._detached.set()

    # ---- one run

    def execute(self, job: Job) -> None:
        """Run `job` on the cluster (or follow it again after a restart) until it ends, is stopped or the
        server detaches."""
        try:
            ray = self.connect()
        except ClusterError as error:
            job._update(status=ERROR, message=str(error))
            return
        with self._lock:
            self._pending.append(job)
        self._reposition()
        try:
            actor = self._reattach(ray, job) if job.actor else self._start(ray, job)
            if actor is not None:
                self._follow(ray, job, actor)
        finally:
            with self._lock:
                if job in self._pending:
                    self._pending.remove(job)
            self._reposition()

    def _start(self, ray, job: Job):
        dataset = job.given_dataset
        if dataset is None and job.train_config.dataset.startswith("upload:"):
            # A student's upload lives on this server: it travels to the worker through the object store.
            dataset = _load_unless_stopped(job)
            if dataset is None:
                job._update(status=STOPPED, message="Stopped while loading the data set; nothing was trained or saved.")
                return None
        name = actor_name(job.id)
        actor = self._actor_class.options(
            name=name, namespace=NAMESPACE, lifetime="detached", max_restarts=0, max_concurrency=4,
            num_cpus=self.num_cpus, num_gpus=self.num_gpus,
        ).remote(job.model, job.train_config.to_dict(), ray.put(dataset) if dataset is not None else None,
                 max(1, int(self.num_cpus)))
        job.actor = name
        if job.store is not None:
            job._persist({"extra": {"max_images": job.max_images, "max_seconds": job.max_seconds,
                                    "group": job.group, "ray_actor": name}})
        return actor

    def _reattach(self, ray, job: Job):
        try:
            actor = ray.get_actor(job.actor, namespace=NAMESPACE)
        except ValueError:
            job._update(status=INTERRUPTED, message="The server restarted and this run was no longer on the cluster; "
                                                    "nothing of it was kept.")
            return None
        with job._changed:  # the actor replays the run's events from the start
            job._history, job._step_trace = [], []
        return actor

    def _follow(self, ray, job: Job, actor) -> None:
        since, epochs, weights, facts = 0, 0, None, None
        reattached = job.view().started is not None
        stop_asked: float | None = None
        started = time.time()
        reply = actor.poll.remote(since, epochs)
        while not self._detached.is_set():
            ready, _ = ray.wait([reply], timeout=POLL_SECONDS)
            if job.stop_event.is_set():
                if not epochs:  # pending, loading or in its first epoch: nothing to keep, so end it now
                    waited = job in self._pending
                    self._kill(ray, actor)
                    if waited:
                        message = "Stopped before it started; nothing was trained or saved."
                    elif facts is None:
                        message = "Stopped while loading the data set; nothing was trained or saved."
                    else:
                        message = f"{self._stopped_message(job, 0)} No epoch completed, so nothing was saved."
                    job._update(status=STOPPED, position=0, message=message)
                    return
                if stop_asked is None:
                    stop_asked = time.monotonic()
                    actor.stop.remote()
                elif time.monotonic() - stop_asked > STOP_GRACE_SECONDS:
                    self._kill(ray, actor)
                    self._save(job, STOPPED, self._stopped_message(job, epochs), facts, weights, epochs, started)
                    return
            if not ready:
                continue
            try:
                answer = ray.get(reply)
            except (ray.exceptions.RayError, ConnectionError) as error:
                if job in self._pending:  # Ray could not start it (a worker that cannot import the app, say)
                    job._update(status=ERROR, position=0, message="The cluster could not start this run: "
                                f"{type(error).__name__}: "
                                f"{str(error).strip().splitlines()[0] if str(error).strip() else ''}")
                    return
                # Its node died (or the head went away): the last complete epoch we hold is saved here.
                where = "cluster node training this run" if isinstance(error,
                                                                       ray.exceptions.RayActorError) else "cluster"
                message = f"The {where} stopped during epoch {epochs + 1}, so this run was interrupted."
                self._save(job, INTERRUPTED, message, facts, weights, epochs, started)
                return
            if job in self._pending:  # Ray has started it
                with self._lock:
                    self._pending.remove(job)
                self._reposition()
                first_started = job.view().started
                job._update(status=RUNNING, message="Loading the data set on the cluster…", position=0)
                if reattached and first_started is not None:
                    job._update(started=first_started)
            for _, event in answer["events"]:
                job._record(event)
            since = answer["seq"]
            if answer["weights"] is not None:
                weights, epochs = answer["weights"], answer["epochs"]
            if facts is None and answer["facts"] is not None:
                facts = DatasetFacts(**{**answer["facts"], "image_shape": tuple(answer["facts"]["image_shape"])})
                if not self._admit(job, facts):
                    self._kill(ray, actor)
                    return
            if answer["outcome"] is not None:
                self._kill(ray, actor)
                self._finish(job, answer["outcome"], facts, weights, epochs)
                return
            reply = actor.poll.remote(since, epochs)

    def _admit(self, job: Job, facts: DatasetFacts) -> bool:
        """Check the run's budget now that its data set's size is known, and say where it trains."""
        if not job.admit(facts.train_size):
            return False
        notes = f" {facts.notes}" if facts.notes else ""
        job._update(message=f"Training on {facts.device} on cluster node '{facts.node}'.{notes}", device=facts.device)
        return True

    def _finish(self, job: Job, outcome: dict, facts: DatasetFacts | None, weights, epochs: int) -> None:
        if "error" in outcome:
            job._update(status=ERROR, message=outcome["error"])
            return
        status = {"finished": FINISHED, "stopped": STOPPED, "nan": NAN}[outcome["status"]]
        message = outcome["message"]
        if status == STOPPED and job.hit_time_limit:
            message = self._stopped_message(job, epochs)
        history = outcome["history"][:epochs]
        self._save(job, status, message, facts, weights, len(history), None, outcome["seconds"],
                   outcome["device"], history)

    def _save(self, job: Job, status: str, message: str, facts: DatasetFacts | None, weights, epochs: int,
              started: float | None, seconds: float | None = None, device: str | None = None,
              history: list | None = None) -> None:
        history = list(job.view().history[:epochs]) if history is None else history
        model = None
        if weights is not None and facts is not None and history:
            model_config = ModelConfig(**job.model, image_shape=facts.image_shape)
            model = build_model(model_config, "cpu")
            model.load_state_dict(weights)
            model.eval()
        else:
            history, model_config = [], None
        result = TrainResult(model, history, "stopped" if status == INTERRUPTED else status, message,
                             device=device or (facts.device if facts else "cpu"),
                             seconds=seconds if seconds is not None else time.time() - (started or time.time()))
        notes = f" {facts.notes}" if facts is not None and facts.notes else ""
        save_outcome(job, status, result, model_config, facts, notes)

    def _stopped_message(self, job: Job, epochs: int) -> str:
        if job.hit_time_limit:
            return job.time_limit_message(epochs)
        return f"Stopped during epoch {epochs + 1}; kept the {epochs} complete epoch(s)."

    def _kill(self, ray, actor) -> None:
        try:
            ray.kill(actor, no_restart=True)
        except Exception:  # already gone with its node
            log.debug("actor already gone", exc_info=True)

    def _reposition(self) -> None:
        # Position = runs handed to Ray before this one that Ray has not started either, plus this one.
        with self._lock:
            pending = list(self._pending)
        for index, job in enumerate(pending):
            job._update(position=index + 1)
