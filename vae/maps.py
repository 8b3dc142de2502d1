"""Plotly figures of the latent space: the map of codes, the prior's circles, posteriors, the manifold.

Every figure takes plain arrays (z as (N, D), map coordinates as (N, 2)) and returns a
`plotly.graph_objects.Figure`; nothing here knows about Streamlit.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.colors import qualitative

from vae.history import dimension_name
from vae.images import image_grid
from vae.models import VAE
from vae.text import html_literal, label_name

PALETTE = qualitative.Plotly  # ten distinct colours, one per digit
# In 2-D the prior N(0, I) puts 1 - exp(-r^2 / 2) of its mass inside radius r.
PRIOR_MASS = {r: 1 - math.exp(-r * r / 2) for r in (1, 2)}


def _circle(radius: float, centre=(0.0, 0.0), points: int = 120) -> tuple[np.ndarray, np.ndarray]:
    angle = np.linspace(0, 2 * np.pi, points)
    return centre[0] + radius * np.cos(angle), centre[1] + radius * np.sin(angle)


def selected_id(points: list[dict]) -> int | None:
    """The global id of the first data set point in a plotly selection (Streamlit's on_select event).

    customdata arrives as a list, a scalar, or (Streamlit 1.67, 2-D customdata) a dict {"0": id};
    points of other traces (circles, uploads) carry none and are skipped.
    """
    for point in points or []:
        data = point.get("customdata")
        if isinstance(data, dict):
            data = data.get("0", next(iter(data.values()), None))
        if isinstance(data, (list, tuple)):
            data = data[0] if data else None
        if isinstance(data, (int, float)) and not isinstance(data, bool) and data >= 0:
            return int(data)
    return None


def prior_circle_traces() -> list[go.Scatter]:
    """The prior N(0, I)'s one- and two-sigma circles in a 2-D latent space (not selectable)."""
    traces = []
    for radius in (1, 2):
        x, y = _circle(radius)
        traces.append(go.Scatter(
            x=x, y=y, mode="lines", line=dict(color="black", width=1.5, dash="dash" if radius == 2 else "solid"),
            name=f"prior {radius}σ ({PRIOR_MASS[radius]:.0%})", hoverinfo="skip",
        ))
    return traces


def ellipse_trace(mu: np.ndarray, sigma: np.ndarray, name: str = "posterior 1σ", color: str = "crimson") -> go.Scatter:
    """The one-sigma ellipse of a diagonal 2-D Gaussian N(mu, diag sigma^2)."""
    angle = np.linspace(0, 2 * np.pi, 90)
    return go.Scatter(x=mu[0] + sigma[0] * np.cos(angle), y=mu[1] + sigma[1] * np.sin(angle), mode="lines",
                      line=dict(color=color, width=2), name=name, hoverinfo="skip")


def latent_map_figure(coords: np.ndarray, ids: np.ndarray, labels: np.ndarray, label_names: tuple[str, ...] | None,
                      axis_titles: tuple[str, str], *, selected: int | None = None, prior_circles: bool = False,
                      ellipse: tuple[np.ndarray, np.ndarray] | None = None,
                      new_points: list[tuple[str, np.ndarray]] | None = None, height: int = 620,
                      colour_scale: tuple[str, np.ndarray] | None = None) -> go.Figure:
    """A WebGL scatter of map coordinates (N, 2) coloured by label, one trace per label.

    Every data set marker carries its global id in customdata (plotly's point_index counts within a
    trace), so a selection can name the image. `selected` marks one id; `new_points` adds
    (name, (2,) coords) stars for uploads; `prior_circles` and `ellipse` only make sense when the
    axes are the 2-D latent itself. colour_scale = (name, values (N,)) colours one trace by a continuous
    ground-truth factor (e.g. shapes' rotation) on a colour scale instead of by label.
    """
    figure = go.Figure()
    if colour_scale is not None:
        name, values = colour_scale
        figure.add_trace(go.Scattergl(
            x=coords[:, 0], y=coords[:, 1], mode="markers", name=name, showlegend=False,
            marker=dict(size=5, color=values, colorscale="Viridis", opacity=0.8,
                        colorbar=dict(title=name, thickness=14)), customdata=np.column_stack([ids, values]),
            hovertemplate=f"{name} %{{customdata[1]:.3g}}<br>image #%{{customdata[0]}}<extra></extra>",
        ))
    present = np.unique(labels) if colour_scale is None else []
    for position, label in enumerate(present):
        mask = labels == label
        # Label names are folder names someone chose; plotly would honour HTML tags in them (<a href>).
        name = html_literal(label_name(label_names, label, missing=str(label))) if label >= 0 else "images"
        figure.add_trace(go.Scattergl(
            x=coords[mask, 0], y=coords[mask, 1], mode="markers", name=name,
            marker=dict(size=5, color=PALETTE[position % len(PALETTE)], opacity=0.75),
            customdata=ids[mask].reshape(-1, 1),
            hovertemplate=f"label {name}<br>image #%{{customdata[0]}}<extra></extra>",
        ))
    if prior_circles:
        figure.add_traces(prior_circle_traces())
    if selected is not None:
        at = np.flatnonzero(ids == selected)
        if len(at):
            figure.add_trace(go.Scatter(
                x=coords[at, 0], y=coords[at, 1], mode="markers", name=f"selected #{selected}",
                marker=dict(size=16, color="rgba(0,0,0,0)", line=dict(color="black", width=3)), hoverinfo="skip",
            ))
    if ellipse is not None:
        figure.add_trace(ellipse_trace(*ellipse))
    for name, point in new_points or []:
        name = html_literal(name)  # an uploaded file's name
        figure.add_trace(go.Scatter(
            x=[point[0]], y=[point[1]], mode="markers+text", name=name, text=[name], textposition="top center",
            marker=dict(symbol="star", size=20, color="gold", line=dict(color="black", width=1.5)),
            hovertemplate=f"{name}<extra></extra>",
        ))
    figure.update_layout(
        height=height, margin=dict(l=10, r=10, t=10, b=10),
        # One column at the right: its size does not depend on the plot's width. A horizontal legend
        # wraps into more rows when the window narrows, and the margin plotly made for it is not
        # remade, so after a resize it covered the top of the map.
        legend=dict(itemsizing="constant", orientation="v", yanchor="top", y=1, xanchor="left", x=1.02),
        xaxis_title=axis_titles[0], yaxis_title=axis_titles[1],
    )
    if prior_circles:
        figure.update_yaxes(scaleanchor="x", scaleratio=1)
    return figure


def posterior_figure(mu: np.ndarray, sigma: np.ndarray, height: int = 300) -> go.Figure:
    """One posterior q(z|x): on a 2-D latent its mean and one-sigma ellipse over the prior's circles;
    otherwise the mean of every dimension with one-sigma error bars."""
    mu, sigma = np.asarray(mu, dtype=float), np.asarray(sigma, dtype=float)
    figure = go.Figure()
    if len(mu) == 2:
        figure.add_traces(prior_circle_traces())
        figure.add_trace(ellipse_trace(mu, sigma))
        figure.add_trace(go.Scatter(x=[mu[0]], y=[mu[1]], mode="markers", name="posterior mean",
                                    marker=dict(color="crimson", size=9)))
        reach = max(2.2, float(np.max(np.abs(mu) + sigma)) * 1.1)
        # Fixed ranges at one scale: the plot area shrinks to fit (constrain="domain"); with plotly's
        # default the ranges grow instead, and keep growing with every resize of the window.
        figure.update_xaxes(range=[-reach, reach], title="z1", constrain="domain")
        figure.update_yaxes(range=[-reach, reach], title="z2", scaleanchor="x", scaleratio=1, constrain="domain")
    else:
        dims = [dimension_name(i) for i in range(len(mu))]
        figure.add_trace(go.Bar(x=dims, y=mu, error_y=dict(type="data", array=sigma, visible=True), name="mean ± σ",
                                marker_color="crimson"))
        figure.add_hline(y=0, line_color="black", line_width=1)
        figure.update_yaxes(title="posterior mean ± one σ")
    figure.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), showlegend=len(mu) == 2,
                         legend=dict(orientation="v", yanchor="top", y=1, xanchor="left", x=1.02))
    return figure


@torch.no_grad()
def manifold_grid(model: VAE, x_range: tuple[float, float], y_range: tuple[float, float], n: int = 15):
    """Decode an n x n grid of 2-D codes spanning the ranges (Kingma & Welling 2014, fig. 4).

    Returns the tiled picture (PIL, row 0 = highest z2, as a plot's y axis runs) and the grid's
    cell size in z units (dx, dy).
    """
    xs = np.linspace(x_range[0], x_range[1], n)
    ys = np.linspace(y_range[1], y_range[0], n)  # top row first
    grid = torch.tensor([[x, y] for y in ys for x in xs], dtype=torch.float32)
    images = model.decode_images(grid)
    picture = image_grid(images, columns=n, width=max(420, n * images.shape[-1] * 2))
    step_x = (x_range[1] - x_range[0]) / max(n - 1, 1)
    step_y = (y_range[1] - y_range[0]) / max(n - 1, 1)
    return picture, (step_x, step_y)


def manifold_figure(model: VAE, x_range: tuple[float, float], y_range: tuple[float, float], n: int = 15,
                    height: int = 620) -> go.Figure:
    """The decoded manifold of a 2-D latent over the map's range, with axes in z units."""
    picture, (step_x, step_y) = manifold_grid(model, x_range, y_range, n)
    left, right = x_range[0] - step_x / 2, x_range[1] + step_x / 2
    bottom, top = y_range[0] - step_y / 2, y_range[1] + step_y / 2
    figure = go.Figure(go.Scatter(x=[left, right], y=[bottom, top], mode="markers", marker=dict(opacity=0),
                                  hoverinfo="skip", showlegend=False))
    figure.add_layout_image(dict(source=picture, xref="x", yref="y", x=left, y=top, sizex=right - left,
                                 sizey=top - bottom, sizing="stretch", layer="below"))
    figure.add_traces(prior_circle_traces())
    # The picture fills exactly these ranges at one scale: the plot area shrinks to fit (constrain="domain").
    # With plotly's default the ranges grow instead, and after the window is resized narrower and back
    # they stay grown (the grid shrinks to a corner of wide empty axes).
    figure.update_xaxes(range=[left, right], title="z1", showgrid=False, zeroline=False, constrain="domain")
    figure.update_yaxes(range=[bottom, top], title="z2", showgrid=False, zeroline=False, scaleanchor="x", scaleratio=1,
                        constrain="domain")
    figure.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), showlegend=False,
                         plot_bgcolor="white")
    return figure
