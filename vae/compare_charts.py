"""Plotly figures of the Compare page; each model keeps one colour on every figure.

`models` is a list of (ComparedModel, colour) pairs. Every loss is per image, in nats.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from vae.compare import ComparedModel, equal_elbo_levels, rate_distortion
from vae.history import COLLAPSED_KL_NATS, dimension_name, is_collapsed, last_kl_per_dim

MODEL_COLOURS = qualitative.D3[:6]  # six well-separated colours, one per compared model


def model_colours(names: list[str]) -> dict[str, str]:
    """One colour per model name, in the order chosen (the same on every figure of the page)."""
    return {name: MODEL_COLOURS[i % len(MODEL_COLOURS)] for i, name in enumerate(names)}


def _faint(colour: str, alpha: float) -> str:
    colour = colour.lstrip("#")
    red, green, blue = (int(colour[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({red}, {green}, {blue}, {alpha})"


def loss_curves_overlay(models: list[tuple[ComparedModel, str]]) -> go.Figure:
    """−ELBO, reconstruction and KL per epoch (three panels); test solid, train dotted; one colour per model."""
    figure = make_subplots(rows=1, cols=3, subplot_titles=("−ELBO (recon + KL)", "Reconstruction −log p(x|z)",
                                                           "KL(q(z|x) ‖ p(z))"), horizontal_spacing=0.07)
    for model, colour in models:
        epochs = [record.epoch for record in model.history]
        for split, dash, losses in (("test", "solid", [r.test for r in model.history]),
                                    ("train", "dot", [r.train for r in model.history])):
            terms = ([loss.total for loss in losses], [loss.recon for loss in losses], [loss.kl for loss in losses])
            for column, values in enumerate(terms, start=1):
                figure.add_trace(go.Scatter(
                    x=epochs, y=values, mode="lines+markers" if split == "test" else "lines",
                    name=f"{model.name}, {split}", legendgroup=model.name, showlegend=column == 1,
                    line={"color": colour, "dash": dash, "width": 2 if split == "test" else 1.5}, marker={"size": 5},
                    hovertemplate=f"{model.name} ({split})<br>epoch %{{x}}<br>%{{y:.2f}} nats<extra></extra>",
                ), row=1, col=column)
    figure.update_xaxes(title_text="epoch")
    figure.update_yaxes(title_text="nats per image", row=1, col=1)
    figure.update_yaxes(rangemode="tozero", row=1, col=3)
    figure.update_layout(height=380, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                         legend={"orientation": "h", "y": -0.25})
    return figure


def rate_distortion_figure(models: list[tuple[ComparedModel, str]]) -> go.Figure:
    """The rate-distortion plane (Alemi et al. 2018): KL across, reconstruction up; each model a trail
    through its test epochs ending in a large point; dashed lines of equal −ELBO (slope −1)."""
    figure = go.Figure()
    rates, distortions = [], []
    for model, colour in models:
        rate, distortion = rate_distortion(model.history)
        if not len(rate):
            continue
        rates.append(rate)
        distortions.append(distortion)
        figure.add_trace(go.Scatter(x=rate, y=distortion, mode="lines+markers",
                                    line={"color": _faint(colour, 0.35), "width": 2},
                                    marker={"size": 5, "color": _faint(colour, 0.35)}, legendgroup=model.name,
                                    showlegend=False, customdata=[record.epoch for record in model.history],
                                    hovertemplate=f"{model.name}, epoch %{{customdata}}<br>KL %{{x:.2f}}, recon "
                                                  "%{y:.2f} nats<extra></extra>"))
        figure.add_trace(go.Scatter(x=rate[-1:], y=distortion[-1:], mode="markers+text", name=model.label,
                                    legendgroup=model.name,
                                    marker={"size": 15, "color": colour, "line": {"color": "white", "width": 1.5}},
                                    text=[f"β = {model.beta:g}"], textposition="top right",
                                    hovertemplate=f"{model.name}: KL %{{x:.2f}} + recon %{{y:.2f}} = "
                                                  f"{rate[-1] + distortion[-1]:.2f} nats<extra></extra>"))
    if rates:
        all_rate, all_distortion = np.concatenate(rates), np.concatenate(distortions)
        pad_x = max(0.08 * np.ptp(all_rate), 1.0)
        pad_y = max(0.08 * np.ptp(all_distortion), 1.0)
        x_range = [max(0.0, all_rate.min() - pad_x), all_rate.max() + pad_x]
        y_range = [max(0.0, all_distortion.min() - pad_y), all_distortion.max() + pad_y]
        for level in equal_elbo_levels(all_rate + all_distortion):
            figure.add_trace(go.Scatter(x=x_range, y=[level - x_range[0], level - x_range[1]], mode="lines",
                                        line={"color": "#999", "dash": "dash", "width": 1}, showlegend=False,
                                        hoverinfo="skip"))
            # named where it leaves the plot: along the right edge, else under the top edge
            right_y = level - x_range[1]
            if y_range[0] <= right_y <= y_range[1]:
                at, anchor = (x_range[1], right_y), ("right", "bottom")
            else:
                at, anchor = (level - y_range[1], y_range[1]), ("left", "top")
            if x_range[0] <= at[0] <= x_range[1]:
                figure.add_annotation(x=at[0], y=at[1], text=f"−ELBO {level:g}", showarrow=False,
                                      font={"size": 10, "color": "#777"}, xanchor=anchor[0], yanchor=anchor[1])
        figure.update_xaxes(range=x_range)
        figure.update_yaxes(range=y_range)
    figure.update_layout(height=460, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                         xaxis_title="rate: KL(q(z|x) ‖ p(z)), nats per image",
                         yaxis_title="distortion: −E_q log p(x|z), nats per image",
                         legend={"orientation": "h", "y": -0.2})
    return figure


def kl_per_dim_comparison(models: list[tuple[ComparedModel, str]]) -> go.Figure:
    """KL per latent dimension at the last epoch, one bar group per dimension z1..zD, one colour per model;
    bars under the collapse threshold (vae.history.COLLAPSED_KL_NATS) are drawn faint."""
    figure = go.Figure()
    widest = 0
    for model, colour in models:
        kl = last_kl_per_dim(model.history) or []
        widest = max(widest, len(kl))
        collapsed = [is_collapsed(value) for value in kl]
        figure.add_trace(go.Bar(
            x=[dimension_name(i) for i in range(len(kl))], y=kl, name=model.name,
            marker={"color": [_faint(colour, 0.3) if c else colour for c in collapsed],
                    "line": {"color": colour, "width": 1}},
            customdata=["collapsed" if c else "active" for c in collapsed],
            hovertemplate=f"{model.name}<br>%{{x}}: %{{y:.3f}} nats (%{{customdata}})<extra></extra>",
        ))
    figure.add_hline(y=COLLAPSED_KL_NATS, line_dash="dot", line_color="#888",
                     annotation_text=f"collapsed below {COLLAPSED_KL_NATS:g} nats", annotation_position="top right")
    figure.update_xaxes(categoryorder="array", categoryarray=[dimension_name(i) for i in range(widest)],
                        title="latent dimension")
    figure.update_layout(barmode="group", height=340, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                         yaxis_title="KL, nats per image", legend={"orientation": "h", "y": -0.3})
    return figure


def image_grid_figure(picture, row_labels: list[str], column_labels: list[str], title: str = "",
                      title_colour: str = "#333", row_colours: list[str] | None = None, cell: int = 60) -> go.Figure:
    """A tiled picture (PIL; R rows x S columns of images, from vae.images.image_grid) with its rows and
    columns named; row names may take their model's colour. `cell`: the height in pixels drawn per image row
    (the picture keeps its aspect, so a figure taller than that leaves blank bands). For traversals and
    reconstructions."""
    array = np.asarray(picture.convert("RGB"))
    height, width = array.shape[:2]
    rows, columns = max(len(row_labels), 1), max(len(column_labels), 1)
    if row_colours:
        row_labels = [f"<span style='color:{c}'><b>{label}</b></span>" for label, c in zip(row_labels, row_colours)]
    figure = go.Figure(go.Image(z=array, hoverinfo="skip"))
    figure.update_yaxes(tickvals=[(r + 0.5) * height / rows for r in range(rows)], ticktext=row_labels, showgrid=False,
                        zeroline=False)
    figure.update_xaxes(tickvals=[(c + 0.5) * width / columns for c in range(columns)], ticktext=column_labels,
                        side="top", showgrid=False, zeroline=False, showticklabels=any(column_labels))
    figure.update_layout(height=int((60 if title else 30) + cell * rows),
                         margin={"l": 10, "r": 10, "t": 60 if title else 30, "b": 5},
                         title={"text": title, "font": {"color": title_colour, "size": 15}, "y": 0.99, "yanchor": "top"}
                         if title else None)
    return figure


def mutual_information_figure(result, latent_dims: list[int], title: str, colour: str) -> go.Figure:
    """Heatmap of I(v_k; z_j) / H(v_k): factors as rows, the given latent dimensions as columns."""
    shares = result.normalised[:, latent_dims]
    figure = go.Figure(go.Heatmap(
        z=shares, x=[dimension_name(j) for j in latent_dims], y=list(result.factor_names), zmin=0, zmax=1,
        colorscale="Blues", colorbar={"title": "share of H(v)"},
        text=[[f"{value:.2f}" for value in row] for row in shares], texttemplate="%{text}",
        hovertemplate="I(%{y}; %{x}) = %{z:.2f} of H(%{y})<extra></extra>",
    ))
    figure.update_layout(height=80 + 45 * len(result.factor_names), margin={"l": 10, "r": 10, "t": 40, "b": 10},
                         title={"text": title, "font": {"color": colour, "size": 14}},
                         xaxis_title="latent dimension (most KL first)")
    return figure
