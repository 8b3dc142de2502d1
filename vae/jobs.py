"""Background training jobs: the app starts a run, polls it once a second, and may stop it.

One worker thread per process takes jobs from a queue, one at a time (two runs sharing a
2-core CPU would each go at half speed and mix up nothing but their timings), and runs the one
training loop, `vae.train.train`. Its events land in a `Job`: a plain object behind a lock that
any number of sessions read through `Job.view()`, a frozen snapshot. Nothing here imports
Streamlit and the worker never calls it; the page reads the snapshot and draws.

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
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from vae.checkpoints import CheckpointError, CheckpointExistsError, checkpoint_path, default_root, refuse_shipped_name, save_checkpoint, validate_name
from vae.datasets import DataError, Dataset, load_dataset
from vae.devices import DeviceError, resolve_device
from vae.downloads import stopped_by
from vae.history import EpochRecord, last_kl_per_dim, read_history
from vae.jobstore import JobRecord, JobStore
from vae.models import ModelConfig, ModelConfigError
from vae.train import EpochEvent, StepEvent, TrainConfig, TrainEvent, TrainResult, checkpoint_story, train

log = logging.getLogger(__name__)

QUEUED, RUNNING, FINISHED, STOPPED, NAN, ERROR = "queued", "running", "finished", "stopped", "nan", "error"
INTERRUPTED = "interrupted"  # the server stopped (or died) while it ran
DONE = (FINISHED, STOPPED, NAN, ERROR, INTERRUPTED)
_STORED = ("status", "message", "checkpoint", "started", "ended")  # what the job store keeps of a job's state


_TRAIN_SIZES: dict[str, int] = {}  # training images per data set name, learnt as runs load them


def over_budget_message(epochs: int, train_size: int, max_images: int) -> str | None:
    """Why a run of `epochs` over `train_size` images is over the per-run budget, or None when it fits."""
    if epochs * train_size <= max_images:
        return None
    most = max(1, max_images // max(1, train_size))
    return (f"{epochs} epochs of {train_size:,} images is more than this server allows for one run "
            f"({max_images:,} images in all): choose at most {most} epochs.")


class JobPermissionError(PermissionError):
    """Someone asked to change a run that is not theirs; the message is meant for them."""
MAX_STEP_POINTS = 2000  # the per-step loss trace is thinned to stay about this long
STOP_POLL_SECONDS = 0.1  # how often a run that is loading its data set looks at its stop event


@dataclass(frozen=True)
class JobView:
    """A consistent copy of a job's state at one moment, safe to read anywhere."""

    id: str
    name: str  # the checkpoint it will be saved as
    dataset: str
    model: dict  # ModelConfig settings except the image shape, which the data set decides
    train: dict  # TrainConfig.to_dict()
    status: str
    message: str
    position: int  # runs ahead of this one in the queue (0 when running or done)
    epoch: int  # the epoch in progress (1-based; 0 before the first step)
    epochs: int
    step: int
    steps_per_epoch: int
    images_per_second: float
    elapsed_seconds: float
    seconds_left: float | None
    last_step: dict | None  # {"recon", "kl", "total"} of the latest batch, per image in nats
    history: list[dict]  # one vae.train history record per complete epoch
    step_trace: list[dict]  # {"epoch": fractional epoch, "recon", "kl", "total"} per (thinned) step
    preview: torch.Tensor | None  # (2 * n, C, H, W): fixed test images, then their current reconstructions
    kl_per_dim: list[float] | None  # per latent dimension, test set, last complete epoch
    device: str | None
    checkpoint: Path | None  # the saved folder, once saved
    created: float  # time.time() at submission
    started: float | None  # time.time() when the worker took it
    ended: float | None  # time.time() when it reached its final status
    group: str | None = None  # the sweep this run belongs to (vae.sweeps), None for a single run
    owner: str | None = None  # the session that started it (None: a script)
    owner_name: str = ""  # the display name its owner gave, as typed (show it with vae.text.plain)
    role: str = "student"

    @property
    def done(self) -> bool:
        return self.status in DONE

    @property
    def fraction(self) -> float:
        """How much of the run is done, 0..1 (complete epochs plus the current one's steps)."""
        if self.status == FINISHED:
            return 1.0
        if not self.steps_per_epoch or not self.epochs:
            return 0.0
        done_steps = len(self.history) * self.steps_per_epoch + (self.step if self.epoch > len(self.history) else 0)
        return min(1.0, done_steps / (self.epochs * self.steps_per_epoch))


class Job:
    """One training run: its settings, and the state the worker writes while it runs."""

    def __init__(self, job_id: str, name: str, root: Path, model: dict, train_config: TrainConfig,
                 overwrite: bool, dataset: Dataset | None = None, *, owner: str | None = None, owner_name: str = "",
                 role: str = "student", max_images: int | None = None, max_seconds: float | None = None,
                 store: JobStore | None = None, group: str | None = None):
        self.id = job_id
        self.group = group  # the sweep this run belongs to (vae.sweeps), None for a single run
        self.owner, self.owner_name, self.role = owner, owner_name, role
        self.max_images, self.max_seconds = max_images, max_seconds  # this run's compute budget (None: no limit)
        self.store = store
        self.hit_time_limit = False  # set when the wall-clock budget stopped it
        self.interrupted = False  # set when the server stops it on shutdown
        self.name = name
        self.root = root
        self.model = dict(model)
        self.train_config = train_config
        self.overwrite = overwrite
        self.given_dataset = dataset
        self.stop_event = threading.Event()
        self.created = time.time()
        self._changed = threading.Condition()
        self._status = QUEUED
        self._message = "Waiting for its turn."
        self._position = 0
        self._epoch = self._step = self._steps_per_epoch = 0
        self._images_per_second = 0.0
        self._elapsed = 0.0
        self._seconds_left: float | None = None
        self._last_step: dict | None = None
        self._history: list[dict] = []
        self._step_trace: list[dict] = []
        self._preview: torch.Tensor | None = None
        self._kl_per_dim: list[float] | None = None
        self._device: str | None = None
        self._checkpoint: Path | None = None
        self._started: float | None = None
        self._ended: float | None = None

    def view(self) -> JobView:
        """A snapshot of the job, taken under its lock."""
        with self._changed:
            return JobView(
                id=self.id, name=self.name, dataset=self.train_config.dataset, model=dict(self.model),
                train=self.train_config.to_dict(), status=self._status, message=self._message, position=self._position,
                epoch=self._epoch, epochs=self.train_config.epochs, step=self._step, steps_per_epoch=self._steps_per_epoch,
                images_per_second=self._images_per_second, elapsed_seconds=self._elapsed, seconds_left=self._seconds_left,
                last_step=dict(self._last_step) if self._last_step else None, history=list(self._history),
                step_trace=list(self._step_trace), preview=self._preview,
                kl_per_dim=list(self._kl_per_dim) if self._kl_per_dim else None, device=self._device,
                checkpoint=self._checkpoint, created=self.created, started=self._started, ended=self._ended,
                owner=self.owner, owner_name=self.owner_name, role=self.role, group=self.group,
            )

    @property
    def status(self) -> str:
        with self._changed:
            return self._status

    def stop(self) -> None:
        """Ask the run to end after its current step; it keeps (and saves) the last complete epoch."""
        self.stop_event.set()

    def wait_until(self, condition: Callable[[JobView], bool], timeout: float | None = None) -> JobView:
        """Block until `condition(view)` holds (or timeout); returns the latest view. For tests and scripts."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                current = self.view()
                if condition(current):
                    return current
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return current
                self._changed.wait(remaining)

    def wait(self, timeout: float | None = None) -> JobView:
        """Block until the job has ended (or timeout); returns the latest view."""
        return self.wait_until(lambda view: view.done, timeout)

    # ---- written by the manager's worker only

    def _update(self, **values) -> None:
        with self._changed:
            for key, value in values.items():
                setattr(self, "_" + key, value)
            if values.get("status") == RUNNING:
                self._started = time.time()
            elif values.get("status") in DONE:
                self._ended = time.time()
            if self.store is not None and any(key in values for key in _STORED):
                self._persist({key: getattr(self, "_" + key) for key in _STORED})
            self._changed.notify_all()

    def _persist(self, values: dict) -> None:
        # The run goes on whatever the disk says; the store's failure is logged, not raised into training.
        if "checkpoint" in values and values["checkpoint"] is not None:
            values["checkpoint"] = str(values["checkpoint"])
        try:
            self.store.update(self.id, **values)
        except Exception:
            log.exception("could not record job %s", self.id)

    def _record(self, event: TrainEvent) -> None:
        with self._changed:
            if isinstance(event, StepEvent):
                self._epoch, self._step, self._steps_per_epoch = event.epoch, event.step, event.steps_per_epoch
                self._images_per_second, self._elapsed = event.images_per_second, event.elapsed_seconds
                self._last_step = {"recon": event.recon, "kl": event.kl, "total": event.total}
                self._step_trace.append({"epoch": event.epoch - 1 + event.step / event.steps_per_epoch, **self._last_step})
                if len(self._step_trace) > MAX_STEP_POINTS:
                    # Keep every other point: the curve keeps its shape and the page stays light.
                    self._step_trace = self._step_trace[::2]
                steps_done = (event.epoch - 1) * event.steps_per_epoch + event.step
                steps_left = event.epochs * event.steps_per_epoch - steps_done
                self._seconds_left = event.elapsed_seconds / steps_done * steps_left
                if self.max_seconds is not None and event.elapsed_seconds > self.max_seconds and not self.stop_event.is_set():
                    self.hit_time_limit = True
                    self.stop_event.set()
                if event.preview is not None:
                    self._preview = event.preview
            elif isinstance(event, EpochEvent):
                self._history.append(event.record)
                self._kl_per_dim = list(EpochRecord.from_dict(event.record).kl_per_dim)
                self._preview = event.preview
                if self.store is not None:
                    self._persist({"history": list(self._history)})
            self._changed.notify_all()


class InProcessExecutor:
    """Where runs execute: here, on worker threads of this server process (the default executor).

    An executor has `slots` (runs at once) and `execute(job)`, which runs the job to its end,
    writing its events through `job._record` / `job._update`. A cluster executor (a Ray actor per
    run) would do the same from the events its actors stream back; the records stay the same.
    """

    slots = 1  # two runs sharing a 2-core CPU would each go at half speed

    def execute(self, job: Job) -> None:
        run_job(job)


class JobManager:
    """The queue of training jobs of one process, shared by every session; one run at a time.

    store: where job records live (default: in memory, gone with the process); a SQLite file
    (`vae.jobstore.JobStore(path)`) keeps them across restarts: finished runs stay listed, a
    queued run is queued again and one the server lost mid-run is shown as interrupted.
    """

    def __init__(self, start: bool = True, store: JobStore | None = None, executor: InProcessExecutor | None = None):
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
        for record in self.store.records():
            job = Job(record.id, record.name, Path(record.root), record.model, TrainConfig(**record.train), record.overwrite,
                      owner=record.owner, owner_name=record.owner_name, role=record.role,
                      max_images=record.extra.get("max_images"), max_seconds=record.extra.get("max_seconds"), store=self.store,
                      group=record.extra.get("group"))
            job.created, job._history, job._message = record.created, list(record.history), record.message
            job._started, job._ended = record.started, record.ended
            job._checkpoint = Path(record.checkpoint) if record.checkpoint else None
            job._kl_per_dim = list(last_kl_per_dim(read_history(record.history)) or []) or None
            job._status = record.status
            self._jobs[job.id] = job
            if record.status == QUEUED:
                self._queue.append(job)
            elif record.status == RUNNING:  # the process died mid-run (a kill, a power cut): it cannot be resumed
                saved = job._checkpoint is not None and (job._checkpoint / "config.json").exists()
                job._update(status=INTERRUPTED, message="The server stopped while this run was training" +
                            ("." if saved else "; it had not been saved, so nothing of it was kept."))
        self._renumber()

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
            raise CheckpointExistsError(f"A checkpoint named '{name}' already exists; choose another name or confirm overwriting it.")
        with self._lock:
            for other in self._jobs.values():
                if other.name == name and other.root == root and other.status not in DONE:
                    raise CheckpointExistsError(f"A run that will save as '{name}' is already queued or running; choose another name.")
            known = _TRAIN_SIZES.get(train_config.dataset)  # refused at once when the size is known from an earlier run
            if owner is not None and not teacher and limits is not None and known is not None and \
                    (refusal := over_budget_message(train_config.epochs, known, limits.max_images_per_run)):
                raise serving.JobLimitError(refusal)
            if owner is not None:
                serving.check_submission(list(self._jobs.values()), root, name, owner, teacher,
                                         overwrite and folder.exists(), limits, group=group)
            job = Job(secrets.token_urlsafe(12), name, root, model, train_config, overwrite, dataset,
                      owner=owner, owner_name=owner_name, role="teacher" if teacher else "student",
                      max_images=None if limits is None or teacher else limits.max_images_per_run,
                      max_seconds=None if limits is None or teacher else limits.max_run_seconds, store=self.store, group=group)
            self.store.add(JobRecord(job.id, name, str(root), job.model, train_config.to_dict(), QUEUED, job.created,
                                     owner=owner, owner_name=owner_name, role=job.role, overwrite=overwrite,
                                     message=job._message, extra={"max_images": job.max_images, "max_seconds": job.max_seconds, "group": group}))
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
                job._update(status=STOPPED, message="Stopped before it started; nothing was trained or saved.", position=0)
                self._renumber()

    def shutdown(self, timeout: float | None = 120.0) -> None:
        """Stop every running job, save each one's last complete epoch, and let no queued job start.

        Queued jobs stay queued in the store, to run after a restart. Called at interpreter exit
        (Streamlit turns SIGINT and SIGTERM into a normal exit), so a stopped server loses no epoch.
        """
        with self._lock:
            self._closing = True
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
                job._update(status=RUNNING, message="Loading the data set…", position=0)
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


def run_job(job: Job) -> None:
    """Run one job to its end in this thread: load data, train, save; the outcome lands in the job."""
    config = job.train_config
    try:
        device = resolve_device(config.device)
        dataset = job.given_dataset or _load_unless_stopped(job)
        if dataset is None:
            job._update(status=STOPPED, message="Stopped while loading the data set; nothing was trained or saved.")
            return
        model_config = ModelConfig(**job.model, image_shape=dataset.image_shape)
    except (DataError, DeviceError, ModelConfigError) as error:
        job._update(status=ERROR, message=str(error))
        return
    _TRAIN_SIZES[config.dataset] = len(dataset.train_images)
    if job.max_images is not None and (refusal := over_budget_message(config.epochs, len(dataset.train_images), job.max_images)):
        job._update(status=ERROR, message=refusal)
        return
    if job.stop_event.is_set():
        job._update(status=INTERRUPTED if job.interrupted else STOPPED,
                    message="Stopped before the first step; nothing was trained or saved.")
        return
    notes = f" {dataset.notes}" if getattr(dataset, "notes", "") else ""
    job._update(message=f"Training on {device}.{notes}", device=str(device))
    result = train(model_config, config, dataset=dataset, on_event=job._record, stop=job.stop_event)
    status = {"finished": FINISHED, "stopped": STOPPED, "nan": NAN}[result.status]
    if status == STOPPED and job.interrupted:
        status = INTERRUPTED
        result.message = f"The server was stopped during epoch {len(result.history) + 1}, so this run was interrupted."
    elif status == STOPPED and job.hit_time_limit:
        result.message = (f"Stopped at this server's limit of {job.max_seconds / 60:g} min per run, "
                          f"during epoch {len(result.history) + 1}.")
    if not result.history:
        job._update(status=status, message=f"{result.message} No epoch completed, so nothing was saved.")
        return
    try:
        # rename_if_taken: another server (or a CLI run) may have saved this name while we trained;
        # the model is kept under a derived name rather than thrown away.
        folder = save_checkpoint(job.root / job.name, result.model, overwrite=job.overwrite, rename_if_taken=True,
                                 **checkpoint_story(model_config, config, dataset, result))
    except CheckpointError as error:
        job._update(status=ERROR, message=f"{result.message} But it could not be saved: {error}")
        return
    renamed = "" if folder.name == job.name else \
        f" A checkpoint named '{job.name}' was saved elsewhere while this run trained, so this model was saved as '{folder.name}'."
    job._update(status=status, checkpoint=folder, seconds_left=0.0,
                message=f"{result.message} Saved as '{folder.name}' ({_saved_epochs(result)}, {result.seconds:.0f} s on {result.device}).{renamed}{notes}")


def _load_unless_stopped(job: Job) -> Dataset | None:
    """The job's data set, or None as soon as the job is stopped while it loads (a download or a big
    folder may take minutes: a helper thread loads, so Stop frees the worker and the queue at once;
    the abandoned load ends by itself, its downloads bounded and watching the stop event)."""
    outcome: dict = {}
    loaded = threading.Event()

    def load() -> None:
        try:
            with stopped_by(job.stop_event):
                outcome["dataset"] = load_dataset(job.train_config.dataset, job.train_config.data_dir)
        except BaseException as error:  # handed to the worker thread, which reports it
            outcome["error"] = error
        finally:
            loaded.set()

    threading.Thread(target=load, name=f"latent-lab-load-{job.id}", daemon=True).start()
    while not loaded.wait(STOP_POLL_SECONDS):
        if job.stop_event.is_set():
            return None
    if "error" in outcome:
        raise outcome["error"]
    return outcome["dataset"]


def _saved_epochs(result: TrainResult) -> str:
    return f"{result.epochs_completed} epoch" + ("" if result.epochs_completed == 1 else "s")


_shared: JobManager | None = None
_shared_lock = threading.Lock()


def shared_manager() -> JobManager:
    """The one JobManager of this process (every session of the app sees the same queue)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            import sqlite3

            from vae.jobstore import store_path

            try:
                _shared = JobManager(store=JobStore(store_path(default_root())))
            except (sqlite3.Error, OSError) as error:  # a read-only install, a damaged file: runs still work, for this process
                log.warning("job records kept in memory only: %s cannot be used (%s)", store_path(default_root()), error)
                _shared = JobManager()
            # Streamlit turns SIGINT / SIGTERM into a normal exit. This runs first in that exit, before
            # Python waits for other non-daemon threads (a UMAP compile can take a minute, while the
            # run would go on training), so every run stops, saves its last complete epoch, and the exit is clean.
            register = getattr(threading, "_register_atexit", None) or atexit.register  # the former: as concurrent.futures does
            register(_shutdown_at_exit, _shared)
        return _shared


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
        return f"Queued, position {ahead}: {ahead} run{'s' if ahead != 1 else ''} ahead of this one (one run at a time on this server)."
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
