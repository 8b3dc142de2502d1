"""Background training jobs: the app starts a run, polls it once a second, and may stop it.

`JobManager` keeps the queue and the records (vae.jobstore) of every run of the process and hands
each run, when its turn comes, to an executor (vae.executors): by default one worker thread of
this process at a time (two runs sharing a 2-core CPU would each go at half speed), or a Ray
cluster the operator points the app at (`vae.settings`: ray_address), where several train at
once. Either runs the one training loop, `vae.train.train`, and writes its events into a `Job`
(vae.job_state) that any number of sessions read through `Job.view()`, a frozen snapshot.
Nothing here imports Streamlit, nor Ray: only the Ray executor does, and only when chosen.

When a run ends it is saved with `vae.checkpoints.save_checkpoint` under its root: finished,
stopped (the last complete epoch) or refused for NaN (the last good epoch), whenever at least one
epoch completed. Every failure becomes the job's message, meant for the user.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import math
import os
import secrets
import sys
import threading
from collections import deque
from pathlib import Path

from vae.checkpoints import CheckpointExistsError, checkpoint_path, default_root, refuse_shipped_name, validate_name
from vae.datasets import Dataset
from vae.executors.in_process import InProcessExecutor, run_job  # noqa: F401  (run_job: re-exported)
from vae.job_state import (DONE, ERROR, FINISHED, INTERRUPTED, NAN, QUEUE_NOTE, QUEUED, RUNNING, STOPPED,  # noqa: F401
                           TRAIN_SIZES, Job, JobPermissionError, JobView, over_budget_message)
from vae.jobstore import JobRecord, JobStore
from vae.train import TrainConfig, TrainConfigError

log = logging.getLogger(__name__)




class JobManager:
    """The queue of training jobs of one process, shared by every session; one run at a time.

    store: where job records live (default: in memory, gone with the process); a SQLite file
    (`vae.jobstore.JobStore(path)`) keeps them across restarts: finished runs stay listed, a
    queued run is queued again and one the server lost mid-run is shown as interrupted.
    executor: where runs execute (vae.executors; default InProcessExecutor). One that
    `survives_restart` (Ray) keeps training while the server is down: a run whose actor is still
    alive (`executor.alive(name)`) is reattached on restart instead of being marked interrupted.
    """

    def __init__(self, start: bool = True, store: JobStore | None = None, executor=None):
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._jobs: dict[str, Job] = {}
        self._queue: deque[Job] = deque()
        self._running: set[Job] = set()
        self._workers: list[threading.Thread] = []
        self._closing = False
        self.store = store if store is not None else JobStore()
        self.executor = executor or InProcessExecutor()
        self._restore()
        if start:
            self.start()

    def _restore(self) -> None:
        reattach = []
        for record in self.store.records():
            try:
                train_config = TrainConfig(**record.train)
            except (TrainConfigError, TypeError) as error:
                # A row written by an older version, or by a script, whose settings the bounds now refuse:
                # leave that one run out rather than keep the whole server from starting.
                log.warning("run %s (%s) is left out: its stored settings no longer pass: %s", record.id,
                            record.name, error)
                continue
            job = Job(record.id, record.name, Path(record.root), record.model, train_config, record.overwrite,
                      owner=record.owner, owner_name=record.owner_name, role=record.role,
                      max_images=record.extra.get("max_images"), max_seconds=record.extra.get("max_seconds"),
                      store=self.store, group=record.extra.get("group"))
            job.created, job._history, job._message = record.created, list(record.history), record.message
            job._started, job._ended = record.started, record.ended
            job._checkpoint = Path(record.checkpoint) if record.checkpoint else None
            job._status, job.queue_note = record.status, self._queue_note()
            job.actor = record.extra.get("ray_actor")
            self._jobs[job.id] = job
            if record.status in (QUEUED, RUNNING) and job.actor and self._alive(job.actor):
                reattach.append(job)  # still on the cluster: the executor picks it up where it is
            elif record.status == QUEUED:
                self._queue.append(job)
            elif record.status == RUNNING:  # the process died mid-run (a kill, a power cut): it cannot be resumed
                saved = job._checkpoint is not None and (job._checkpoint / "config.json").exists()
                job._update(status=INTERRUPTED, message="The server stopped while this run was training" +
                            ("." if saved else "; it had not been saved, so nothing of it was kept."))
        self._queue.extendleft(reversed(reattach))
        self._renumber()

    def _queue_note(self) -> str:
        return getattr(self.executor, "queue_note", QUEUE_NOTE)

    def _alive(self, actor: str) -> bool:
        alive = getattr(self.executor, "alive", None)
        try:
            return bool(alive and alive(actor))
        except Exception:  # the cluster cannot be reached: the run is reported as interrupted
            log.exception("could not look for run %s on the cluster", actor)
            return False

    def start(self) -> None:
        """Start the worker threads (done by the constructor unless start=False)."""
        with self._lock:
            while len(self._workers) < self.executor.slots:
                worker = threading.Thread(target=self._work, name="latent-lab-training", daemon=True)
                self._workers.append(worker)
                worker.start()

    def submit(self, name: str, model: dict, train_config: TrainConfig, *, root: str | Path | None = None,
               overwrite: bool = False, dataset: Dataset | None = None, owner: str | None = None, owner_name: str = "",
               teacher: bool = False, limits=None, group: str | None = None) -> Job:
        """Queue a run that will be saved as checkpoint `name` under root (default_root()).

        model: ModelConfig settings except image_shape (arch, latent_dim, likelihood, ...).
        Raises CheckpointError for a bad name, CheckpointExistsError when the name is taken (by a
        folder, unless overwrite, or by another queued or running job). `dataset` skips loading
        train_config.dataset by name (for callers already holding one). `group` names the sweep the
        run belongs to (vae.sweeps), so pages can show and stop its runs together.
        owner (a session), teacher and limits (`vae.settings.Settings`) apply the class server's
        rules (see vae.serving): JobPermissionError when replacing a model that is not the owner's,
        JobLimitError when over a limit. Without an owner, as from scripts, none apply.
        """
        from vae import serving  # the class server's rules; they read this manager's records

        validate_name(name)
        root = Path(root) if root is not None else default_root()
        folder = checkpoint_path(root, name)
        refuse_shipped_name(root, name)
        if folder.exists() and not overwrite:
            raise CheckpointExistsError(f"A checkpoint named '{name}' already exists; "
                                        "choose another name or confirm overwriting it.")
        with self._lock:
            for other in self._jobs.values():
                if other.name == name and other.root == root and other.status not in DONE:
                    raise CheckpointExistsError(f"A run that will save as '{name}' is already "
                                                "queued or running; choose another name.")
            known = TRAIN_SIZES.get(train_config.dataset)  # refused at once when the size is known from an earlier run
            if owner is not None and not teacher and limits is not None and known is not None and \
                    (refusal := over_budget_message(train_config.epochs, known, limits.max_images_per_run)):
                raise serving.JobLimitError(refusal)
            if owner is not None:
                serving.check_submission(list(self._jobs.values()), root, name, owner, teacher,
                                         overwrite and folder.exists(), limits, group=group)
            job = Job(secrets.token_urlsafe(12), name, root, model, train_config, overwrite, dataset,
                      owner=owner, owner_name=owner_name, role="teacher" if teacher else "student",
                      max_images=None if limits is None or teacher else limits.max_images_per_run,
                      max_seconds=None if limits is None or teacher else limits.max_run_seconds, store=self.store,
                      group=group)
            job.queue_note = self._queue_note()
            self.store.add(JobRecord(job.id, name, str(root), job.model, train_config.to_dict(), QUEUED, job.created,
                                     owner=owner, owner_name=owner_name, role=job.role, overwrite=overwrite,
                                     message=job._message,
                                     extra={"max_images": job.max_images, "max_seconds": job.max_seconds,
                                            "group": group}))
            self._jobs[job.id] = job
            self._queue.append(job)
            self._renumber()
            self._wake.notify_all()
        return job

    def suggest_name(self, prefix: str, root: str | Path | None = None) -> str:
        """The first free checkpoint name `prefix-1`, `prefix-2`, ... (no folder, no pending job)."""
        root = Path(root) if root is not None else default_root()
        with self._lock:
            taken = {job.name for job in self._jobs.values() if job.root == root and job.status not in DONE}
        for number in itertools.count(1):
            name = f"{prefix}-{number}"
            if name not in taken and not (root / name).exists():
                return name
        raise AssertionError("unreachable")

    def get(self, job_id: str | None) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id) if job_id else None

    def jobs(self) -> list[Job]:
        """Every job of this process, newest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda job: job.created, reverse=True)

    def stop(self, job_id: str, by: str | None = None, teacher: bool = False) -> None:
        """Stop a running job after its current step, or take a queued one off the queue.

        by: the session asking; raises JobPermissionError unless it owns the job or teacher is True.
        Without `by` (scripts, shutdown) any job may be stopped.
        """
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return
            if by is not None and not teacher and job.owner != by:
                raise JobPermissionError("Only the person who started this run, or the teacher, can stop it.")
            job.stop()
            if job in self._queue:
                self._queue.remove(job)
                job._update(status=STOPPED, message="Stopped before it started; nothing was trained or saved.",
                            position=0)
                self._renumber()

    def shutdown(self, timeout: float | None = 120.0) -> None:
        """Stop every running job, save each one's last complete epoch, and let no queued job start.

        Queued jobs stay queued in the store, to run after a restart. Called at interpreter exit
        (Streamlit turns SIGINT and SIGTERM into a normal exit), so a stopped server loses no epoch.
        An executor that `survives_restart` (Ray) is only detached: its runs go on training on the
        cluster and the next server reattaches to them.
        """
        with self._lock:
            self._closing = True
            if getattr(self.executor, "survives_restart", False):
                self.executor.detach()
                self._wake.notify_all()
                return
            running = list(self._running)
            for job in running:
                job.interrupted = True
                job.stop()
            self._wake.notify_all()
        for job in running:
            job.wait(timeout)

    def _renumber(self) -> None:
        # Called with the lock held: position = runs that will finish before this one starts.
        ahead = len(self._running)
        for index, job in enumerate(self._queue):
            job._update(position=ahead + index)

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._queue or self._closing:
                    self._wake.wait()
                job = self._queue.popleft()
                self._running.add(job)
                job._update(**getattr(self.executor, "handover", InProcessExecutor.handover))
                self._renumber()
            try:
                self.executor.execute(job)
            except Exception as error:  # the worker must outlive any one run
                log.exception("training job %s failed", job.id)
                job._update(status=ERROR, message=f"Training failed unexpectedly: {type(error).__name__}: {error}")
            finally:
                with self._lock:
                    self._running.discard(job)
                    self._renumber()



_shared: JobManager | None = None
_shared_lock = threading.Lock()


def shared_manager() -> JobManager:
    """The one JobManager of this process (every session of the app sees the same queue)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            import sqlite3

            from vae.jobstore import store_path

            executor = chosen_executor()
            try:
                _shared = JobManager(store=JobStore(store_path(default_root())), executor=executor)
            # A read-only install, a damaged file: runs still work, for this process.
            except (sqlite3.Error, OSError) as error:
                log.warning("job records kept in memory only: %s cannot be used (%s)",
                            store_path(default_root()), error)
                _shared = JobManager(executor=executor)
            # Streamlit turns SIGINT / SIGTERM into a normal exit. This runs first in that exit, before
            # Python waits for other non-daemon threads (a UMAP compile can take a minute, while the
            # run would go on training), so every run stops, saves its last complete epoch, and the exit is clean.
            # threading's hook when there is one, as concurrent.futures does.
            register = getattr(threading, "_register_atexit", None) or atexit.register
            register(_shutdown_at_exit, _shared)
        return _shared


def chosen_executor(environ=None):
    """The executor the operator chose (`vae.settings`: `[latent_lab]` in .streamlit/secrets.toml
    over the environment, or only `environ` when given): a `RayExecutor` when ray_address is set,
    else the `InProcessExecutor`. A setting that makes no sense is logged and runs train in this
    process (the server still starts)."""
    from vae.settings import SettingsError, load_settings

    try:
        settings = load_settings(_secrets_table() if environ is None else None, environ=environ)
    except SettingsError as error:
        log.error("%s Runs train in this process until it is fixed.", error)
        return InProcessExecutor()
    if settings.ray_address is None:
        return InProcessExecutor()
    from vae.executors.ray_cluster import RayExecutor  # imports nothing of Ray until the first run

    return RayExecutor(settings.ray_address, num_cpus=settings.ray_num_cpus, num_gpus=settings.ray_num_gpus,
                       max_runs=settings.ray_max_runs)


def _secrets_table() -> dict | None:
    # The job manager starts before any page could pass st.secrets in, so read the file Streamlit reads.
    import tomllib

    try:
        table = tomllib.loads((Path.cwd() / ".streamlit" / "secrets.toml").read_text()).get("latent_lab")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    return {key: value for key, value in table.items() if key.startswith("ray_")} if isinstance(table, dict) else None


def _shutdown_at_exit(manager: JobManager) -> None:
    manager.shutdown()
    main = sys.modules.get("__main__")  # Streamlit rewrites sys.argv for the script, so ask which program runs
    serving = getattr(getattr(main, "__spec__", None), "name", "").startswith("streamlit") or \
        os.path.basename(getattr(main, "__file__", "") or "") == "streamlit"
    if serving:
        # The server's work is saved. Ending here, rather than in the interpreter's teardown, keeps
        # C++ destructors from racing daemon threads still in native code (numba compiling UMAP,
        # PyTorch), which aborts the process ("terminate called without an active exception").
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(0)


def progress_text(view: JobView) -> str:
    """One line for the progress bar: epoch, step, speed, time left."""
    if view.status == QUEUED:
        ahead = view.position
        if ahead == 0:
            return "Starting…"
        runs = f"{ahead} run{'s' if ahead != 1 else ''}"
        return f"Queued, position {ahead}: {runs} ahead of this one ({view.queue_note})."
    if view.epoch == 0:
        return view.message
    parts = [f"Epoch {view.epoch}/{view.epochs}", f"step {view.step}/{view.steps_per_epoch}",
             f"{view.images_per_second:,.0f} images/s"]
    if view.seconds_left is not None and not view.done and math.isfinite(view.seconds_left):
        parts.append(f"about {_duration(view.seconds_left)} left")
    return " · ".join(parts)


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"
