"""A class server students cannot abuse: settings, server folders, ownership, limits, plain text, durable jobs."""

from __future__ import annotations

import os
import re
import sqlite3

import pytest

from vae import jobs
from vae.checkpoints import load_checkpoint
from vae.job_state import TRAIN_SIZES
from vae.jobs import JobManager, JobPermissionError
from vae.jobstore import JobRecord, JobStore, store_path
from vae.serving import JobLimitError, delete_model, may_replace, student_models
from vae.settings import Settings, SettingsError, allowed_folder, load_settings, server_folders
from vae.text import markdown_literal, plain, public_dataset_name
from vae.train import StepEvent, TrainConfig

SMALL = {"arch": "mlp", "latent_dim": 2, "hidden": (32,)}
WAIT = 120  # seconds; generous, the machine is shared
ALICE, BOB = "alice-session", "bob-session"


@pytest.fixture(autouse=True)
def sizes_not_yet_known():
    """Each test starts as a fresh server would: no data set's size learnt from an earlier run."""
    learnt = dict(TRAIN_SIZES)
    TRAIN_SIZES.clear()  # one dict, shared by the manager and every executor
    yield
    TRAIN_SIZES.clear()
    TRAIN_SIZES.update(learnt)


def digits(epochs: int = 1, **settings) -> TrainConfig:
    return TrainConfig(dataset="digits", epochs=epochs, batch_size=256, **settings)


# ---- settings: safe defaults, read from the environment or secrets.toml

def test_defaults_offer_no_server_folder_and_no_teacher():
    settings = load_settings(environ={})
    assert settings.folder_roots == () and not settings.teacher_enabled
    assert settings.max_runs_per_session == 1 and settings.max_queue >= 1 and settings.student_quota_bytes > 0


def test_settings_come_from_latent_lab_variables_and_secrets_override_them(tmp_path):
    environ = {"LATENT_LAB_FOLDER_ROOTS": f"{tmp_path}{os.pathsep}{tmp_path / 'b'}", "LATENT_LAB_MAX_QUEUE": "5",
               "LATENT_LAB_TEACHER_PASSWORD": "from-env"}
    settings = load_settings({"teacher_password": "from-secrets", "max_run_minutes": 2.5}, environ)
    assert settings.folder_roots == (tmp_path.resolve(), (tmp_path / "b").resolve())
    assert settings.max_queue == 5 and settings.teacher_password == "from-secrets" and settings.max_run_seconds == 150


@pytest.mark.parametrize("value", ["lots", "-1", "0", "nan"])
def test_a_limit_that_is_not_a_positive_number_is_refused_by_name(value):
    with pytest.raises(SettingsError, match="max_queue"):
        load_settings(environ={"LATENT_LAB_MAX_QUEUE": value})


# ---- item 1: server folders only inside the operator's roots, after resolving symlinks and ..

def test_folders_outside_the_roots_are_refused_after_resolving_dots_and_symlinks(tmp_path):
    root = tmp_path / "class-pictures"
    (root / "cats").mkdir(parents=True)
    secret = tmp_path / "private"
    secret.mkdir()
    (root / "escape").symlink_to(secret)
    roots = (root.resolve(),)
    assert allowed_folder(root / "cats", roots) == (root / "cats").resolve()
    for outside in (secret, root / ".." / "private", root / "escape", "/etc", "~", root / "cats" / ".." / ".."):
        assert allowed_folder(outside, roots) is None, outside
    assert allowed_folder("/etc", ()) is None  # no roots configured: nothing at all
    offered = server_folders(roots)
    assert offered == [root.resolve(), (root / "cats").resolve()]  # the symlink leading out is not offered


# ---- item 4: runs and models belong to the session that started them

def test_only_the_owner_or_the_teacher_can_stop_a_run(tmp_path):
    manager = JobManager(start=False)
    job = manager.submit("alices-run", SMALL, digits(), root=tmp_path, owner=ALICE)
    with pytest.raises(JobPermissionError):
        manager.stop(job.id, by=BOB)
    assert job.view().status == jobs.QUEUED
    manager.stop(job.id, by=BOB, teacher=True)
    assert job.view().status == jobs.STOPPED
    other = manager.submit("alices-second", SMALL, digits(), root=tmp_path, owner=ALICE)
    manager.stop(other.id, by=ALICE)
    assert other.view().status == jobs.STOPPED


def test_job_ids_are_unguessable_and_do_not_carry_the_name(tmp_path):
    manager = JobManager(start=False)
    ids = [manager.submit(f"run-{n}", SMALL, digits(), root=tmp_path).id for n in range(3)]
    assert len(set(ids)) == 3
    # 12 random bytes each (96 bits): no counter, no name to guess from.
    assert all(len(job_id) >= 16 and f"run-{n}" not in job_id and not job_id.startswith(f"{n + 1}-") for n, job_id in enumerate(ids))


def test_shipped_models_are_read_only_except_to_the_teacher_and_students_replace_only_their_own(checkpoint_root):
    manager = JobManager()
    with pytest.raises(JobPermissionError, match="only the teacher"):
        manager.submit("digits-mlp-z2", SMALL, digits(), root=checkpoint_root, overwrite=True, owner=ALICE)
    alices = manager.submit("alices-model", SMALL, digits(), root=checkpoint_root, owner=ALICE)
    assert alices.wait(WAIT).status == jobs.FINISHED
    with pytest.raises(JobPermissionError):
        manager.submit("alices-model", SMALL, digits(), root=checkpoint_root, overwrite=True, owner=BOB)
    assert may_replace(manager.jobs(), checkpoint_root, "alices-model", ALICE, teacher=False)
    again = manager.submit("alices-model", SMALL, digits(epochs=2), root=checkpoint_root, overwrite=True, owner=ALICE)
    assert again.wait(WAIT).status == jobs.FINISHED
    assert len(load_checkpoint(checkpoint_root / "alices-model").history) == 2
    teachers = manager.submit("digits-mlp-z2", SMALL, digits(), root=checkpoint_root, overwrite=True, owner=BOB, teacher=True)
    assert teachers.wait(WAIT).status == jobs.FINISHED


# ---- item 5: limits per session, on the queue, per run, and on students' disk space

def test_one_queued_or_running_run_per_session_and_a_capped_queue(tmp_path):
    manager = JobManager(start=False)
    limits = Settings(max_runs_per_session=1, max_queue=2)
    manager.submit("a-1", SMALL, digits(), root=tmp_path, owner=ALICE, limits=limits)
    with pytest.raises(JobLimitError, match="already have 1 run"):
        manager.submit("a-2", SMALL, digits(), root=tmp_path, owner=ALICE, limits=limits)
    manager.submit("b-1", SMALL, digits(), root=tmp_path, owner=BOB, limits=limits)
    with pytest.raises(JobLimitError, match="queue is full"):
        manager.submit("c-1", SMALL, digits(), root=tmp_path, owner="carol", limits=limits)
    manager.submit("t-1", SMALL, digits(), root=tmp_path, owner="teacher", teacher=True, limits=limits)  # the teacher is not limited
    assert [job.name for job in manager.jobs()] == ["t-1", "b-1", "a-1"]


def test_a_sweep_counts_as_one_run_of_its_student_carries_its_owner_and_only_they_may_stop_it(tmp_path):
    from vae import sweeps

    manager = JobManager(start=False)
    limits = Settings(max_runs_per_session=1, max_queue=10)
    queued = sweeps.submit_sweep(manager, "mine", SMALL, digits(), "beta", [1.0, 4.0], root=tmp_path,
                                 owner=ALICE, limits=limits)
    assert [job.owner for job in queued] == [ALICE, ALICE] and queued[0].group == queued[1].group
    with pytest.raises(JobLimitError, match="already have 1 run"):  # the sweep is her one run
        manager.submit("another", SMALL, digits(), root=tmp_path, owner=ALICE, limits=limits)
    with pytest.raises(jobs.JobPermissionError):
        sweeps.stop_group(manager, queued[0].group, by=BOB)
    sweeps.stop_group(manager, queued[0].group, by=ALICE)
    assert all(job.status == jobs.STOPPED for job in queued)


def test_a_run_over_the_compute_budget_is_refused_with_the_epochs_it_may_have(tmp_path):
    manager = JobManager()
    job = manager.submit("too-long", SMALL, digits(epochs=10_000), root=tmp_path, owner=ALICE,
                         limits=Settings(max_images_per_run=100_000))
    view = job.wait(WAIT)
    assert view.status == jobs.ERROR and "choose at most 69 epochs" in view.message  # 1,437 training images
    assert not (tmp_path / "too-long").exists()


def test_the_wall_clock_budget_stops_the_run_and_says_why(tmp_path):
    job = jobs.Job("x", "timed", tmp_path, SMALL, digits(epochs=5), False, max_seconds=60.0)
    step = dict(epoch=2, step=1, steps_per_epoch=6, epochs=5, recon=1.0, kl=1.0, total=2.0, images_per_second=1.0)
    job._record(StepEvent(**step, elapsed_seconds=59.0))
    assert not job.stop_event.is_set()
    job._record(StepEvent(**step, elapsed_seconds=61.0))
    assert job.stop_event.is_set() and job.hit_time_limit


def test_students_models_over_the_quota_refuse_new_runs_and_the_oldest_are_offered_for_clean_up(tmp_path):
    manager = JobManager()
    first = manager.submit("old-run", SMALL, digits(), root=tmp_path, owner=ALICE)
    second = manager.submit("new-run", SMALL, digits(), root=tmp_path, owner=BOB)
    assert first.wait(WAIT).status == jobs.FINISHED and second.wait(WAIT).status == jobs.FINISHED
    models = student_models(manager.jobs())
    assert [job.name for job, _ in models] == ["old-run", "new-run"] and all(size > 0 for _, size in models)
    tiny = Settings(student_quota_mb=0.001)
    with pytest.raises(JobLimitError, match="ask your teacher"):
        manager.submit("one-more", SMALL, digits(), root=tmp_path, owner="carol", limits=tiny)
    with pytest.raises(JobPermissionError):
        delete_model(manager, first.id, teacher=False)
    assert delete_model(manager, first.id, teacher=True) == "old-run"
    assert not (tmp_path / "old-run").exists() and not any(p.name.startswith(".old-run") for p in tmp_path.iterdir())
    assert [job.name for job, _ in student_models(manager.jobs())] == ["new-run"]


# ---- item 8: what one user typed is plain text for everyone else

@pytest.mark.parametrize("typed", [
    "![x](https://example.invalid/beacon.png)", "[Exam answers (click)](https://example.invalid)", ":red[big] **bold**",
    "- list", "1. list", "# heading", "<img src=x onerror=alert(1)>", "$x^2$",
])
def test_typed_markdown_is_escaped_so_it_renders_as_typed(typed):
    # Every character Markdown (or Streamlit's :color[]/$maths$) acts on comes out backslash-escaped;
    # the browser test checks what Chromium draws from it.
    escaped = markdown_literal(typed)
    unescaped = re.sub(r"\\\\.", "", escaped)
    assert not re.search(r"[\\[\\]<>*_`!$:#|~]", unescaped), escaped
    assert not re.match(r"[-+=]|\\d+[.)]", escaped), escaped


def test_invisible_control_characters_are_removed():
    assert plain("evil\u202etxt.exe\x1b[31m\u200bname\nnext\x00") == "eviltxt.exe[31mname next"
    assert public_dataset_name("folder:/home/teacher/album?size=32") == "image folder"
    assert public_dataset_name("mnist5k") == "mnist5k"


# ---- item 10: job records survive a restart

def test_after_a_restart_the_run_list_is_intact_interrupted_runs_say_so_and_queued_runs_still_run(tmp_path):
    path = store_path(tmp_path / "checkpoints")
    assert path == tmp_path / "checkpoints-jobs.sqlite3"
    manager = JobManager(store=JobStore(path))
    done = manager.submit("done-run", SMALL, digits(), root=tmp_path, owner=ALICE, owner_name="Alice")
    assert done.wait(WAIT).status == jobs.FINISHED
    long = manager.submit("long-run", SMALL, digits(epochs=500), root=tmp_path, owner=BOB)
    queued = manager.submit("queued-run", SMALL, digits(), root=tmp_path, owner="carol")
    long.wait_until(lambda view: len(view.history) >= 1, WAIT)
    manager.shutdown()  # what SIGTERM does: stop, save the last complete epoch, start nothing new
    interrupted = long.wait(WAIT)
    assert interrupted.status == jobs.INTERRUPTED and "interrupted" in interrupted.message
    saved = load_checkpoint(tmp_path / "long-run")
    assert len(saved.history) == len(interrupted.history) >= 1
    assert queued.view().status == jobs.QUEUED

    restarted = JobManager(store=JobStore(path), start=False)
    views = {job.name: job.view() for job in restarted.jobs()}
    assert list(views) == ["queued-run", "long-run", "done-run"]  # newest first, as before
    assert views["done-run"].status == jobs.FINISHED and views["done-run"].owner_name == "Alice"
    assert len(views["done-run"].history) == 1 and views["done-run"].checkpoint == tmp_path / "done-run"
    assert views["long-run"].status == jobs.INTERRUPTED and len(views["long-run"].history) == len(saved.history)
    assert views["queued-run"].status == jobs.QUEUED and views["queued-run"].position == 0
    assert restarted.get(long.id).owner == BOB  # ownership kept: Bob's run is still Bob's
    restarted.start()
    assert restarted.get(queued.id).wait(WAIT).status == jobs.FINISHED


def test_a_run_the_server_lost_mid_training_comes_back_as_interrupted(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    store = JobStore(path)
    store.add(JobRecord("killed", "killed-run", str(tmp_path), SMALL, digits().to_dict(), jobs.RUNNING, 1.0, owner=ALICE))
    store.close()
    view = JobManager(store=JobStore(path), start=False).get("killed").view()
    assert view.status == jobs.INTERRUPTED and "nothing of it was kept" in view.message
    with sqlite3.connect(path) as connection:  # and the file says so too, for the next restart
        assert connection.execute("SELECT status FROM jobs WHERE id = 'killed'").fetchone() == (jobs.INTERRUPTED,)


def test_label_names_on_the_latent_map_are_text_not_html():
    import numpy as np

    from vae.maps import latent_map_figure

    names = ('<a href="https://e.invalid">Exam answers (click)</a>', "cats")
    figure = latent_map_figure(np.zeros((4, 2)), np.arange(4), np.array([0, 0, 1, 1]), names, ("x", "y"),
                               new_points=[("<img src=x>.png", np.zeros(2))])
    drawn = " ".join(str(trace.name) + str(trace.hovertemplate) for trace in figure.data)
    assert "<a " not in drawn and "<img" not in drawn and "&lt;a href=" in drawn


def test_one_label_lookup_names_a_class_or_says_it_has_none():
    from vae.text import label_name

    names = ["cats", "dogs"]
    assert label_name(names, 1) == "dogs" and label_name(names, 0) == "cats"
    assert label_name(names, -1) == "–" and label_name(None, 0) == "–" and label_name([], 0) == "–"
    assert label_name(names, 2, missing="2") == "2" and label_name(names, None, missing=None) is None


def test_once_a_data_sets_size_is_known_an_over_budget_run_is_refused_at_submission(tmp_path):
    manager = JobManager()
    limits = Settings(max_images_per_run=100_000)
    assert manager.submit("first", SMALL, digits(epochs=10_000), root=tmp_path, owner=ALICE, limits=limits).wait(WAIT).status == jobs.ERROR
    with pytest.raises(JobLimitError, match="choose at most 69 epochs"):
        manager.submit("second", SMALL, digits(epochs=10_000), root=tmp_path, owner=ALICE, limits=limits)


def test_a_job_file_that_cannot_be_used_leaves_training_working_in_memory(tmp_path, monkeypatch):
    root = tmp_path / "checkpoints"
    root.mkdir()
    store_path(root).write_bytes(b"this is not a database" * 100)
    monkeypatch.setenv("LATENT_LAB_CHECKPOINTS", str(root))
    monkeypatch.setattr(jobs, "_shared", None)
    manager = jobs.shared_manager()
    assert manager.store.path == ":memory:"
    job = manager.submit("still-works", SMALL, digits(), owner=ALICE)
    assert job.wait(WAIT).status == jobs.FINISHED


def test_a_stored_run_whose_settings_the_bounds_now_refuse_is_left_out_and_the_server_still_starts(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    store = JobStore(path)
    refused = {**digits().to_dict(), "lr": 1e-9}  # below the declared learning rate's bound
    store.add(JobRecord("old", "old-run", str(tmp_path), SMALL, refused, jobs.FINISHED, 1.0, owner=ALICE))
    store.add(JobRecord("good", "good-run", str(tmp_path), SMALL, digits().to_dict(), jobs.FINISHED, 2.0, owner=ALICE))
    store.close()
    restarted = JobManager(store=JobStore(path), start=False)
    assert restarted.get("old") is None
    assert restarted.get("good").view().name == "good-run"
