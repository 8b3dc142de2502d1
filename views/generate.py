"""Generate: the latent pad (decodes in the browser while you drag), prior samples, interpolation."""

import streamlit as st
import torch

import ui
from vae import generate
from vae.components import latent_pad, move_pad, pad_start, record_settled, take_handed_axes
from vae.history import COLLAPSED_KL_NATS, dimension_name, read_history
from vae.images import UPLOAD_TYPES, ImageInputError, image_grid, recipe_for
from vae.upload_cache import PreparedUploads

st.title("Generate")
st.markdown(
    "The decoder turns any code **z** into an image. Move through the latent space and watch what the "
    "model has learned: every point is a picture, and the prior p(z) = N(0, I) says where the model "
    "expects its codes to be."
)

checkpoint = ui.require_checkpoint()
model = checkpoint.model
latent_dim = model.config.latent_dim
dataset = ui.dataset_of(checkpoint)
test_images, test_labels = dataset.split("test")
dims = generate.dimensions_by_kl(latent_dim, read_history(checkpoint.history))
by_index = {d.index: d for d in dims}

# --- the latent pad -----------------------------------------------------------------------------
st.header("The latent pad")
st.markdown(
    "Each slider is one dimension of z, most informative first: the number beside it is its average "
    f"KL(q(z_i|x) ‖ p(z_i)) in nats. A dimension under {COLLAPSED_KL_NATS:g} nats has **collapsed**: "
    "the encoder leaves it at the prior, so moving it hardly changes the picture. Your browser runs "
    "the decoder itself, so the image follows the thumb while you drag; the 2-D pad moves two "
    "dimensions at once, the first across and the second up as on the Latent map (circles: one and "
    "two prior standard deviations)."
)
collapsed = [d for d in dims if d.unused]
if collapsed:
    st.caption(f"{len(collapsed)} of {latent_dim} dimensions have collapsed: " + ", ".join(d.name for d in collapsed)
               + ".")

@st.fragment  # moving the pad reruns only this section, not the sample grid and strips below
def pad_section() -> None:
    controls = st.columns([3, 1, 1])
    shown = controls[0].multiselect(
        "Sliders shown (at most 16)", [d.index for d in dims], default=[d.index for d in dims[:16]],
        format_func=lambda i: by_index[i].label, max_selections=16, key=f"pad_shown_{checkpoint.name}_z{latent_dim}",
    )
    pad_dims = None
    if latent_dim >= 2:
        order = [d.index for d in dims]
        across, up = generate.default_pair(dims)
        handed = take_handed_axes(checkpoint.name, latent_dim)  # a code from the map: its x and y axes
        if handed:
            (st.session_state[f"pad_x_{checkpoint.name}_z{latent_dim}"],
             st.session_state[f"pad_y_{checkpoint.name}_z{latent_dim}"]) = handed
        pad_x = controls[1].selectbox("Pad across", order, index=order.index(across), format_func=dimension_name,
                                      key=f"pad_x_{checkpoint.name}_z{latent_dim}")
        pad_y = controls[2].selectbox("Pad up", order, index=order.index(up), format_func=dimension_name,
                                      key=f"pad_y_{checkpoint.name}_z{latent_dim}")
        if pad_x == pad_y:
            st.warning("The pad needs two different dimensions; choose another one for 'Pad up'.")
        else:
            pad_dims = (pad_x, pad_y)

    with st.expander("Start from a data set image (its posterior mean)"):
        pick = st.columns([1, 1, 3])
        image_index = pick[0].number_input(f"Test image (0 to {len(test_images) - 1})", 0, len(test_images) - 1, 0,
                                           key="pad_image_index")
        ui.show_images(test_images[image_index:image_index + 1], width=84)
        if pick[1].button("Start the pad here", key="pad_from_image"):
            move_pad(checkpoint.name,
                     generate.posterior_means(model, test_images[image_index:image_index + 1])[0].tolist())

    start = pad_start(checkpoint.name, latent_dim)
    result = latent_pad(generate.browser_decoder(model), [by_index[i] for i in shown], start.z, start.token, pad_dims,
                        key="generate-pad")
    settled = record_settled(checkpoint.name, result.z)

    if settled is None:
        st.caption("Release a slider or the pad (or press Reset / Random) and "
                   "the code comes back here, with its image to download.")
    else:
        image = generate.decode(model, settled)[0]
        left, right = st.columns([1, 4])
        with left:
            ui.show_images(image.unsqueeze(0), width=112)
            st.download_button("Download PNG", generate.image_png(image), file_name=f"{checkpoint.name}-pad.png",
                               mime="image/png", key="pad_download")
        with right:
            st.markdown(f"**Your code** (‖z‖ = {generate.code_norms([settled])[0]:.2f}; a typical prior draw has about "
                        f"{generate.typical_norm(latent_dim):.2f}):")
            st.code("z = [" + ", ".join(f"{v:.3f}" for v in settled) + "]", language=None)


pad_section()

# --- samples from the prior ---------------------------------------------------------------------
st.header("Samples from the prior")
st.markdown("Draw z ~ N(0, I) and decode: this is how a VAE generates. The same seed gives the same samples.")
sample_controls = st.columns([1, 1, 3])
seed = sample_controls[0].number_input("Seed", 0, 2**31 - 1, 0, key="prior_seed")
count = sample_controls[1].select_slider("How many", [16, 32, 48, 64], value=32, key="prior_count")
st.image(image_grid(generate.prior_samples(model, count, seed), columns=16, width=min(960, 60 * 16)),
         caption=f"{count} samples, seed {seed}", output_format="PNG")

# --- interpolation ------------------------------------------------------------------------------
st.header("Interpolation")
st.markdown(
    "Encode two images, then decode codes along a path between their posterior means. **Linear** "
    "goes straight across; its middle codes are shorter than the ends, and in many dimensions short "
    "codes are rare under the prior. **Spherical** (slerp) follows the great circle, keeping the norm."
)


def pick_end(label: str, key: str, default_index: int):
    """One end of the path, (1, C, H, W): a test image by number, or an upload prepared like on Upload & draw."""
    source = st.radio(f"{label} image", ["test set", "upload"], horizontal=True, key=f"{key}_source")
    if source == "test set":
        index = st.number_input(f"{label} test image (0 to {len(test_images) - 1})", 0, len(test_images) - 1,
                                min(default_index, len(test_images) - 1), key=key)
        chosen = test_images[index:index + 1]
    else:
        upload = st.file_uploader(f"{label} image file", type=list(UPLOAD_TYPES), key=f"{key}_upload")
        if upload is None:
            st.info("Upload an image (PNG, JPEG, GIF, BMP, WebP or TIFF).")
            return None
        try:
            # decoded once per session
            prepared_files = st.session_state.setdefault("upload_prepared", PreparedUploads())
            chosen = prepared_files.prepare(upload.getvalue(), model.config.image_shape, upload.name,
                                            recipe_for(checkpoint.dataset_name, model.config.image_shape)).x
        except ImageInputError as error:
            st.error(str(error))
            return None
    ui.show_images(chosen, width=84)
    return chosen


default_first, default_second = generate.contrasting_pair(test_labels)
end_columns = st.columns(2)
with end_columns[0]:
    first = pick_end("First", "interp_a", default_first)
with end_columns[1]:
    second = pick_end("Second", "interp_b", default_second)
options = st.columns([1, 2])
steps = options[0].slider("Frames", 3, 16, 10, key="interp_steps")
methods = options[1].multiselect("Paths", list(generate.INTERPOLATIONS), default=list(generate.INTERPOLATIONS),
                                 key="interp_methods")
if first is None or second is None:
    st.stop()
codes = generate.posterior_means(model, torch.cat([first, second]))
for method in methods:
    path = generate.interpolate(codes[0], codes[1], steps, method)
    norms = generate.code_norms(path)
    st.image(image_grid(generate.decode(model, path), columns=steps, width=min(960, 72 * steps)),
             caption=f"{method}: ‖z‖ from {norms[0]:.2f} through {norms[steps // 2]:.2f} (middle) to {norms[-1]:.2f}",
             output_format="PNG")
if not methods:
    st.info("Choose at least one path.")
