"""Plotly figures of the Explain page: per-dimension bars, the per-pixel log-likelihood, the bound ladder
and the true posterior of a 2-D latent under q(z|x)'s ellipse. Plain arrays in, a Figure out."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from vae.history import dimension_name
from vae.likelihood import GridPosterior, LadderRung
from vae.maps import ellipse_trace

_MARGIN = dict(l=10, r=10, t=30, b=10)


def dimension_bars(order: list[int], series: dict[str, np.ndarray], errors: dict[str, np.ndarray] | None = None,
                   title: str = "", y_title: str = "", height: int = 260) -> go.Figure:
    """Bars per latent dimension (named z1..zD, in `order`, e.g. by KL), one group per entry of `series`
    ((D,) arrays); `errors` adds symmetric error bars (e.g. mu ± sigma)."""
    names = [dimension_name(index) for index in order]
    figure = go.Figure()
    for label, values in series.items():
        error = (errors or {}).get(label)
        figure.add_trace(go.Bar(
            x=names, y=np.asarray(values)[order], name=label,
            error_y=dict(type="data", array=np.asarray(error)[order], visible=True) if error is not None else None,
            hovertemplate="%{x}: %{y:.3f}<extra>" + label + "</extra>",
        ))
    figure.add_hline(y=0, line_color="black", line_width=1)
    figure.update_layout(height=height, margin=_MARGIN, title={"text": title, "font": {"size": 13}},
                         yaxis_title=y_title, barmode="group",
                         legend=dict(orientation="h", y=1.12, x=1, xanchor="right"), xaxis=dict(type="category"))
    return figure


def pixel_log_likelihood_figure(log_px_per_pixel: np.ndarray, height: int = 300) -> go.Figure:
    """log p(x_i|z) per pixel (C, H, W) in nats as a heat map (channels summed): dark where the decoder
    explains the pixel badly."""
    values = np.asarray(log_px_per_pixel).sum(0)
    # Bernoulli log-probabilities are <= 0 (0: explained perfectly); a Gaussian's log-densities can be positive.
    figure = go.Figure(go.Heatmap(z=values, colorscale="Magma", zmax=0 if values.max() <= 0 else None,
                                  colorbar=dict(title="nats"),
                                  hovertemplate="row %{y}, column %{x}: %{z:.3f} nats<extra></extra>"))
    figure.update_yaxes(autorange="reversed", scaleanchor="x", scaleratio=1, showticklabels=False)
    figure.update_xaxes(showticklabels=False)
    figure.update_layout(height=height, margin=_MARGIN, title={"text": "log p(xᵢ | z) per pixel", "font": {"size": 13}})
    return figure


def ladder_figure(rungs: list[LadderRung], exact: float | None = None, height: int = 300) -> go.Figure:
    """The bound ladder: each estimate of log p(x) (nats) as a point, the exact value as a line when known."""
    names = [rung.name for rung in rungs]
    figure = go.Figure(go.Scatter(
        x=names, y=[rung.value for rung in rungs], mode="lines+markers", name="lower bound", marker=dict(size=10),
        customdata=[f"{rung.ess:,.1f}" if rung.ess is not None else "–" for rung in rungs],
        hovertemplate="%{x}: %{y:.3f} nats<br>effective sample size %{customdata}<extra></extra>",
    ))
    if exact is not None:
        figure.add_hline(y=exact, line_dash="dash", line_color="crimson",
                         annotation_text=f"exact log p(x) = {exact:.2f}", annotation_position="bottom right")
    figure.update_layout(height=height, margin=_MARGIN, yaxis_title="nats (higher is tighter)",
                         xaxis=dict(type="category"), showlegend=False)
    return figure


def true_posterior_figure(grid: GridPosterior, mu: np.ndarray, sigma: np.ndarray, height: int = 420) -> go.Figure:
    """p(z|x) on the grid as a heat map, with q(z|x)'s mean and one-sigma ellipse drawn over it."""
    figure = go.Figure(go.Heatmap(x=grid.z1, y=grid.z2, z=grid.posterior, colorscale="Blues",
                                  colorbar=dict(title="p(z|x)"),
                                  hovertemplate="z1 %{x:.3f}, z2 %{y:.3f}: density %{z:.3g}"
                                                "<extra>true posterior</extra>"))
    figure.add_trace(ellipse_trace(np.asarray(mu), np.asarray(sigma), name="q(z|x), one σ"))
    figure.add_trace(go.Scatter(x=[mu[0]], y=[mu[1]], mode="markers", name="q's mean μ",
                                marker=dict(color="crimson", size=8)))
    # Zoom to where either distribution lives: p(z|x) above 1e-4 of its peak, and q's mean +- 3 sigma.
    rows, cols = np.nonzero(grid.posterior > grid.posterior.max() * 1e-4)
    low = np.minimum([grid.z1[cols.min()], grid.z2[rows.min()]], np.asarray(mu) - 3 * np.asarray(sigma))
    high = np.maximum([grid.z1[cols.max()], grid.z2[rows.max()]], np.asarray(mu) + 3 * np.asarray(sigma))
    centre, half = (low + high) / 2, float(max(high - low)) * 0.6
    figure.update_xaxes(title="z1", range=[centre[0] - half, centre[0] + half])
    figure.update_yaxes(title="z2", range=[centre[1] - half, centre[1] + half], scaleanchor="x", scaleratio=1)
    figure.update_layout(height=height, margin=_MARGIN, legend=dict(orientation="h", y=-0.2))
    return figure
