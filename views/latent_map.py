"""Latent map: every data set image as a point at its posterior mean, projected to 2-D."""

import numpy as np
import streamlit as st

import pages
import ui
import ui_maps
from vae import maps
from vae.disentangle import factors_of_rows, is_categorical
from vae.history import read_history
from vae.projection import umap_warmup_status
from vae.text import label_name, markdown_literal  # label names are folder names someone chose: shown as typed

CHART = "latent_map_chart"

st.title("Latent map")
st.write(
    "The encoder turns each image x into a posterior q(z|x) = N(mu, sigma²). Here every image of the data set "
    "is drawn at its mean mu, coloured by its label. Images the model finds alike land close together; "
    "the KL term pulls all of them towards the prior N(0, I). Click a point to see its image, its "
    "reconstruction and its posterior, and to take its code to the Generate page."
)

checkpoint = ui.require_checkpoint()
store = ui_maps.projection_store(checkpoint)
codes = store.codes()
dataset = store.dataset
model = ui_maps.map_model_key(store)  # the picked point and the projection belong to this model
method, dims, split = ui_maps.projection_picker(store, read_history(checkpoint.history))

warmup = umap_warmup_status()
if warmup.ready:
    st.caption(f"UMAP is compiled and ready (took {warmup.elapsed:.0f} s at server start).")
elif warmup.stage == "failed":
    st.caption(f"UMAP could not be prepared: {warmup.error}. PCA and t-SNE still work.")
elif warmup.stage == "not started":
    st.caption("UMAP compiles itself the first time it is chosen (half "
               "a minute or more); the other projections are quick.")
else:
    st.caption(f"UMAP is compiling in the background ({warmup.stage}, {warmup.elapsed:.0f} s so far); "
               "the other projections work now.")

projection = ui_maps.wait_for_projection(store, method, dims)
if projection is None:
    st.stop()

rows = codes.rows_of(split)
if codes.total_images > len(codes):
    st.caption(f"Showing a seeded random {len(codes):,} of the {codes.total_images:,} images.")
st.caption(f"{projection.note} {len(rows):,} points; "
           + ("read from the cache beside the checkpoint." if projection.source == "disk"
              else f"computed in {projection.seconds:.2f} s."))
if store.disk_error:
    st.caption(store.disk_error)


def _pick(picked: int | None, for_model: str = model) -> None:
    if picked is not None:
        st.session_state.setdefault(ui_maps.MAP_SELECTED_KEY, {})[for_model] = int(picked)


def _pick_from_chart() -> None:
    _pick(maps.selected_id((st.session_state.get(CHART) or {}).get("selection", {}).get("points", [])))


def _pick_from_number() -> None:
    _pick(st.session_state.get("map_pick"))


selected = st.session_state.get(ui_maps.MAP_SELECTED_KEY, {}).get(model)
if selected is not None and not 0 <= selected < len(codes):
    selected = None
is_2d_latent = projection.method == "latent" and codes.latent_dim == 2
ellipse = (codes.mu[selected], codes.sigma[selected]) if selected is not None and is_2d_latent else None

# ground truth that travels with the data set ({} for most)
factors = factors_of_rows(dataset, codes.split, codes.index)
colour_by = st.radio("Colour by", ["label", *factors], horizontal=True, key="map_colour") if factors else "label"
point_labels, label_names, colour_scale = codes.labels[rows], dataset.label_names, None
if colour_by != "label" and is_categorical(factors[colour_by]):
    point_labels = factors[colour_by][rows]
    label_names = dataset.label_names if (factors[colour_by] == codes.labels).all() else None
elif colour_by != "label":
    colour_scale = (colour_by, factors[colour_by][rows])

map_column, side_column = st.columns([3, 2]) if is_2d_latent else (st.container(), None)
with map_column:
    figure = maps.latent_map_figure(projection.coords[rows], rows, point_labels, label_names, projection.axis_titles,
                                    selected=selected, prior_circles=is_2d_latent, ellipse=ellipse,
                                    colour_scale=colour_scale)
    st.plotly_chart(figure, on_select=_pick_from_chart, selection_mode="points", key=CHART, width="stretch")
    st.number_input("…or show image number", min_value=0, max_value=len(codes) - 1, value=None, step=1, key="map_pick",
                    on_change=_pick_from_number, help="Every point's number shows when you hover over it.")
if is_2d_latent:
    with side_column:
        st.markdown("**What the decoder draws across this map** (Kingma & Welling, fig. 4)")
        shown = projection.coords[rows]
        low, high = np.percentile(shown, 1, axis=0), np.percentile(shown, 99, axis=0)
        steps = st.slider("Grid size", 8, 25, 15, key="map_grid")
        st.plotly_chart(maps.manifold_figure(store.model, (float(low[0]), float(high[0])),
                                             (float(low[1]), float(high[1])), steps), width="stretch",
                        key="map_manifold")
        st.caption("The circles are the prior's one and two sigma: 39% and 86% of p(z) lies inside them. Codes the "
                   "data never uses (gaps between the clusters) decode to blurs or in-betweens: the \"holes\" of the "
                   "latent space.")

if selected is None:
    st.info("Click a point on the map (or type an image number) to inspect it.")
    st.stop()

st.subheader(f"Image #{selected}")
label = int(codes.labels[selected])
split_name = "train" if codes.split[selected] == 0 else "test"
image = store.images([selected])
reconstruction = store.reconstructions([selected])
left, middle, right = st.columns([1, 1, 2])
with left:
    ui.show_images(image, [f"{split_name} image, label {markdown_literal(label_name(dataset.label_names, label))}"],
                   width=140)
with middle:
    ui.show_images(reconstruction, ["reconstruction (decoded mean)"], width=140)
with right:
    st.plotly_chart(maps.posterior_figure(codes.mu[selected], codes.sigma[selected]), width="stretch",
                    key="map_posterior")
mu_text = ", ".join(f"{m:+.2f}" for m in codes.mu[selected][:16])
st.caption(f"mu = ({mu_text}{', …' if codes.latent_dim > 16 else ''}); -ELBO {codes.neg_elbo[selected]:.1f} nats.")

ui.hand_to_generate(checkpoint.name, codes.mu[selected], projection.dims)  # the pad takes this map's x and y
st.success("Sent this image's z (its posterior mean) to the Generate page.")
pages.GENERATE.link("Open it on Generate")
