"""Plotly figures the app draws: loss curves, KL per latent dimension.

Every loss is per image, in nats. KL sits on its own panel beside reconstruction and total,
because it is often ten or a hundred times smaller and would lie flat on a shared axis.
"""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from vae.history import COLLAPSED_KL_NATS, EpochRecord, dimension_name, is_collapsed

TRAIN_COLOUR, TEST_COLOUR, STEP_COLOUR = "#1f77b4", "#d62728", "rgba(31, 119, 180, 0.25)"
ACTIVE_COLOUR, COLLAPSED_COLOUR = "#2ca02c", "#bbbbbb"


def loss_curves_figure(history: list[EpochRecord], step_trace: list[dict] | None = None,
                       epochs: int | None = None) -> go.Figure:
    """Reconstruction, total (-ELBO) and KL per epoch, train and test; optionally the per-step train losses.

    history: one vae.history.EpochRecord per epoch.
    step_trace: {"epoch": fractional epoch, "recon", "kl", "total"} per training step (live runs).
    epochs: fixes the x axis to the planned run length, so a live curve grows into place.
    """
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Reconstruction and total (−ELBO)", "KL(q(z|x) ‖ p(z))"),
                           horizontal_spacing=0.08)
    epochs_x = [record.epoch for record in history]
    if step_trace:
        steps_x = [point["epoch"] for point in step_trace]
        for key, column, label in (("total", 1, "total, train steps"), ("recon", 1, "recon, train steps"),
                                   ("kl", 2, "KL, train steps")):
            figure.add_trace(go.Scatter(x=steps_x, y=[point[key] for point in step_trace], mode="lines", name=label,
                                        line={"color": STEP_COLOUR, "width": 1}, legendgroup="steps",
                                        showlegend=key == "total",
                                        hovertemplate="epoch %{x:.2f}<br>%{y:.2f} nats<extra>" + label + "</extra>"),
                             row=1, col=column)
    for split, colour, losses in (("train", TRAIN_COLOUR, [r.train for r in history]),
                                  ("test", TEST_COLOUR, [r.test for r in history])):
        for term, column, dash, values in (("−ELBO", 1, "solid", [loss.total for loss in losses]),
                                           ("recon", 1, "dot", [loss.recon for loss in losses]),
                                           ("KL", 2, "solid", [loss.kl for loss in losses])):
            label = f"{term}, {split}"
            figure.add_trace(go.Scatter(x=epochs_x, y=values, mode="lines+markers",
                                        name=label, line={"color": colour, "dash": dash}, marker={"size": 7},
                                        hovertemplate="epoch %{x}<br>%{y:.2f} nats<extra>" + label + "</extra>"),
                             row=1, col=column)
    right = max(epochs or 0, epochs_x[-1] if epochs_x else 0, 1)
    figure.update_xaxes(title_text="epoch", range=[0, right + 0.2])
    figure.update_yaxes(title_text="nats per image", row=1, col=1)
    figure.update_yaxes(title_text="nats per image", rangemode="tozero", row=1, col=2)
    figure.update_layout(height=380, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                         legend={"orientation": "h", "y": -0.2}, hovermode="closest")
    return figure


def active_dimensions(kl_per_dim: list[float], threshold: float = COLLAPSED_KL_NATS) -> list[bool]:
    """Which latent dimensions carry information: the ones not collapsed (vae.history.is_collapsed)."""
    return [not is_collapsed(value, threshold) for value in kl_per_dim]


def kl_per_dim_figure(kl_per_dim: list[float], threshold: float = COLLAPSED_KL_NATS) -> go.Figure:
    """Bars of KL per latent dimension (nats per image), green when active, grey when collapsed to the prior."""
    active = active_dimensions(kl_per_dim, threshold)
    figure = go.Figure(go.Bar(
        x=[dimension_name(index) for index in range(len(kl_per_dim))], y=kl_per_dim,
        marker_color=[ACTIVE_COLOUR if is_active else COLLAPSED_COLOUR for is_active in active],
        customdata=["active" if is_active else "collapsed" for is_active in active],
        hovertemplate="%{x}: %{y:.3f} nats (%{customdata})<extra></extra>",
    ))
    figure.add_hline(y=threshold, line_dash="dot", line_color="#888", annotation_text=f"{threshold:g} nats",
                     annotation_position="top right")
    figure.update_layout(height=300, margin={"l": 10, "r": 10, "t": 30, "b": 10}, yaxis_title="KL, nats per image",
                         xaxis_title="latent dimension", showlegend=False,
                         title={"text": f"{sum(active)} of {len(active)} dimensions active", "font": {"size": 14}})
    return figure


def history_table(history: list[EpochRecord]) -> list[dict]:
    """The history as flat rows (one per epoch) for a table."""
    rows = []
    for record in history:
        row = {"epoch": record.epoch}
        for split, losses in (("train", record.train), ("test", record.test)):
            row.update({f"{split} recon": round(losses.recon, 3), f"{split} kl": round(losses.kl, 3),
                        f"{split} -ELBO": round(losses.total, 3)})
        row["beta"] = record.beta
        row["seconds"] = round(record.seconds, 2) if record.seconds is not None else None
        rows.append(row)
    return rows
