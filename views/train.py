"""Train: settings, a background run, and live curves, reconstructions and KL per dimension."""

from dataclasses import replace

import streamlit as st

import ui
import ui_data
from ui_inputs import hyperparameter_input
from vae import charts, jobs, sweeps
from vae.checkpoints import CheckpointError, default_root, validate_name
from vae.data import REGISTRY, dataset_names
from vae.datasets_extra import FOLDER_COLORS, FOLDER_SIZES, folder_dataset_name
from vae.devices import available_devices, resolve_device
from vae.history import COLLAPSED_KL_NATS
from vae.images import image_grid
from vae.serving import JobLimitError, delete_model, student_models
from vae.settings import server_folders
from vae.text import markdown_literal, plain, public_dataset_name
from vae.train import TrainConfig, TrainConfigError

JOB_KEY = ui.TRAIN_JOB_KEY
names = dataset_names()
ANNOUNCED_KEY = "train_announced"
RUNS_SHOWN = 50  # the list outlives restarts now: a term's runs would make every rerun slow
manager = jobs.shared_manager()
settings = ui.settings()
me, teacher = ui.session_owner(), ui.is_teacher()

st.title("Train a VAE")
st.write(
    "Pick a data set and a model, then start. Training runs in the background on this server: you can "
    "watch it here, visit other pages, or reload, and it carries on. Every loss is per image, in nats: "
    "the **reconstruction** term says how badly the decoder redraws the image from z, the **KL** term how "
    "far the encoder's q(z|x) strays from the prior N(0, I). Their sum is the negative ELBO."
)


def open_run(job_id: str) -> None:
    st.session_state[JOB_KEY] = job_id
    st.query_params["job"] = job_id


def suggest_name() -> None:
    """A free checkpoint name for the chosen data set (a callback, so it may set the widget's value)."""
    st.session_state["train_name"] = manager.suggest_name(f"{st.session_state.get('train_dataset', names[0])}-run")


def mine(view: jobs.JobView) -> bool:
    return view.owner == me or teacher


def stop_run(job_id: str) -> None:
    try:
        manager.stop(job_id, by=me, teacher=teacher)
    except jobs.JobPermissionError as error:
        st.session_state["train_refused"] = str(error)


def draw_run(job: jobs.Job, announce: bool = True) -> None:
    """Everything about one run, read from one snapshot of it (announce: select its checkpoint when it is saved)."""
    view = job.view()
    model = view.model
    st.subheader(f"Run: {view.name}")
    if not mine(view):  # someone shared the link: they may watch, not act, and its messages stay theirs
        st.caption(f"Started by {markdown_literal(plain(view.owner_name, 60)) or 'another session'}; only they or the teacher can stop it.")
        view = replace(view, message=f"This run is {view.status}.")
    st.caption(f"{public_dataset_name(view.dataset)} · {model['arch']} · z = {model['latent_dim']} · {model['likelihood']} · "
               f"beta = {view.train['beta']:g} · {view.epochs} epochs · batch {view.train['batch_size']} · "
               f"lr {view.train['lr']:g} · seed {view.train['seed']} · {view.device or view.train['device']}")
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
        st.plotly_chart(charts.loss_curves_figure(view.history, view.step_trace, view.epochs), key=f"curves_{view.id}")
    pictures, bars = st.columns([3, 2])
    if view.preview is not None:
        count = len(view.preview) // 2
        pictures.image(image_grid(view.preview, columns=count, width=min(640, 80 * count)),
                       caption="Top: fixed test images. Bottom: their reconstructions from the current model.")
    if view.kl_per_dim:
        bars.plotly_chart(charts.kl_per_dim_figure(view.kl_per_dim), key=f"kl_{view.id}")
        bars.caption(f"KL per latent dimension (z1, z2, …) on the test set, last complete epoch. Grey bars, under "
                     f"{COLLAPSED_KL_NATS:g} nats, are dimensions the model does not use: their q(z|x) has collapsed onto the prior.")
    announced = st.session_state.setdefault(ANNOUNCED_KEY, set())
    if announce and view.done and view.id not in announced and view.owner == me:
        announced.add(view.id)
        if view.checkpoint is not None:
            # A full rerun, so the sidebar picker lists the new checkpoint and selects it.
            ui.select_checkpoint(view.checkpoint.name)  # the name saved under (derived when the asked one was taken)
            st.rerun()


def draw_group(group: str) -> None:
    """A sweep: every run's state, the current run in full; Compare opens on the saved runs when all have ended."""
    views = sweeps.group_views([job.view() for job in manager.jobs()]).get(group, [])
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
        st.button("Stop the sweep", key=f"stop_group_{group}", on_click=sweeps.stop_group, args=(manager, group, me, teacher),
                  help="Ends the running run after its current step (it keeps its last complete epoch) and cancels the "
                       "queued ones; finished runs stay saved.")
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
            st.switch_page("views/compare.py")
        elif saved:
            ui.select_checkpoint(saved[0])
            st.rerun()


def draw_job(job: jobs.Job) -> None:
    draw_group(job.group) if job.group else draw_run(job)


def group_done(job: jobs.Job) -> bool:
    return all(other.status in jobs.DONE for other in manager.jobs() if other.group == job.group) if job.group else job.status in jobs.DONE


@st.fragment(run_every=1.0)
def live_run(job_id: str) -> None:
    job = manager.get(job_id)
    if job is not None:
        draw_job(job)


# ---- the run this session is watching (kept in the URL too, so a reload finds it)
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

# ---- a new run
running = current is not None and not group_done(current)
with st.expander("New run", expanded=not running):
    base = st.selectbox("Data set", names, key="train_dataset", on_change=suggest_name,
                        format_func=lambda name: REGISTRY[name].title if name in REGISTRY else name)
    if "train_name" not in st.session_state:
        suggest_name()
    entry = REGISTRY[base]
    folder_path = None
    uploaded = None
    if base == "upload":
        uploaded = ui_data.upload_chooser()
    elif entry.prefix:
        # Only folders the operator configured, offered as a choice: nobody types a server path.
        offered = server_folders(settings.folder_roots) if teacher else []
        path_column, size_column, colour_column = st.columns([4, 1, 1])
        if offered:
            folder_path = path_column.selectbox("Image folder on this server", offered, key="train_folder",
                                                format_func=lambda path: path.name or str(path),
                                                help="One subfolder per label (torchvision's ImageFolder layout), or a flat folder.")
        elif teacher:
            path_column.info("This server offers no folders (the operator sets LATENT_LAB_FOLDER_ROOTS).")
        else:
            path_column.info("Only the teacher can train on the server's folders.")
        folder_size = size_column.selectbox("Resize to", FOLDER_SIZES, key="train_folder_size", format_func=lambda s: f"{s}×{s}")
        folder_colour = colour_column.selectbox("Colour", FOLDER_COLORS, key="train_folder_colour")
    elif not entry.embedded:
        st.caption("Read from the server's data folder, or downloaded into it when the server is online.")
    devices = ["auto", *available_devices()]
    with st.form("train_form"):
        left, middle, right = st.columns(3)
        # Each input is built from its declaration in vae.hyperparameters, so it offers what training accepts.
        arch = hyperparameter_input(left, "arch", key="train_arch")
        latent_dim = hyperparameter_input(left, "latent_dim", key="train_latent", value=2)  # a map you can see, unlike the CLI's 20
        likelihood = hyperparameter_input(left, "likelihood", key="train_likelihood")
        beta = hyperparameter_input(middle, "beta", key="train_beta")
        warmup = hyperparameter_input(middle, "warmup_epochs", key="train_warmup")
        epochs = hyperparameter_input(middle, "epochs", key="train_epochs", value=5)  # a first run in class takes a minute
        batch_size = hyperparameter_input(right, "batch_size", key="train_batch")
        lr = hyperparameter_input(right, "lr", key="train_lr")
        seed = hyperparameter_input(right, "seed", key="train_seed")
        device = left.selectbox("Device", devices, key="train_device",
                                help="auto uses a GPU when there is one.")
        middle.caption(f"auto picks **{resolve_device('auto')}** on this server.")
        name = right.text_input("Checkpoint name", key="train_name", max_chars=64,
                                help="Letters, digits, - and _. The model is saved under this name when the run ends.")
        overwrite = right.checkbox("Replace a checkpoint of the same name", key="train_overwrite",
                                   help="Only a model you trained in this session (the teacher: any model).")
        owner_name = left.text_input("Your name (optional)", key="train_owner_name", max_chars=60,
                                     help="Shown beside your runs in the list every student sees.")
        sweep_left, sweep_right = st.columns([1, 2])
        sweep_setting = sweep_left.selectbox("Repeat this run with", ["none", *sweeps.SETTINGS], key="train_sweep",
                                             format_func=lambda s: "(just this run)" if s == "none" else f"{sweeps.SETTINGS[s]} in …",
                                             help="A sweep: one run per value, named after the checkpoint name "
                                                  "(e.g. name-beta4), queued together; Compare opens on them when they end.")
        sweep_text = sweep_right.text_input("… these values", key="train_sweep_values", placeholder="e.g. 1, 4, 8",
                                            help="2 to 6 values separated by commas: β numbers, latent sizes, or bernoulli, gaussian.")
        start = st.form_submit_button("Start training", type="primary", key="train_start")

if start:
    try:
        validate_name(name.strip())
        if base == "upload" and not uploaded:
            raise TrainConfigError("Upload your pictures first (a folder or a zip), then start.")
        if base != "upload" and entry.prefix and folder_path is None:
            raise TrainConfigError("Choose one of the server's image folders to train on.")
        if base == "upload":
            dataset = uploaded
        else:
            dataset = folder_dataset_name(str(folder_path), folder_size, folder_colour) if entry.prefix else base
        config = TrainConfig(dataset=dataset, data_dir=None, epochs=int(epochs),
                             batch_size=int(batch_size), lr=float(lr), beta=float(beta), warmup_epochs=float(warmup),
                             seed=int(seed), device=device)
        model = {"arch": arch, "latent_dim": int(latent_dim), "likelihood": likelihood}
        rules = {"owner": me, "owner_name": plain(owner_name, 60), "teacher": teacher, "limits": settings}
        if sweep_setting == "none":
            job = manager.submit(name.strip(), model, config, root=default_root(), overwrite=overwrite, **rules)
        else:
            values = sweeps.parse_values(sweep_setting, sweep_text)
            job = sweeps.submit_sweep(manager, name.strip(), model, config, sweep_setting, values, root=default_root(),
                                      overwrite=overwrite, **rules)[0]
    except (CheckpointError, TrainConfigError, sweeps.SweepError, JobLimitError, jobs.JobPermissionError) as error:
        st.error(markdown_literal(error))
    else:
        open_run(job.id)
        st.session_state.pop("train_name", None)  # the next run gets a fresh suggested name
        st.session_state.pop("train_overwrite", None)  # replacing is asked for each time, never carried over
        st.rerun()
if refused := st.session_state.pop("train_refused", None):
    st.error(refused)

# ---- every run this server knows, so any run (and its checkpoint) can be found again
runs = manager.jobs()
if runs:
    with st.expander(f"Runs on this server ({len(runs)})"):
        if len(runs) > RUNS_SHOWN:
            st.caption(f"The newest {RUNS_SHOWN}; every saved model is in the sidebar's picker.")
        groups = sweeps.group_views([job.view() for job in runs])
        for job in runs[:RUNS_SHOWN]:
            view = job.view()
            if view.group and view.id != groups[view.group][0].id:
                continue  # a sweep is one entry, listed at its first run
            text, show, stop = st.columns([6, 1, 1])
            # st.text, not Markdown: a name typed by one student is shown to the others exactly as typed.
            who = plain(view.owner_name, 60) or ("you" if view.owner == me else "a student" if view.owner else "a script")
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
                    st.switch_page("views/compare.py")
                continue
            line = f"{view.name} · {who} · {public_dataset_name(view.dataset)} · {view.status}"
            if mine(view):  # its messages may quote a folder or a file: for its owner and the teacher only
                line += f" · {plain(jobs.progress_text(view) if not view.done else view.message)}"
            text.text(line)
            if mine(view):
                show.button("Show", key=f"show_{view.id}", on_click=open_run, args=(view.id,), disabled=view.id == job_id)
                if not view.done:
                    stop.button("Stop", key=f"list_stop_{view.id}", on_click=stop_run, args=(view.id,))

# ---- the teacher: unlock, and clean up students' models when their space runs out
with st.expander("Teacher", expanded=teacher):
    ui.teacher_unlock()
    if teacher:
        models = student_models(manager.jobs())
        used = sum(size for _, size in models)
        st.write(f"Students' models use {used / 2**20:,.1f} MB of {settings.student_quota_mb:g} MB. Oldest first:")
        for job, size in models[:20]:
            text, button = st.columns([6, 1])
            text.text(f"{job.name} · {plain(job.owner_name, 60) or 'a student'} · {size / 2**20:,.1f} MB")
            if button.button("Delete", key=f"delete_{job.id}"):
                try:
                    delete_model(manager, job.id, teacher)
                except (CheckpointError, jobs.JobPermissionError) as error:
                    st.error(markdown_literal(error))
                else:
                    st.rerun()
