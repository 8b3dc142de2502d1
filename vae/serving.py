"""The class server's rules: who may change what, and the limits that keep a shared server usable.

Roles: the operator configures (`vae.settings`); the teacher (who knows the password) may stop or
delete any run, replace or delete any model and train on the operator's server folders; a
student owns the runs their session started and the models those runs saved. A model no run of
this server saved (the shipped ones, the CLI's) is read-only except to the teacher.
Limits, from `vae.settings.Settings`: runs queued or running per session, the queue's length,
a compute budget per run (enforced by `vae.jobs.run_job`) and a disk quota for students' models.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from vae.checkpoints import CheckpointError, checkpoint_path
from vae.settings import Settings

if TYPE_CHECKING:
    from vae.jobs import Job, JobManager


class JobLimitError(RuntimeError):
    """A run refused because it would go over one of the server's limits; the message says which."""


def _saver(jobs: Iterable[Job], root: Path, name: str) -> Job | None:
    """The run that last saved checkpoint `name` under `root`, if one of these did."""
    savers = [job for job in jobs if job.root.resolve() == root.resolve() and job.name == name
              and job.view().checkpoint is not None]
    return max(savers, key=lambda job: job.created) if savers else None


def may_replace(jobs: Iterable[Job], root: str | Path, name: str, owner: str | None, teacher: bool) -> bool:
    """Whether `owner` may overwrite checkpoint `name`: the teacher always; a student only a model their own run
    saved."""
    if teacher:
        return True
    saver = _saver(jobs, Path(root), name)
    return saver is not None and owner is not None and saver.owner == owner


def folder_bytes(folder: Path) -> int:
    """Bytes of the regular files under `folder` (symlinks not followed); 0 when it is gone."""
    total = 0
    for path in folder.rglob("*") if folder.is_dir() else ():
        try:
            if path.is_file() and not path.is_symlink():
                total += path.stat().st_size
        except OSError:
            continue
    return total


def student_models(jobs: Iterable[Job]) -> list[tuple[Job, int]]:
    """Students' saved models still on disk, oldest run first, each with its size in bytes."""
    found, seen = [], set()
    for job in sorted(jobs, key=lambda job: job.created):
        view = job.view()
        if job.role != "student" or job.owner is None or view.checkpoint is None or not view.done:
            continue
        if view.checkpoint in seen or not (view.checkpoint / "config.json").exists():
            continue
        if (saver := _saver(jobs, job.root, job.name)) is not None and saver is not job:
            continue  # replaced since by a later run: counted there
        seen.add(view.checkpoint)
        found.append((job, folder_bytes(view.checkpoint)))
    return found


def check_submission(jobs: list[Job], root: Path, name: str, owner: str, teacher: bool, replacing: bool,
                     limits: Settings | None, group: str | None = None) -> None:
    """Refuse a run the rules do not allow: JobPermissionError (someone else's model) or JobLimitError.

    A sweep (`group`, vae.sweeps) counts as one run against the per-session limit: its runs queue
    together, and the queue cap and the quota still count each of them.
    """
    from vae.jobs import DONE, QUEUED, JobPermissionError

    if replacing and not may_replace(jobs, root, name, owner, teacher):
        raise JobPermissionError(f"'{name}' is not a model you trained in this session: choose another name "
                                 "(only the teacher may replace it).")
    if limits is None or teacher:
        return
    mine = {job.group or job.id for job in jobs if job.owner == owner and job.status not in DONE}
    if group is not None and group in mine:
        mine.discard(group)  # the next run of a sweep already counted
    if len(mine) >= limits.max_runs_per_session:
        raise JobLimitError(f"You already have {len(mine)} run{'s' if len(mine) != 1 else ''} queued or running "
                            f"(this server allows {limits.max_runs_per_session} "
                            "at a time): stop it or wait for it to end.")
    if sum(job.status == QUEUED for job in jobs) >= limits.max_queue:
        raise JobLimitError(f"The server's queue is full ({limits.max_queue} "
                            "runs waiting): try again when a run has ended.")
    used = sum(size for _, size in student_models(jobs))
    if used >= limits.student_quota_bytes:
        raise JobLimitError(f"The space for students' models on this server is full ({used / 2**20:,.0f} MB of "
                            f"{limits.student_quota_mb:g} MB): ask your teacher to clean up old runs.")


def delete_model(manager: JobManager, job_id: str, teacher: bool) -> str:
    """Delete the checkpoint a finished run saved (teacher only); returns its name.

    Raises JobPermissionError for anyone else, CheckpointError when it cannot be removed.
    """
    from vae.jobs import JobPermissionError

    if not teacher:
        raise JobPermissionError("Only the teacher can delete models.")
    job = manager.get(job_id)
    view = job.view() if job is not None else None
    if view is None or not view.done or view.checkpoint is None:
        raise CheckpointError("That run has no saved model to delete.")
    folder = checkpoint_path(job.root, job.name)
    # Renamed away first: a reader never sees a half-deleted folder, only the model or nothing.
    retired = folder.parent / f".{job.name}.deleted-{job.id[:8]}"  # not ".old-": that one is restored
    try:
        folder.rename(retired)
    except FileNotFoundError:
        pass
    except OSError as error:
        raise CheckpointError(f"Could not delete '{job.name}': {error.strerror or error}.") from error
    shutil.rmtree(retired, ignore_errors=True)
    job._update(checkpoint=None, message=view.message + " Its model was deleted by the teacher.")
    return job.name

