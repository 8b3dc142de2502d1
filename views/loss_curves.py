"""Loss curves: the chosen model's training history, epoch by epoch."""

import streamlit as st

import ui
from vae import charts
from vae.history import COLLAPSED_KL_NATS, last_kl_per_dim, read_history

st.title("Loss curves")
st.write(
    "How the chosen model learned: the reconstruction term, the KL term and their sum (the negative ELBO), "
    "per image in nats, on the training images (averaged over each epoch) and on held-out test images "
    "(after each epoch). A test curve that climbs while the training curve falls is overfitting."
)

checkpoint = ui.require_checkpoint()
history = read_history(checkpoint.history)
train = checkpoint.config["train"]
warmup = float(train.get("warmup_epochs") or 0)
st.caption(f"{checkpoint.name} · {ui.public_dataset_name(checkpoint.dataset_name)} · β = {checkpoint.beta:g}"
           + (f", warmed up from 0 over {warmup:g} epochs" if warmup else "")
           + f" · {len(history)} epoch(s) · status: {train.get('status', 'finished')}")
if not history:
    st.info("This checkpoint has no per-epoch history to draw.")
    st.stop()

st.plotly_chart(charts.loss_curves_figure(history), key="history_curves")
st.subheader("KL per latent dimension, last epoch")
st.write("Each bar is how many nats one dimension of z (z1, z2, …) carries about an image, on the test set. "
         f"Dimensions under {COLLAPSED_KL_NATS:g} nats (grey) have collapsed onto the prior: the decoder ignores them.")
if last_kl_per_dim(history):
    st.plotly_chart(charts.kl_per_dim_figure(last_kl_per_dim(history)), key="history_kl")
else:
    st.info("This checkpoint did not record KL per dimension.")
with st.expander("The numbers"):
    st.dataframe(charts.history_table(history), hide_index=True)
