"""Home: what a VAE is, the ELBO, the chosen model's own numbers, and the way to every page."""

import streamlit as st

import pages
import ui
from vae.history import final_numbers, read_history

st.title("Latent Lab")
st.write(
    "A **variational autoencoder** (VAE) learns to squeeze an image into a few numbers, a latent code "
    "**z**, and to draw the image back from them. The **encoder** looks at an image x and answers not one "
    "code but a small cloud of likely codes, a Gaussian q(z|x) with a mean μ(x) and a spread σ(x). The "
    "**decoder** p(x|z) turns any code back into an image. Because every cloud is pulled toward the "
    "same standard normal **prior** p(z) = N(0, I), the space of codes stays smooth and filled in: codes "
    "drawn from the prior decode to new images, and nearby codes decode to similar ones."
)
st.write("Training maximises the **evidence lower bound** (ELBO) of every training image:")
st.latex(r"\mathrm{ELBO}(x) = \underbrace{\mathbb{E}_{q(z\mid x)}\big[\log p(x\mid z)\big]}_{-\text{reconstruction}}"
         r" \;-\; \underbrace{\mathrm{KL}\big(q(z\mid x)\,\|\,p(z)\big)}_{\text{KL}}")
st.write(
    "The first term rewards redrawing x well from a code sampled as z = μ + σ·ε (the reparameterisation "
    "trick, so gradients flow through the sample). The second charges for every nat of information the "
    "code carries about x beyond the prior; for a Gaussian it has a closed form per latent dimension:"
)
st.latex(r"\mathrm{KL}_j = \tfrac12\left(\mu_j^2 + \sigma_j^2 - 1 - \log \sigma_j^2\right)")
st.write("The loss the app shows is the negative ELBO, reconstruction + KL, per image, in nats. "
         "A β-VAE multiplies the KL term by β.")

checkpoint = ui.selected_summary()  # its config.json is enough here: no need to load the model
numbers = final_numbers(read_history(checkpoint.history)) if checkpoint is not None else None
if numbers is not None:
    st.subheader(f"The chosen model: {checkpoint.name}")
    st.write(f"Trained on **{ui.public_dataset_name(checkpoint.dataset_name)}** for {numbers.epochs} epoch(s) with β = "
             f"{checkpoint.beta:g}. On its test images, on average:")
    st.latex(rf"\underbrace{{{numbers.elbo:.2f}}}_{{\mathrm{{ELBO}}}} \;=\; "
             rf"\underbrace{{{-numbers.recon:.2f}}}_{{-\text{{reconstruction}}}} \;-\; "
             rf"\underbrace{{{numbers.kl:.2f}}}_{{\text{{KL}}}} \quad \text{{nats per image}}")
    recon, kl, elbo = st.columns(3)
    recon.metric("Reconstruction −log p(x|z)", f"{numbers.recon:.2f} nats")
    kl.metric("KL(q(z|x) ‖ p(z))", f"{numbers.kl:.2f} nats")
    elbo.metric("ELBO", f"{numbers.elbo:.2f} nats")
elif checkpoint is not None:
    st.info(f"{checkpoint.name} has no training history to show.")
else:
    st.info("Choose a model in the sidebar to see its own numbers here, or train one.")

st.subheader("Where to go")
pages.TRAIN.link("Train: pick data and a model, watch the losses and reconstructions live")
pages.LOSS_CURVES.link("Loss curves: reconstruction, KL and total per epoch, KL per dimension")
pages.RECONSTRUCTIONS.link("Reconstructions: test images, their posterior-mean and sampled redraws")
pages.LATENT_MAP.link("Latent map: every test image as a point in z space")
pages.GENERATE.link("Generate: drag through z and watch the decoder, sample the prior, interpolate")
pages.UPLOAD.link("Upload & draw: your own image, encoded, scored and placed on the map")
pages.EXPLAIN.link("Explain: one image through the model step by step, and how tight the ELBO is")
pages.COMPARE.link("Compare: 2 to 6 models side by side, the rate-distortion plane, latent traversals, MIG")
