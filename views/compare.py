"""Compare: two to six models side by side, each in one colour on every figure."""

import streamlit as st

import ui
import ui_scores
from vae import compare_charts as charts
from vae.checkpoints import CheckpointError
from vae.compare import (MAX_MODELS, MIN_MODELS, ComparedModel, comparability, reconstruction_grid, traverse,
                         traversal_values)
from vae.datasets import DataError
from vae.datasets.shapes import SHAPES_DATASETS
from vae.disentangle import MIG_DEFINITION
from vae.history import final_numbers, is_collapsed, last_kl_per_dim
from vae.images import image_grid
from vae.inspect import pick_test_images

KEY = ui.COMPARE_KEY
RECONSTRUCTED = 8  # test images per reconstruction row

st.title("Compare models")
st.write(
    "Put models side by side: how they learned, where they sit between compressing (a low **rate**, the KL) and "
    "redrawing well (a low **distortion**, the reconstruction term), what they make of the same images, and what "
    "each latent dimension does. Each model keeps its colour on every figure. Every loss is per image, in nats."
)


@st.fragment  # choosing another image redraws only the traversals, not the page's other figures
def traversals(loaded: list, scores: dict) -> None:
    st.subheader("Latent traversals")
    st.write("One row per active dimension (most KL first); across, that dimension goes from −3 to +3 prior standard "
             "deviations while the others stay put. A disentangled model changes one property of the picture per row.")
    left, right = st.columns(2)
    start = left.radio("The other dimensions stay at", ["a test image's posterior mean", "0, the centre of the prior"],
                       key="compare_base", horizontal=True)
    image_number = right.number_input("Test image number", min_value=0, value=0, step=1, key="compare_image",
                                      disabled=start != "a test image's posterior mean")
    values = traversal_values()
    columns = st.columns(2)
    for position, (model, colour, checkpoint, dataset) in enumerate(loaded):
        base = None
        if start == "a test image's posterior mean" and dataset is not None:
            base = dataset.test_images[int(image_number) % len(dataset.test_images)]
        score = scores.get(model.name)
        traversal = traverse(checkpoint.model, model.history, base,
                             factor_of=score.factor_of if score is not None else None)
        with columns[position % 2]:
            if traversal.images is None:
                st.info(f"{model.name}: every dimension has collapsed onto the prior; there is nothing to traverse.")
                continue
            picture = image_grid(traversal.images, columns=len(values), width=len(values) * 64)
            st.plotly_chart(charts.image_grid_figure(picture, traversal.row_labels, [f"{v:+g}" for v in values],
                                                     title=model.label, title_colour=colour, cell=52),
                            key=f"compare_traversal_{position}")
    if scores:
        st.caption("Each row also names the ground-truth factor that dimension knows most about, and the share of that "
                   "factor's entropy it explains.")


summaries = {s.name: s for s in ui.checkpoint_summaries() if not s.error}
options = list(summaries)
requested = st.session_state.pop(ui.COMPARE_REQUEST_KEY, None)
if requested is None and KEY not in st.session_state and st.query_params.get("models"):
    requested = st.query_params["models"].split(",")
if requested is not None:
    st.session_state[KEY] = [name for name in requested if name in summaries][:MAX_MODELS]
elif KEY not in st.session_state:
    shapes = [name for name in options if summaries[name].dataset_name in SHAPES_DATASETS]
    st.session_state[KEY] = (shapes if len(shapes) >= MIN_MODELS else options)[:MIN_MODELS]
gone = [name for name in st.session_state[KEY] if name not in summaries]
if gone:  # deleted (or broken) since it was chosen: take it off, keep the rest
    st.session_state[KEY] = [name for name in st.session_state[KEY] if name in summaries]
    st.warning(f"{', '.join(gone)} can no longer be read from the checkpoints folder (deleted, renamed or damaged); "
               "taken off the comparison.")
chosen = st.multiselect(f"Models ({MIN_MODELS} to {MAX_MODELS})", options, key=KEY, max_selections=MAX_MODELS,
                        format_func=lambda name: summaries[name].label)
st.query_params["models"] = ",".join(chosen)

loaded = []  # (ComparedModel, colour, Checkpoint, Dataset or None)
for name, colour in charts.model_colours(chosen).items():
    try:
        checkpoint = ui.get_checkpoint(summaries[name])
    except CheckpointError as error:
        st.warning(f"{name} is left out: {error}")
        continue
    try:
        dataset = ui.load_dataset_of(checkpoint)  # the same checks as every other page
    except DataError as error:
        st.warning(f"{name}'s data set cannot be loaded, so its images are left out: {error}")
        dataset = None
    loaded.append((ComparedModel.from_config(name, checkpoint.config), colour, checkpoint, dataset))
if len(loaded) < MIN_MODELS:
    st.info(f"Choose at least {MIN_MODELS} models to compare (a sweep from the Train page makes a set).")
    st.stop()

models = [(model, colour) for model, colour, _, _ in loaded]
comparable, sentence = comparability([model for model, _ in models])
(st.success if comparable else st.warning)(sentence)

scores = {}  # name -> Disentanglement, for models whose data set has ground-truth factors
for model, _, checkpoint, dataset in loaded:
    if dataset is not None and dataset.train_factors:
        with st.spinner(f"Measuring how {model.name}'s dimensions line up with the factors (once per model)…"):
            scores[model.name] = ui_scores.disentanglement_of(checkpoint)

rows = []
for model, _, _, _ in loaded:
    numbers = final_numbers(model.history)
    kl = last_kl_per_dim(model.history)
    rows.append({"model": model.name, "data set": model.dataset, "arch": model.arch, "z": model.latent_dim,
                 "β": model.beta, "likelihood": model.likelihood, "epochs": len(model.history),
                 "test recon": round(numbers.recon, 2) if numbers else None,
                 "test KL": round(numbers.kl, 2) if numbers else None,
                 "test −ELBO": round(numbers.recon + numbers.kl, 2) if numbers else None,
                 "active dims": sum(not is_collapsed(v) for v in kl) if kl else None,
                 "MIG": round(scores[model.name].mig, 3) if model.name in scores else None})
st.dataframe(rows, hide_index=True)

st.subheader("Loss curves")
st.caption("Test after each epoch (solid, with points) and the training average over each epoch (dotted).")
st.plotly_chart(charts.loss_curves_overlay(models), key="compare_curves")

st.subheader("The rate-distortion plane")
st.write(
    "Alemi et al. (2018, *Fixing a Broken ELBO*) read every VAE as a point here: the **rate** (KL, nats the code "
    "carries about the image) across, the **distortion** (reconstruction term) up. The −ELBO is their sum, so every "
    "dashed line is one −ELBO, and models on the same line are equally good density models. A larger β slides a "
    "model up and to the left: a cheaper code, a blurrier redraw. "
    "Each faint trail is the model's path through its epochs."
)
st.plotly_chart(charts.rate_distortion_figure(models), key="compare_plane")

st.subheader("The same test images, reconstructed by each model")
by_dataset = {}
for model, colour, checkpoint, dataset in loaded:
    if dataset is not None:
        by_dataset.setdefault(model.dataset, (dataset, []))[1].append((model, colour, checkpoint))
for dataset_name, (dataset, members) in by_dataset.items():
    indices = pick_test_images(dataset, "random", RECONSTRUCTED, seed=0)
    images = dataset.test_images[indices]
    grid = reconstruction_grid([checkpoint.model for _, _, checkpoint in members], images)
    picture = image_grid(grid, columns=len(indices), width=len(indices) * 84)
    st.plotly_chart(charts.image_grid_figure(picture, [f"{dataset_name} test"] + [m.name for m, _, _ in members],
                                             [f"#{i}" for i in indices],
                                             row_colours=["#333"] + [c for _, c, _ in members], cell=68),
                    key=f"compare_recon_{dataset_name}")
st.caption("Top row: test images (chosen at random, seed 0). Below: "
           "each model's reconstruction from the posterior mean.")

st.subheader("KL per latent dimension")
st.write("How many nats each dimension z1, z2, … carries about an image on the test set, at the last epoch. Faint bars "
         "are dimensions that have collapsed onto the prior (below the dotted line): the decoder ignores them.")
st.plotly_chart(charts.kl_per_dim_comparison(models), key="compare_kl")

traversals(loaded, scores)

if scores:
    st.subheader("Disentanglement against the ground truth")
    st.write("Each cell: the mutual information between a factor of the data set and a dimension's posterior mean "
             "(both binned), as a share of the factor's entropy. " + MIG_DEFINITION)
    columns = st.columns(2)
    for position, (model, colour, _, _) in enumerate((m, c, k, d) for m, c, k, d in loaded if m.name in scores):
        score = scores[model.name]
        dims = [index for index, _ in sorted(enumerate(last_kl_per_dim(model.history) or [0.0] * model.latent_dim),
                                             key=lambda item: -item[1])]
        with columns[position % 2]:
            st.plotly_chart(charts.mutual_information_figure(score, dims, f"{model.name}: MIG {score.mig:.3f}", colour),
                            key=f"compare_mi_{position}")
