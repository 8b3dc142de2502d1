"""Reconstructions: test images beside what the model redraws from their codes."""

import streamlit as st
import torch

import ui
from vae.inspect import SelectionError, pick_test_images, reconstruct
from vae.text import label_name, markdown_literal  # label names are folder names someone chose: shown as typed

st.title("Reconstructions")
st.write(
    "Each row is one test image the model never trained on. The encoder turns it into q(z|x), a Gaussian "
    "over codes. The **mean** column decodes the centre of that Gaussian; the **sample** columns decode "
    "codes drawn from it, z = μ + σ·ε, which is what training sees. Under each picture: its reconstruction "
    "term −log p(x|z), and the KL of q(z|x) from the prior (the same for the whole row), in nats."
)

checkpoint = ui.require_checkpoint()
dataset = ui.dataset_of(checkpoint)
labels = dataset.label_names

left, right = st.columns([2, 1])
ways = {"at random": "random", "by label": "label", "by index": "index"}
if dataset.test_labels is None:
    ways.pop("by label")
how = left.radio("Pick test images", list(ways), horizontal=True, key="recon_how")
count = right.slider("How many", 1, 16, 6, key="recon_count")
label = indices = None
seed = 0
if ways[how] in ("random", "label"):
    seed = left.number_input("Seed", 0, 2**31 - 1, 0, key="recon_seed", help="Change it for another set of images.")
if ways[how] == "label":
    label = right.selectbox("Label", range(len(labels)), format_func=lambda i: label_name(labels, i), key="recon_label")
if ways[how] == "index":
    indices = left.text_input(f"Test image numbers (0 to {len(dataset.test_images) - 1})", "0, 1, 2, 3, 4, 5",
                              key="recon_indices")
samples = right.slider("Sampled reconstructions per image", 0, 6, 3, key="recon_samples")

try:
    chosen = pick_test_images(dataset, ways[how], count=count, seed=seed, label=label, indices=indices)
except SelectionError as error:
    st.error(str(error))
    st.stop()

result = reconstruct(checkpoint.model, dataset.test_images[chosen], samples=samples, seed=seed)
width = 96
for row, index in enumerate(chosen):
    label = label_name(labels, dataset.test_labels[index] if dataset.test_labels is not None else None, missing=None)
    name = f" ({markdown_literal(label)})" if label is not None else ""
    kl = float(result.kl[row])
    pictures = torch.cat([result.originals[row:row + 1], result.mean[row:row + 1], result.samples[:, row]])
    captions = [f"test #{index}{name}", f"mean: recon {float(result.mean_recon[row]):.1f}, KL {kl:.1f}"]
    captions += [f"sample {s + 1}: recon {float(result.sample_recon[s, row]):.1f}" for s in range(samples)]
    ui.show_images(pictures, captions, width=width)
