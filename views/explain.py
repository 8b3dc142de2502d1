"""Explain: one image through the chosen model, step by step, and the ELBO as a bound on log p(x)."""

import hashlib

import numpy as np
import streamlit as st
import torch

import ui
import ui_scores
from vae import explain, explain_charts
from vae.baselines import bits_per_dim
from vae.generate import dimensions_by_kl
from vae.history import dimension_name, final_numbers, read_history
from vae.inspect import SelectionError, pick_test_images
from vae.text import label_name

st.title("Explain")
st.write(
    "Follow one image through the model, from pixels to loss and back, with the model's own numbers at every "
    "step. Then see how far the ELBO, the number training maximises, sits below log p(x), the number it stands for."
)

checkpoint = ui.require_checkpoint()
dataset = ui.dataset_of(checkpoint)
model = checkpoint.model
history = read_history(checkpoint.history)
labels = dataset.label_names
handed = ui.image_handed_to_explain(checkpoint.name)

# --- which image --------------------------------------------------------------------------------
ways = ["by index", "by label"] if dataset.test_labels is not None and labels else ["by index"]
if handed is not None:
    ways.append("from Upload & draw")
if st.session_state.get("explain_how") not in ways:  # e.g. the hand-over belonged to the model chosen before
    st.session_state.pop("explain_how", None)
if handed is not None and st.session_state.get("_explain_seen") is not handed:  # a new hand-over: show it
    st.session_state["_explain_seen"] = handed
    st.session_state["explain_how"] = "from Upload & draw"
left, middle, right = st.columns(3)
how = left.radio("Image", ways, horizontal=True, key="explain_how")
if how == "from Upload & draw":
    x, caption = torch.as_tensor(handed["x"], dtype=torch.float32), handed["name"]
    image_key = "upload:" + hashlib.sha256(x.numpy().tobytes()).hexdigest()  # by content: two drawings share a name
    middle.write(f"Your image **{handed['name']}**, as prepared on the Upload & draw page.")
else:
    try:
        if how == "by label":
            label = middle.selectbox("Label", range(len(labels)), format_func=lambda i: label_name(labels, i),
                                     key="explain_label")
            members = pick_test_images(dataset, "label", count=len(dataset.test_images), seed=0, label=label)
            if st.session_state.get("explain_nth", 1) > len(members):  # another label may have fewer images
                st.session_state["explain_nth"] = len(members)
            nth = right.number_input(f"Which one ({len(members)} with this label)", 1, len(members), 1,
                                     key="explain_nth")
            index = members[int(nth) - 1]
        else:
            index = int(middle.number_input(f"Test image number (0 to {len(dataset.test_images) - 1})", 0,
                                            len(dataset.test_images) - 1, 0, key="explain_index"))
    except SelectionError as error:
        st.error(str(error))
        st.stop()
    x, image_key = dataset.test_images[index:index + 1], f"test:{index}"
    label = label_name(labels, dataset.test_labels[index] if dataset.test_labels is not None else None, missing=None)
    caption = f"test #{index}" + (f" ({label})" if label is not None else "")


# --- controls -----------------------------------------------------------------------------------
def _new_epsilon() -> None:
    st.session_state["explain_seed"] = int(st.session_state.get("explain_seed", 0)) + 1


def _move(step: int) -> None:
    position = explain.STAGES.index(st.session_state.get("explain_stage", explain.STAGES[0])) + step
    st.session_state["explain_stage"] = explain.STAGES[max(0, min(len(explain.STAGES) - 1, position))]


TITLES = {"image": "1 · the image x", "encoder": "2 · encoder → μ, log σ²", "sigma": "3 · σ", "epsilon": "4 · noise ε",
          "z": "5 · the code z", "decoder": "6 · decoder → p(x|z)", "reconstruction": "7 · reconstruction term",
          "kl": "8 · KL term", "elbo": "9 · the ELBO"}
left, middle, right = st.columns([1, 1, 1])
seed = int(left.number_input("Epsilon seed", 0, 2**31 - 1, 0, key="explain_seed",
                             help="The same seed draws the same ε."))
left.button("Draw a new epsilon", on_click=_new_epsilon, key="explain_resample", icon="🎲")
mode = middle.radio("Show", ["step by step", "all at once"], horizontal=True, key="explain_mode")
beta = right.slider("β (weight of KL in the objective)", 0.0, 4.0, float(checkpoint.beta), 0.1, key="explain_beta",
                    help="Changes only the number the optimiser would see for this image; nothing is retrained.")
if mode == "step by step":
    back, stage_column, forward = st.columns([1, 6, 1])
    back.button("◀ Back", on_click=_move, args=(-1,), key="explain_back")
    forward.button("Next ▶", on_click=_move, args=(1,), key="explain_next")
    current = stage_column.select_slider("Stage", explain.STAGES, format_func=TITLES.get, key="explain_stage",
                                         label_visibility="collapsed")
    shown = explain.STAGES[: explain.STAGES.index(current) + 1]
else:
    current, shown = None, explain.STAGES

trace = explain.forward_trace(model, x, seed)
order = [dimension.index for dimension in dimensions_by_kl(model.config.latent_dim, history)]
st.graphviz_chart(explain.architecture_dot(model, current))
st.caption(f"{checkpoint.name}: the layers and sizes are read from the model itself. Dimensions below are named "
           f"z1..z{model.config.latent_dim} and ordered by their average KL on the test set, most informative first.")

# --- the stages -----------------------------------------------------------------------------------
nats = lambda value: f"{value:.2f}"  # noqa: E731
for stage in shown:
    st.subheader(TITLES[stage])
    words, picture = st.columns([1, 1])
    if stage == "image":
        words.write("The model sees the image as numbers: one value per pixel between 0 (black) and 1 (white).")
        words.latex(r"x \in [0, 1]^{%d \times %d \times %d}" % tuple(model.config.image_shape))
        with picture:
            ui.show_images(torch.as_tensor(trace.image)[None], [caption], width=140)
    elif stage == "encoder":
        words.write("The **encoder** reads x and answers two numbers per latent dimension: where the code probably is "
                    "(μ), and the log of how unsure it is (log σ²). Together they are a Gaussian cloud of likely "
                    "codes, the **posterior** q(z|x).")
        words.latex(r"(\mu, \log\sigma^2) = \mathrm{encoder}(x)")
        words.latex(r"q(z \mid x) = \mathcal{N}(\mu, \mathrm{diag}\,\sigma^2)")
        picture.plotly_chart(explain_charts.dimension_bars(order, {"μ": trace.mu, "log σ²": trace.log_var},
                                                           title="encoder output"), key="explain_mu")
    elif stage == "sigma":
        words.write("The network outputs log σ², which can be any number; exponentiating half of it gives a positive "
                    "spread σ. The bars show μ with ±σ: a short bar is a dimension the encoder is sure about.")
        words.latex(r"\sigma = \exp\left(\tfrac12 \log \sigma^2\right)")
        picture.plotly_chart(explain_charts.dimension_bars(order, {"μ ± σ": trace.mu}, {"μ ± σ": trace.sigma},
                                                           title="q(z|x): μ ± σ"), key="explain_sigma")
    elif stage == "epsilon":
        words.write(f"Noise from the standard normal, one number per dimension, drawn with seed **{seed}** and "
                    "independent of x. *Draw a new epsilon* draws another; the same seed always draws the same one.")
        words.latex(r"\varepsilon \sim \mathcal{N}(0, I)")
        picture.plotly_chart(explain_charts.dimension_bars(order, {"ε": trace.eps}, title=f"ε (seed {seed})"),
                             key="explain_eps")
    elif stage == "z":
        words.write("The code is a sample from q(z|x), written so that all the randomness sits in ε: gradients flow "
                    "through μ and σ back into the encoder. This is the **reparameterisation** trick.")
        words.latex(r"z = \mu + \sigma \odot \varepsilon")
        picture.plotly_chart(explain_charts.dimension_bars(order, {"μ": trace.mu, "z": trace.z}, title="z beside μ"),
                             key="explain_z")
        words.caption("z = (" + ", ".join(f"{dimension_name(i)} {trace.z[i]:+.3f}" for i in order[:8])
                      + (", …" if len(order) > 8 else "") + ")")
    elif stage == "decoder":
        kind = ("a Bernoulli mean: the probability" if model.config.likelihood == "bernoulli"
                else "a Gaussian mean (σ fixed)")
        words.write(f"The **decoder** turns z into the parameters of the **likelihood** p(x|z): for every pixel {kind} "
                    "of its value. Shown as a picture, this is the image the model believes in for this z.")
        if model.config.likelihood == "bernoulli":
            words.latex(r"p(x \mid z) = \prod_i \mathrm{Bernoulli}\big(x_i;\ p_i\big)")
            words.latex(r"p = \mathrm{sigmoid}(\mathrm{decoder}(z))")
        else:
            words.latex(r"p(x \mid z) = \prod_i \mathcal{N}\big(x_i;\ \mathrm{decoder}(z)_i,\ %g^2\big)"
                        % model.config.gaussian_sigma)
        with picture:
            ui.show_images(torch.as_tensor(np.stack([trace.image, trace.decoded])), [caption, "decoded from z"],
                           width=140)
    elif stage == "reconstruction":
        best = ("0 at best and negative elsewhere" if model.config.likelihood == "bernoulli"
                else "highest where the decoder is right")
        words.write(f"How well does that belief explain the actual pixels? Each pixel's log-likelihood is {best}; the "
                    "dark pixels are the ones the decoder got wrong. Summed and negated, this is the "
                    "**reconstruction** term, in nats.")
        words.latex(r"\text{recon} = -\log p(x \mid z) = -\sum_i \log p(x_i \mid z)")
        words.latex(r"\text{recon} = %s \text{ nats}" % nats(trace.recon))
        picture.plotly_chart(explain_charts.pixel_log_likelihood_figure(trace.log_px_per_pixel), key="explain_pixels")
    elif stage == "kl":
        words.write("The **KL** term charges for how far q(z|x) is from the **prior** p(z) = N(0, I), dimension by "
                    "dimension: the information the code carries about "
                    "this x. A dimension at μ = 0, σ = 1 costs nothing.")
        words.latex(r"\mathrm{KL}_j = \tfrac12\left(\mu_j^2 + \sigma_j^2 - 1 - \log\sigma_j^2\right)")
        words.latex(r"\mathrm{KL} = \textstyle\sum_j \mathrm{KL}_j = %s \text{ nats}" % nats(trace.kl))
        picture.plotly_chart(explain_charts.dimension_bars(order, {"KL": trace.kl_per_dim}, title="KL per dimension",
                                                           y_title="nats"), key="explain_kl")
    elif stage == "elbo":
        words.write("The **ELBO** puts the two together. Training maximises it, so the loss the app shows is −ELBO. "
                    "With β ≠ 1 the optimiser sees a different number, recon + β·KL, but the ELBO itself does not "
                    "change.")
        words.latex(
            r"\mathrm{ELBO} = -\text{recon} - \mathrm{KL} = -%s - %s = %s" % (nats(trace.recon), nats(trace.kl),
                                                                              nats(trace.elbo)))
        words.latex(r"\text{recon} + \beta\,\mathrm{KL} = %s + %s \times %s = %s" % (
            nats(trace.recon), f"{beta:g}", nats(trace.kl), nats(trace.objective(beta))))
        with picture:
            a, b, c = st.columns(3)
            a.metric("ELBO (nats)", f"{trace.elbo:.2f}")
            b.metric(f"objective at β = {beta:g}", f"{trace.objective(beta):.2f}",
                     f"{trace.objective(beta) + trace.elbo:+.2f} vs −ELBO", delta_color="off")
            c.metric("−ELBO (nats)", f"{-trace.elbo:.2f}")
            st.caption("This is one draw of ε: another draw gives another "
                       "recon (the KL is exact). Training averages over draws.")

if mode == "step by step" and current != explain.STAGES[-1]:
    st.info("Press **Next ▶** for the next stage, or switch to *all at once*.")
    st.stop()

# --- the ELBO as a bound ---------------------------------------------------------------------------
st.divider()
st.header("How tight is the ELBO?")
st.write(
    "The ELBO is a lower bound on log p(x), the probability the model gives this image. The importance-weighted "
    "bound (IWAE, Burda et al. 2015) averages K weighted samples inside the log; K = 1 is the ELBO, and it can only "
    "tighten as K grows. The **effective sample size** says how many of the K samples really count: few means "
    "q(z|x) is a poor guide to where the true posterior is."
)
st.latex(r"\log p(x) \;\ge\; \log \frac1K \sum_{k=1}^K \frac{p(x \mid z_k)\,p(z_k)}{q(z_k \mid x)}, "
         r"\qquad z_k \sim q(z \mid x)")
ladder, grid, grid_error = ui_scores.bound_of_image(checkpoint, x, image_key)
exact = grid.log_px if grid is not None else None
rows = [{"estimate": rung.name, "log p(x), nats": f"{rung.value:.3f}",
         "effective sample size": "–" if rung.ess is None else f"{rung.ess:,.1f} of {rung.k:,}"} for rung in ladder]
if exact is not None:
    rows.append({"estimate": "exact (grid)", "log p(x), nats": f"{exact:.3f}", "effective sample size": "–"})
table, chart = st.columns([2, 3])
table.table(rows)
table.caption("The ELBO row averages the ELBO (closed-form KL) over 1,000 draws of ε; each IWAE row averages the "
              "bound over 5,000 / K disjoint groups of K samples. Seed 0, so the numbers stay put while you resample "
              "ε above.")
chart.plotly_chart(explain_charts.ladder_figure(ladder, exact), key="explain_ladder_chart")
last = ladder[-1]
if last.ess is not None and last.ess < 0.01 * last.k:
    st.caption(f"Only {last.ess:.1f} of the {last.k:,} samples carry the weight: q(z|x) is a poor guide to the true "
               "posterior here, so even this bound is probably still below log p(x).")
if model.config.latent_dim != 2:
    st.caption(f"With {model.config.latent_dim} latent dimensions log p(x) cannot be integrated on a grid; a model "
               "with a 2-D latent also shows the exact value and the true posterior.")
if grid is not None:
    gap = exact - ladder[0].value
    st.subheader("The true posterior p(z|x) under q(z|x)")
    words, picture = st.columns([1, 1])
    words.write(
        f"With a 2-D latent, p(x) = ∫ p(x|z) p(z) dz can be computed on a grid ({len(grid.z1)} × {len(grid.z2)} "
        f"points, spacing {grid.spacing:.3g}), and so can the true posterior p(z|x) = p(x|z) p(z) / p(x): the blue "
        "heat map. The red ellipse is what the encoder answers, q(z|x), at one σ. The gap between them *is* the ELBO's "
        "slack:"
    )
    words.latex(r"\log p(x) - \mathrm{ELBO} = \mathrm{KL}\big(q(z \mid x)\,\|\,p(z \mid x)\big)")
    words.latex(r"%.3f - (%.3f) = %.3f \text{ nats}" % (exact, ladder[0].value, gap))
    words.caption(f"Grid checks: {grid.edge_mass:.1e} of the posterior on its edge (wide enough), and log p(x) changes "
                  f"by {grid.halving_change:.1e} nats when every other point is dropped (fine enough).")
    picture.plotly_chart(explain_charts.true_posterior_figure(grid, trace.mu, trace.sigma),
                         key="explain_true_posterior")
elif grid_error:
    st.warning(f"The exact log p(x) is not shown: {grid_error}.")

# --- is my number good? ----------------------------------------------------------------------------
st.subheader("Is my number good?")
points, test_iwae, k = ui_scores.references(checkpoint, dataset)
pixels = int(np.prod(model.config.image_shape))
final = final_numbers(history)
numbers = [(f"this model ({checkpoint.name}): test −ELBO", -final.elbo if final else None,
            "after training, one sample per image"),
           (f"this model: test −IWAE, K = {k}", test_iwae,
            "a tighter estimate of −log p(x) (`python -m vae.likelihood` for K = 5,000)")]
reference_rows = [{"": name, "nats per image": f"{value:.2f}", "bits per dim": f"{bits_per_dim(value, pixels):.3f}",
                   "what": what} for name, value, what in numbers if value is not None]
reference_rows += [{"": point.name, "nats per image": f"{point.nats:.2f}",
                    "bits per dim": f"{bits_per_dim(point.nats, pixels):.3f}", "what": point.what} for point in points]
st.write(f"−log p(x) per test image ({len(dataset.test_images):,} images of {dataset.name}), lower is better, beside "
         "the same number for simpler models and for the best any model could do with this likelihood. Bits per dim = "
         f"nats / ({pixels} pixels × ln 2).")
st.table(reference_rows)

with st.expander("Glossary"):
    st.markdown(
        "- **nats**: the unit of log-probability with the natural log; 1 nat = 1/ln 2 ≈ 1.44 bits. Every loss here is "
        "in nats per image, so reconstruction and KL add up.\n"
        "- **prior** p(z) = N(0, I): where codes are before seeing any image; generating draws from it.\n"
        "- **posterior** q(z|x): the encoder's Gaussian guess of the codes that could have made x. The *true* "
        "posterior p(z|x) is what Bayes' rule says; q only approximates it.\n"
        "- **likelihood** p(x|z): how probable the decoder finds "
        "image x given code z (Bernoulli or Gaussian per pixel).\n"
        "- **reparameterisation**: writing a sample as z = μ + σ·ε with ε ~ N(0, I), so it is a smooth function of μ "
        "and σ that gradients can pass through.\n"
        "- **ELBO**: evidence lower bound, E_q[log p(x|z)] − KL(q(z|x) ‖ p(z)) ≤ log p(x).\n"
        "- **IWAE bound**: the ELBO with K importance-weighted samples inside the log; tighter as K grows.\n"
        "- **effective sample size**: (Σw)² / Σw² of the importance weights, between 1 and K."
    )
