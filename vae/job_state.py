"""One training run's state: `Job`, written by whichever executor runs it, and `JobView`, its snapshot.

A `Job` is a plain object behind a lock that any number of sessions read through `Job.view()`;
an executor (vae.executors) writes the run's events into it through `_record` and its status
through `_update`, which also writes the durable fields to the job store (vae.jobstore).
Nothing here imports Streamlit.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from vae.datasets import Dataset
from vae.history import last_kl_per_dim, read_history
from vae.jobstore import JobStore
from vae.train import EpochEvent, StepEvent, TrainConfig, TrainEvent

log = logging.getLogger("vae.jobs")

QUEUED, RUNNING, FINISHED, STOPPED, NAN, ERROR = "queued", "running", "finished", "stopped", "nan", "error"
INTERRUPTED = "interrupted"  # the server stopped (or died) while it ran
DONE = (FINISHED, STOPPED, NAN, ERROR, INTERRUPTED)
_STORED = ("status", "message", "checkpoint", "started", "ended")  # what the job store keeps of a job's state
TRAIN_SIZES: dict[str, int] = {}  # training images per data set name, learnt as runs load them


def over_budget_message(epochs: int, train_size: int, max_images: int) -> str | None:
    """Why a run of `epochs` over `train_size` images is over the per-run budget, or None when it fits."""
    if epochs * train_size <= max_images:
        return None
    most = max(1, max_images // max(1, train_size))
    return (f"{epochs} epochs of {train_size:,} images is more than this server allows for one run "
            f"({max_images:,} images in all): choose at most {most} epochs.")


class JobPermissionError(PermissionError):
    """Someone asked to change a run that is not theirs; the message is meant for them."""


QUEUE_NOTE = "one run at a time on this server"
MAX_STEP_POINTS = 2000  # the per-step loss trace is thinned to stay about this long


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
    queue_note: str = QUEUE_NOTE  # why a queued run waits, from its executor

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
        self.queue_note = QUEUE_NOTE  # set by the manager from its executor
        self.actor: str | None = None  # the Ray actor running it (kept in the job store), None in-process
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
                epoch=self._epoch, epochs=self.train_config.epochs, step=self._step,
                steps_per_epoch=self._steps_per_epoch, images_per_second=self._images_per_second,
                elapsed_seconds=self._elapsed, seconds_left=self._seconds_left,
                last_step=dict(self._last_step) if self._last_step else None, history=list(self._history),
                step_trace=list(self._step_trace), preview=self._preview,
                kl_per_dim=list(last_kl_per_dim(read_history(self._history[-1:])) or []) or None, device=self._device,
                checkpoint=self._checkpoint, created=self.created, started=self._started, ended=self._ended,
                owner=self.owner, owner_name=self.owner_name, role=self.role, group=self.group,
                queue_note=self.queue_note,
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

    def admit(self, train_size: int) -> bool:
        """Learn the data set's size (later runs on it are refused before they queue) and end this run with an
        error when it is over its images budget; True when it may train. Every executor calls this once its
        data set is loaded."""
        TRAIN_SIZES[self.train_config.dataset] = train_size
        if self.max_images is not None and (refusal := over_budget_message(self.train_config.epochs, train_size,
                                                                           self.max_images)):
            self._update(status=ERROR, message=refusal)
            return False
        return True

    def time_limit_message(self, epochs_done: int) -> str:
        """What a run stopped by the server's wall-clock limit says, `epochs_done` epochs in."""
        return (f"Stopped at this server's limit of {self.max_seconds / 60:g} min per run, "
                f"during epoch {epochs_done + 1}.")

    def _record(self, event: TrainEvent) -> None:
        with self._changed:
            if isinstance(event, StepEvent):
                self._epoch, self._step, self._steps_per_epoch = event.epoch, event.step, event.steps_per_epoch
                self._images_per_second, self._elapsed = event.images_per_second, event.elapsed_seconds
                self._last_step = {"recon": event.recon, "kl": event.kl, "total": event.total}
                self._step_trace.append({"epoch": event.epoch - 1 + event.step / event.steps_per_epoch,
                                         **self._last_step})
                if len(self._step_trace) > MAX_STEP_POINTS:
                    # Keep every other point: the curve keeps its shape and the page stays light.
                    self._step_trace = self._step_trace[::2]
                steps_done = (event.epoch - 1) * event.steps_per_epoch + event.step
                steps_left = event.epochs * event.steps_per_epoch - steps_done
                self._seconds_left = event.elapsed_seconds / steps_done * steps_left
                if (self.max_seconds is not None and event.elapsed_seconds > self.max_seconds
                        and not self.stop_event.is_set()):
                    self.hit_time_limit = True
                    self.stop_event.set()
                if event.preview is not None:
                    self._preview = event.preview
            elif isinstance(event, EpochEvent):
                self._history.append(event.record)
                self._preview = event.preview
                if self.store is not None:
                    self._persist({"history": list(self._history)})
            self._changed.notify_all()
