"""Upload & draw: your own images through the model, step by step, and onto the latent map."""

import streamlit as st
import torch
from streamlit_drawable_canvas import st_canvas

import pages
import ui
import ui_maps
from vae import maps
from vae.history import read_history
from vae.images import UPLOAD_TYPES, ImageInputError, drawing_sentence, recipe_for
from vae.upload_cache import PreparedUploads
from vae.upload_report import describe, typicality_sentence
from vae.text import label_name, markdown_literal  # label names are folder names someone chose: shown as typed

st.title("Upload & draw")
st.write(
    "Give the model an image it has never seen. It is first made to look like the training data (the steps "
    "below), then encoded to a posterior q(z|x), decoded back, scored by its ELBO, and placed on the latent map "
    "among the data set."
)

checkpoint = ui.require_checkpoint()
store = ui_maps.projection_store(checkpoint)
codes = store.codes()
dataset = store.dataset
image_shape = tuple(checkpoint.model.config.image_shape)
noun = "digits" if dataset.name in ("mnist5k", "digits", "mnist") else "images"
recipe = recipe_for(checkpoint.dataset_name, image_shape)
prepared_files = st.session_state.setdefault("upload_prepared", PreparedUploads())  # each file decoded once per session

upload_tab, draw_tab = st.tabs(["Upload images", "Draw a digit"])
with upload_tab:
    files = st.file_uploader("Images (PNG, JPEG, GIF, BMP, WebP, TIFF)", type=list(UPLOAD_TYPES),
                             accept_multiple_files=True, key="upload_files")
with draw_tab:
    st.caption(drawing_sentence(recipe, image_shape))
    drawing = st_canvas(stroke_width=18, stroke_color="#000000", background_color="#ffffff", height=280, width=280,
                        drawing_mode="freedraw", return_image_data=True, key="upload_canvas")

items = [(file.name, file.getvalue()) for file in files or []]
drawn = drawing.image_bytes if drawing is not None else None
if drawn and drawing.json_data and drawing.json_data.get("objects"):
    items.append(("drawing", drawn))

if not items:
    st.info("Upload one or more images, or draw a digit, to see what the model makes of them.")
    st.stop()

st.subheader("Where they land")
method, dims, split = ui_maps.projection_picker(store, read_history(checkpoint.history), with_split=False)
projection = ui_maps.wait_for_projection(store, method, dims)

prepared, stars = [], []
for name, data in items:
    try:
        with st.spinner(f"Preparing {name}…"):
            prepared.append((name, prepared_files.prepare(data, image_shape, name, recipe)))
    except ImageInputError as error:
        st.error(markdown_literal(error))  # quotes the file's name, as typed

reports = []
for name, item in prepared:
    with st.spinner(f"Encoding {name}…"):
        report = describe(store, item.x, projection)
    reports.append((name, item, report))
    if report.placed is not None:
        stars.append((name, report.placed.coords[0]))

if projection is not None and stars:
    rows = codes.rows_of("all")
    figure = maps.latent_map_figure(projection.coords, rows, codes.labels, dataset.label_names, projection.axis_titles,
                                    prior_circles=projection.method == "latent" and codes.latent_dim == 2,
                                    new_points=stars)
    st.plotly_chart(figure, width="stretch", key="upload_map")
    notes = {report.placed.note for _, _, report in reports if report.placed is not None}
    for note in sorted(notes):
        st.caption(note)

for index, (name, item, report) in enumerate(reports):
    st.divider()
    st.subheader(markdown_literal(name))
    for warning in item.warnings:
        st.warning(warning)
    st.caption("Preprocessing, step by step")
    steps = [torch.from_numpy(step.image).float().permute(2, 0, 1) if step.image.ndim == 3
             else torch.from_numpy(step.image).float()[None] for step in item.steps]
    columns = st.columns(len(steps))
    for column, step, image in zip(columns, item.steps, steps):
        with column:
            ui.show_images(image[None], [step.title], width=120)
            st.caption(step.detail)
    left, middle, right = st.columns([1, 1, 2])
    with left:
        ui.show_images(item.x, ["model input"], width=140)
    with middle:
        ui.show_images(report.reconstruction, ["reconstruction"], width=140)
    with right:
        st.plotly_chart(maps.posterior_figure(report.mu, report.sigma), width="stretch",
                        key=f"upload_posterior_{index}")
    st.markdown(
        f"-ELBO {report.neg_elbo:.1f} nats = reconstruction {report.recon_nats:.1f} + KL {report.kl_nats:.1f} "
        f"(posterior mean decoded). **−log p(x) ≤ {report.neg_iwae:.1f} nats** (IWAE, K = {report.iwae_k}): "
        f"**{typicality_sentence(report.less_typical_than, noun)}** by the same estimate."
    )
    if st.button("Explain it step by step", key=f"upload_explain_{index}"):
        ui.hand_to_explain(checkpoint.name, name, item.x)
        pages.EXPLAIN.link("Open Explain with this image")
    st.caption("mu = (" + ", ".join(f"{m:+.2f}" for m in report.mu[:16]) + (", …" if len(report.mu) > 16 else "")
               + "), sigma = (" + ", ".join(f"{s:.2f}" for s in report.sigma[:16])
               + (", …" if len(report.sigma) > 16 else "") + ")")
    neighbours = store.images(report.neighbour_ids)
    labels = [markdown_literal(label_name(dataset.label_names, codes.labels[i])) for i in report.neighbour_ids]
    st.caption("Nearest data set images in latent space")
    ui.show_images(neighbours, [f"#{i} ({label}), d = {d:.2f}" for i, label, d in
                                zip(report.neighbour_ids, labels, report.neighbour_distances)], width=90)
    if st.button("Take its z to Generate", key=f"upload_send_{index}"):
        ui.hand_to_generate(checkpoint.name, report.mu)
        st.success("Sent. Open the Generate page to start the pad from it.")
        pages.GENERATE.link("Open Generate")
