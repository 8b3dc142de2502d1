"""Train: settings, a background run, and live curves, reconstructions and KL per dimension."""

import streamlit as st

import ui
import ui_data
import ui_runs
from ui_inputs import hyperparameter_input
from vae import jobs, sweeps
from vae.checkpoints import CheckpointError, default_root, validate_name
from vae.datasets import REGISTRY, dataset_names
from vae.datasets import FOLDER_COLORS, FOLDER_SIZES, folder_dataset_name
from vae.devices import available_devices, resolve_device
from vae.serving import JobLimitError, delete_model, student_models
from vae.settings import server_folders
from vae.text import markdown_literal, plain
from vae.train import TrainConfig, TrainConfigError

names = dataset_names()
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


def suggest_name() -> None:
    """A free checkpoint name for the chosen data set (a callback, so it may set the widget's value)."""
    st.session_state["train_name"] = manager.suggest_name(f"{st.session_state.get('train_dataset', names[0])}-run")


# ---- the run this session is watching (kept in the URL too, so a reload finds it)
current = ui_runs.watched_run()

# ---- a new run
running = current is not None and not ui_runs.group_done(current)
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
                                                help="One subfolder per label (torchvision's "
                                                     "ImageFolder layout), or a flat folder.")
        elif teacher:
            path_column.info("This server offers no folders (the operator sets LATENT_LAB_FOLDER_ROOTS).")
        else:
            path_column.info("Only the teacher can train on the server's folders.")
        folder_size = size_column.selectbox("Resize to", FOLDER_SIZES, key="train_folder_size",
                                            format_func=lambda s: f"{s}×{s}")
        folder_colour = colour_column.selectbox("Colour", FOLDER_COLORS, key="train_folder_colour")
    elif not entry.embedded:
        st.caption("Read from the server's data folder, or downloaded into it when the server is online.")
    devices = ["auto", *available_devices()]
    with st.form("train_form"):
        left, middle, right = st.columns(3)
        # Each input is built from its declaration in vae.hyperparameters, so it offers what training accepts.
        arch = hyperparameter_input(left, "arch", key="train_arch")
        # a map you can see, unlike the CLI's 20
        latent_dim = hyperparameter_input(left, "latent_dim", key="train_latent", value=2)
        likelihood = hyperparameter_input(left, "likelihood", key="train_likelihood")
        beta = hyperparameter_input(middle, "beta", key="train_beta")
        warmup = hyperparameter_input(middle, "warmup_epochs", key="train_warmup")
        # a first run in class takes a minute
        epochs = hyperparameter_input(middle, "epochs", key="train_epochs", value=5)
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
                                             format_func=lambda s: ("(just this run)" if s == "none"
                                                                    else f"{sweeps.SETTINGS[s]} in …"),
                                             help="A sweep: one run per value, named after the checkpoint name "
                                                  "(e.g. name-beta4), queued together; Compare opens on them when "
                                                  "they end.")
        sweep_text = sweep_right.text_input("… these values", key="train_sweep_values", placeholder="e.g. 1, 4, 8",
                                            help="2 to 6 values separated by commas: β numbers, "
                                                 "latent sizes, or bernoulli, gaussian.")
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
        ui_runs.open_run(job.id)
        st.session_state.pop("train_name", None)  # the next run gets a fresh suggested name
        st.session_state.pop("train_overwrite", None)  # replacing is asked for each time, never carried over
        st.rerun()
if refused := st.session_state.pop(ui_runs.REFUSED_KEY, None):
    st.error(refused)

# ---- every run this server knows, so any run (and its checkpoint) can be found again
ui_runs.runs_list(current)

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
