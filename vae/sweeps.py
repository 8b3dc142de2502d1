"""Sweeps: the same run repeated with one setting taking several values, queued as one group.

"Repeat this run with beta in {1, 4, 8}" becomes three runs named from the base name
(`shapes-run-1-beta1`, `-beta4`, `-beta8`), queued on the one `vae.jobs.JobManager` with the
same `group`, so the Train page shows them together and the Compare page opens on the ones that
were saved. Stopping a group stops its running run (which keeps its last complete epoch) and takes
the queued ones off the queue; runs that had finished stay saved.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace

from vae.checkpoints import CheckpointError, checkpoint_path, validate_name
from vae.hyperparameters import HYPERPARAMETERS

SETTINGS = {"beta": "β (weight of KL)", "latent_dim": "latent size", "likelihood": "likelihood"}
MAX_RUNS = 6  # as many as the Compare page shows at once


class SweepError(ValueError):
    """A sweep that cannot be queued (bad values, a name taken); the message is for the user."""


def parse_values(setting: str, text: str) -> list:
    """The values of a sweep from text like "1, 4, 8" (beta), "2 10 16" (latent size) or "bernoulli, gaussian".

    Duplicates are dropped (first kept); 2 to MAX_RUNS values. Raises SweepError with the reason.
    """
    if setting not in SETTINGS:
        raise SweepError(f"Unknown sweep setting '{setting}'; choose one of {', '.join(SETTINGS)}.")
    parts = [part for part in text.replace(",", " ").replace("{", " ").replace("}", " ").split() if part]
    values = []
    for part in parts:
        try:
            value = HYPERPARAMETERS[setting].parse(part.lower())  # the bounds a single run has
        except ValueError:
            declared = HYPERPARAMETERS[setting]
            if declared.choices:
                allowed = " or ".join(declared.choices)
            else:
                allowed = (f"{'numbers' if declared.kind is float else 'whole numbers'} from {declared.low:g} to "
                           f"{declared.high:g}")
            raise SweepError(
                f"'{part}' is not a {SETTINGS[setting]} value: use {allowed}, separated by commas.") from None
        if value not in values:
            values.append(value)
    if not 2 <= len(values) <= MAX_RUNS:
        raise SweepError(f"A sweep needs 2 to {MAX_RUNS} different values, e.g. 1, 4, 8; got {len(values)}.")
    return values


def run_name(base: str, setting: str, value) -> str:
    """The checkpoint name of one run: base + "-beta4", "-beta0p5", "-z10" or "-gaussian" (a '.' is not allowed in
    names)."""
    if setting == "beta":
        suffix = "beta" + f"{value:g}".replace(".", "p").replace("+", "")
    elif setting == "latent_dim":
        suffix = f"z{value}"
    else:
        suffix = str(value)
    return validate_name(f"{base}-{suffix}")


@dataclass(frozen=True)
class PlannedRun:
    name: str
    model: dict  # ModelConfig settings except image_shape
    train_config: object  # vae.train.TrainConfig


def plan_sweep(base: str, model: dict, train_config, setting: str, values: list) -> list[PlannedRun]:
    """One run per value of `setting`, everything else as in the base run. Raises SweepError."""
    runs = []
    for value in values:
        try:
            name = run_name(base, setting, value)
        except CheckpointError as error:
            raise SweepError(f"The run names would be invalid ({error}); choose a shorter base name.") from None
        if setting == "beta":
            runs.append(PlannedRun(name, dict(model), replace(train_config, beta=float(value))))
        else:
            runs.append(PlannedRun(name, {**model, setting: value}, train_config))
    return runs


def submit_sweep(manager, base: str, model: dict, train_config, setting: str, values: list, *, root,
                 overwrite: bool = False, **rules) -> list:
    """Queue one run per value as one group on `manager` (a vae.jobs.JobManager); returns the jobs.

    rules: the class server's keywords for `JobManager.submit` (owner, owner_name, teacher, limits);
    the sweep counts as one run against a session's limit (vae.serving.check_submission).

    The group id is the base name and a random tag (`group_title` gives the base name back).

    All or nothing: a name that is taken (by a checkpoint, unless overwrite, or by a pending run)
    raises SweepError before any run is queued, and a run refused midway takes the others off the queue.
    """
    runs = plan_sweep(base, model, train_config, setting, values)
    if not overwrite:
        taken = [run.name for run in runs if checkpoint_path(root, run.name).exists()]
        if taken:
            raise SweepError(f"Checkpoints named {', '.join(taken)} already exist; "
                             "choose another base name or confirm replacing them.")
    group = f"{base}:{secrets.token_hex(3)}"  # unique, though a later sweep may reuse the base name
    queued = []
    try:
        for run in runs:
            queued.append(manager.submit(run.name, run.model, run.train_config, root=root, overwrite=overwrite,
                                         group=group, **rules))
    except (CheckpointError, PermissionError, RuntimeError) as error:
        # a name taken meanwhile, a limit, a model not ours
        for job in queued:
            manager.stop(job.id)
        raise SweepError(str(error)) from None
    return queued


def group_title(group: str) -> str:
    """The base name a sweep's group id was made from."""
    return group.rsplit(":", 1)[0]


def group_views(views: list) -> dict[str, list]:
    """JobViews by group (sweeps only), each group's runs in the order they were queued."""
    groups: dict[str, list] = {}
    for view in sorted(views, key=lambda view: view.created):
        if view.group:
            groups.setdefault(view.group, []).append(view)
    return groups


def saved_names(views: list) -> list[str]:
    """The checkpoint names of a group's runs that were saved (finished, or stopped after an epoch)."""
    return [view.name for view in views if view.checkpoint is not None]


def stop_group(manager, group: str, by: str | None = None, teacher: bool = False) -> None:
    """Stop every run of a sweep: the running one saves its last complete epoch, queued ones never start;
    finished runs stay saved. by/teacher: as `JobManager.stop` (JobPermissionError for someone else's sweep)."""
    from vae.jobs import DONE

    for job in manager.jobs():
        if job.group == group and job.status not in DONE:
            manager.stop(job.id, by=by, teacher=teacher)
