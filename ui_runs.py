"""The Train page's runs: one run (or a sweep) drawn live from a snapshot of it, and every run on this server.

A run is watched through `vae.jobs` snapshots (a `JobView`), read once a second by a fragment;
the worker thread never calls Streamlit. Only the session that started a run (or the teacher)
may stop it or read its messages, which can quote a folder or a file.
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

import pages
import ui
from vae import charts, jobs, sweeps
from vae.history import COLLAPSED_KL_NATS, read_history
from vae.images import image_grid
from vae.text import markdown_literal, plain, public_dataset_name

JOB_KEY = ui.TRAIN_JOB_KEY
ANNOUNCED_KEY = "train_announced"
REFUSED_KEY = "train_refused"  # why Stop was refused, shown by the page on its next run
RUNS_SHOWN = 50  # the list outlives restarts now: a term's runs would make every rerun slow


def open_run(job_id: str) -> None:
    """Watch this run: kept in the session and in the URL, so leaving the page or reloading comes back to it."""
    st.session_state[JOB_KEY] = job_id
    st.query_params["job"] = job_id


def mine(view: jobs.JobView) -> bool:
    return view.owner == ui.session_owner() or ui.is_teacher()


def stop_run(job_id: str) -> None:
    try:
        jobs.shared_manager().stop(job_id, by=ui.session_owner(), teacher=ui.is_teacher())
    except jobs.JobPermissionError as error:
        st.session_state[REFUSED_KEY] = str(error)


def draw_run(job: jobs.Job, announce: bool = True) -> None:
    """Everything about one run, read from one snapshot of it (announce: select its checkpoint when it is saved)."""
    view = job.view()
    model = view.model
    st.subheader(f"Run: {view.name}")
    if not mine(view):  # someone shared the link: they may watch, not act, and its messages stay theirs
        st.caption(f"Started by {markdown_literal(plain(view.owner_name, 60)) or 'another session'}; "
                   "only they or the teacher can stop it.")
        view = replace(view, message=f"This run is {view.status}.")
    st.caption(f"{public_dataset_name(view.dataset)} · {model['arch']} · z = {model['latent_dim']} · "
               f"{model['likelihood']} · beta = {view.train['beta']:g} · {view.epochs} epochs · batch "
               f"{view.train['batch_size']} · lr {view.train['lr']:g} · seed {view.train['seed']} · "
               f"{view.device or view.train['device']}")
    # Messages can quote what someone typed (a folder, a name): shown as typed, never as Markdown.
    if view.status == jobs.QUEUED:
        st.info(markdown_literal(jobs.progress_text(view)))
    elif view.status == jobs.RUNNING:
        st.progress(view.fraction, text=markdown_literal(jobs.progress_text(view)))
    elif view.status == jobs.FINISHED:
        st.success(markdown_literal(view.message))
    elif view.status == jobs.ERROR:
        st.error(markdown_literal(view.message))
    else:  # stopped, interrupted, or refused for NaN
        st.warning(markdown_literal(view.message))
    if not view.done and mine(view):
        st.button("Stop", key=f"stop_{view.id}", on_click=stop_run, args=(view.id,),
                  help="Ends the run after the current step and saves the last complete epoch.")
    if view.last_step and not view.done:
        recon, kl, total = st.columns(3)
        recon.metric("Reconstruction (this batch)", f"{view.last_step['recon']:.2f} nats")
        kl.metric("KL (this batch)", f"{view.last_step['kl']:.2f} nats")
        total.metric("−ELBO (this batch)", f"{view.last_step['total']:.2f} nats")
    if view.history or view.step_trace:
        st.plotly_chart(charts.loss_curves_figure(read_history(view.history), view.step_trace, view.epochs),
                        key=f"curves_{view.id}")
    pictures, bars = st.columns([3, 2])
    if view.preview is not None:
        count = len(view.preview) // 2
        pictures.image(image_grid(view.preview, columns=count, width=min(640, 80 * count)),
                       caption="Top: fixed test images. Bottom: their reconstructions from the current model.")
    if view.kl_per_dim:
        bars.plotly_chart(charts.kl_per_dim_figure(view.kl_per_dim), key=f"kl_{view.id}")
        bars.caption(f"KL per latent dimension (z1, z2, …) on the test set, last complete epoch. Grey bars, under "
                     f"{COLLAPSED_KL_NATS:g} nats, are dimensions the model "
                     "does not use: their q(z|x) has collapsed onto the prior.")
    announced = st.session_state.setdefault(ANNOUNCED_KEY, set())
    if announce and view.done and view.id not in announced and view.owner == ui.session_owner():
        announced.add(view.id)
        if view.checkpoint is not None:
            # A full rerun, so the sidebar picker lists the new checkpoint and selects it.
            ui.select_checkpoint(view.checkpoint.name)  # the name saved under (derived when the asked one was taken)
            st.rerun()


def draw_group(group: str) -> None:
    """A sweep: every run's state, the current run in full; Compare opens on the saved runs when all have ended."""
    manager = jobs.shared_manager()
    views = sweeps.group_views([job.view() for job in manager.jobs() if job.group == group]).get(group, [])
    if not views:
        return
    done = all(view.done for view in views)
    st.subheader(f"Sweep: {sweeps.group_title(group)} ({len(views)} runs, one after another)")
    for view in views:
        state = view.message if view.done else jobs.progress_text(view)
        if not mine(view):
            state = f"This run is {view.status}."  # its messages may quote a folder or a file: for its owner only
        st.text(f"- {view.name} · β = {view.train['beta']:g} · z = {view.model['latent_dim']} · "
                f"{view.model['likelihood']} · {view.status}: {plain(state)}")
    if not done and mine(views[0]):
        st.button("Stop the sweep", key=f"stop_group_{group}", on_click=sweeps.stop_group,
                  args=(manager, group, ui.session_owner(), ui.is_teacher()),
                  help="Ends the running run after its current step (it keeps its last complete epoch) and cancels "
                       "the queued ones; finished runs stay saved.")
    current = next((view for view in views if view.status == jobs.RUNNING), None) or \
        next((view for view in views if not view.done), views[-1])
    job = manager.get(current.id)
    if job is not None:
        draw_run(job, announce=False)
    announced = st.session_state.setdefault(ANNOUNCED_KEY, set())
    if done and group not in announced:
        announced.add(group)
        saved = sweeps.saved_names(views)
        if len(saved) >= 2:
            ui.compare_models(saved)
            pages.COMPARE.switch()
        elif saved:
            ui.select_checkpoint(saved[0])
            st.rerun()


def draw_job(job: jobs.Job) -> None:
    """A run, or the whole sweep it belongs to."""
    draw_group(job.group) if job.group else draw_run(job)


def group_done(job: jobs.Job) -> bool:
    if not job.group:
        return job.status in jobs.DONE
    return all(other.status in jobs.DONE for other in jobs.shared_manager().jobs() if other.group == job.group)


@st.fragment(run_every=1.0)
def live_run(job_id: str) -> None:
    job = jobs.shared_manager().get(job_id)
    if job is not None:
        draw_job(job)


def watched_run() -> jobs.Job | None:
    """The run this session watches (from the URL, else the session), drawn live while it runs; None when there is
    none."""
    manager = jobs.shared_manager()
    job_id = st.query_params.get("job") or st.session_state.get(JOB_KEY)
    current = manager.get(job_id)
    if current is not None:
        open_run(current.id)
        if group_done(current):
            draw_job(current)
        else:
            live_run(current.id)
    elif job_id:
        st.info("That run is not known to this server; its checkpoint, if saved, is in the picker.")
    return current


def runs_list(current: jobs.Job | None) -> None:
    """Every run this server knows, newest first, so any run (and its checkpoint) can be found again."""
    manager = jobs.shared_manager()
    me = ui.session_owner()
    job_id = st.query_params.get("job") or st.session_state.get(JOB_KEY)  # what the page opened on
    runs = manager.jobs()
    if not runs:
        return
    with st.expander(f"Runs on this server ({len(runs)})"):
        if len(runs) > RUNS_SHOWN:
            st.caption(f"The newest {RUNS_SHOWN}; every saved model is in the sidebar's picker.")
        views = [job.view() for job in runs]  # one snapshot per run per rerun
        groups = sweeps.group_views(views)
        for view in views[:RUNS_SHOWN]:
            if view.group and view.id != groups[view.group][0].id:
                continue  # a sweep is one entry, listed at its first run
            text, show, stop = st.columns([6, 1, 1])
            # st.text, not Markdown: a name typed by one student is shown to the others exactly as typed.
            who = plain(view.owner_name, 60) or ("you" if view.owner == me
                                                 else "a student" if view.owner else "a script")
            if view.group:
                members = groups[view.group]
                saved = sweeps.saved_names(members)
                text.text(f"Sweep {sweeps.group_title(view.group)} · {who} · {public_dataset_name(view.dataset)} · "
                          + ", ".join(f"{member.name}: {member.status}" for member in members))
                if mine(view):
                    show.button("Show", key=f"show_{view.id}", on_click=open_run, args=(view.id,),
                                disabled=current is not None and current.group == view.group)
                if len(saved) >= 2 and stop.button("Compare", key=f"compare_{view.id}"):
                    ui.compare_models(saved)
                    pages.COMPARE.switch()
                continue
            line = f"{view.name} · {who} · {public_dataset_name(view.dataset)} · {view.status}"
            if mine(view):  # its messages may quote a folder or a file: for its owner and the teacher only
                line += f" · {plain(jobs.progress_text(view) if not view.done else view.message)}"
            text.text(line)
            if mine(view):
                show.button("Show", key=f"show_{view.id}", on_click=open_run, args=(view.id,),
                            disabled=view.id == job_id)
                if not view.done:
                    stop.button("Stop", key=f"list_stop_{view.id}", on_click=stop_run, args=(view.id,))
