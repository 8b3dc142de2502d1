"""The default executor: runs train on a worker thread of this server process (no new dependency)."""

from __future__ import annotations

import threading

from vae.checkpoints import CheckpointError, save_checkpoint
from vae.datasets import DataError, Dataset, load_dataset
from vae.devices import DeviceError, resolve_device
from vae.downloads import stopped_by
from vae.job_state import ERROR, FINISHED, INTERRUPTED, NAN, QUEUE_NOTE, RUNNING, STOPPED, Job
from vae.models import ModelConfig, ModelConfigError
from vae.train import TrainResult, checkpoint_story, train

STOP_POLL_SECONDS = 0.1  # how often a run that is loading its data set looks at its stop event


class InProcessExecutor:
    """Where runs execute: here, on worker threads of this server process (the default executor).

    An executor has `slots` (runs at once) and `execute(job)`, which runs the job to its end,
    writing its events through `job._record` / `job._update`. The cluster executor
    (vae.executors.ray_cluster, a Ray actor per run) does the same from the events its actors
    send back; the records stay the same.
    """

    slots = 1  # two runs sharing a 2-core CPU would each go at half speed
    queue_note = QUEUE_NOTE  # why a queued run waits (the progress line says it)
    handover = {"status": RUNNING, "message": "Loading the data set…", "position": 0}  # a run's state once taken

    def execute(self, job: Job) -> None:
        run_job(job)


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
    if not job.admit(len(dataset.train_images)):
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
        result.message = job.time_limit_message(len(result.history))
    save_outcome(job, status, result, model_config, dataset, notes)


def save_outcome(job: Job, status: str, result: TrainResult, model_config: ModelConfig, dataset,
                 notes: str = "") -> None:
    """Save a run's last complete epoch with the one atomic save and give the job its final status and message.

    dataset: the Dataset trained on, or anything with its name, image_shape, label_names and sized
    train_images / test_images (what the checkpoint records). Nothing is saved when no epoch completed.
    """
    if not result.history:
        job._update(status=status, message=f"{result.message} No epoch completed, so nothing was saved.")
        return
    try:
        # rename_if_taken: another server (or a CLI run) may have saved this name while we trained;
        # the model is kept under a derived name rather than thrown away.
        folder = save_checkpoint(job.root / job.name, result.model, overwrite=job.overwrite, rename_if_taken=True,
                                 **checkpoint_story(model_config, job.train_config, dataset, result))
    except CheckpointError as error:
        job._update(status=ERROR, message=f"{result.message} But it could not be saved: {error}")
        return
    renamed = "" if folder.name == job.name else \
        f" A checkpoint named '{job.name}' was saved elsewhere while this run trained, so this model was saved as " \
        f"'{folder.name}'."
    job._update(status=status, checkpoint=folder, seconds_left=0.0,
                message=f"{result.message} Saved as '{folder.name}' ({_saved_epochs(result)}, {result.seconds:.0f} s "
                        f"on {result.device}).{renamed}{notes}")


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
