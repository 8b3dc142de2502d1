"""The latent pad: sliders over z and a 2-D pad that decode in the browser while you drag.

A server-side st.slider reports only on release and each round trip costs ~200 ms, so the
decoding happens in the page: the decoder's weights travel to the browser once per model
(`decoder_weights` component, byte-identical on every rerun so Streamlit's message cache sends it
once) and `latent_pad.js` runs Linear/ReLU/ConvTranspose2d/sigmoid on every input event. The z
the user settles on (slider or pad released, reset, random) comes back as the component's state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from vae.generate import BrowserDecoder, LatentDimension
from vae.history import dimension_name

ASSETS = Path(__file__).resolve().parent
WEIGHTS_COMPONENT = "latent_lab.decoder_weights"
PAD_COMPONENT = "latent_lab.latent_pad"
SLIDER_RANGE = 4.0  # sliders and pad span +-4 prior standard deviations
MAX_SLIDERS = 16


def asset(name: str) -> str:
    """The text of one of the pad's asset files (latent_pad.js / .css / .html)."""
    return (ASSETS / name).read_text(encoding="utf-8")


# Both components load the same JS text, so the browser imports one module and they share its
# decoder registry. Registered once per process (re-registering the same name only logs a warning).
_JS = asset("latent_pad.js")
_weights_component = st.components.v2.component(WEIGHTS_COMPONENT, js=_JS)
_pad_component = st.components.v2.component(PAD_COMPONENT, html=asset("latent_pad.html"),
                                            css=asset("latent_pad.css"), js=_JS)


@dataclass(frozen=True)
class PadResult:
    """What the pad reports: the settled z (None until the user moves something)."""

    z: list[float] | None


def _clean_z(value, latent_dim: int) -> list[float] | None:
    # The state comes from the browser: accept only a list of latent_dim finite numbers.
    if not isinstance(value, list) or len(value) != latent_dim:
        return None
    try:
        z = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    return z if all(math.isfinite(v) for v in z) else None


def latent_pad(decoder: BrowserDecoder, dims: list[LatentDimension], z: list[float], token: int,
               pad_dims: tuple[int, int] | None, key: str) -> PadResult:
    """Mount the pad and return the z the user settled on.

    decoder: browser_decoder(model); dims: the sliders to show, in order (at most 16);
    z: the code the pad starts from, applied in the browser only when `token` changes (so a rerun
    never pulls a thumb back while it is being dragged); pad_dims: the two dimensions (0-based) of the 2-D
    pad, (across, up) like a map's (x, y) (vae.generate.default_pair picks them), or None for a one-dimensional
    latent; key: unique per page.
    """
    if len(dims) > MAX_SLIDERS:
        raise ValueError(f"at most {MAX_SLIDERS} sliders at once, not {len(dims)}")
    _weights_component(data=decoder.as_data(), key=f"{key}-weights-{decoder.key}", height=0)
    data = {
        "decoder": decoder.key,
        "dims": [{"index": d.index, "label": d.label, "unused": d.unused} for d in dims],
        "z": [float(v) for v in z],
        "token": int(token),
        "range": SLIDER_RANGE,
        "pad": list(pad_dims) if pad_dims else None,
        "pad_labels": [dimension_name(i) for i in pad_dims] if pad_dims else None,
    }
    # A new token is a new component instance: its reported z starts empty, so a z settled before
    # Python moved the pad can never come back and undo the move.
    result = _pad_component(data=data, key=f"{key}-{decoder.key}-{token}", on_z_change=lambda: None)
    return PadResult(z=_clean_z(getattr(result, "z", None) if result is not None else None, decoder.latent_dim))


# --- where the pad starts -------------------------------------------------------------------
# Session state "_latent_pad": {"model", "z", "token", "settled", "handoff_seen"}. `token` changes
# whenever Python means to move the pad (new model, a data set image, a code handed over from
# another page through st.session_state["pad_z"] / ["pad_z_model"]); the browser applies `z` only then.

_STATE_KEY = "_latent_pad"
HANDOFF_Z, HANDOFF_MODEL = "pad_z", "pad_z_model"
HANDOFF_AXES = "pad_axes"  # optional: the two dimensions (x, y) the other page drew the code on


@dataclass(frozen=True)
class PadStart:
    z: list[float]
    token: int


def _handed_over(model_name: str, latent_dim: int) -> list[float] | None:
    if st.session_state.get(HANDOFF_MODEL) != model_name:
        return None
    return _clean_z(list(st.session_state.get(HANDOFF_Z) or []), latent_dim)


def take_handed_axes(model_name: str, latent_dim: int) -> tuple[int, int] | None:
    """The (x, y) dimensions the page that handed over the code showed it on (the Latent map of two
    latent dimensions, or of a 2-D latent), so the pad can use the same orientation; taken once,
    so the user's own choice on Generate stands afterwards. None when there are none for this model."""
    axes = st.session_state.pop(HANDOFF_AXES, None)
    if st.session_state.get(HANDOFF_MODEL) != model_name or not isinstance(axes, (list, tuple)) or len(axes) != 2:
        return None
    try:
        across, up = (int(axis) for axis in axes)
    except (TypeError, ValueError):
        return None
    return (across, up) if across != up and 0 <= across < latent_dim and 0 <= up < latent_dim else None


def pad_start(model_name: str, latent_dim: int) -> PadStart:
    """Where the pad of `model_name` starts this run: the code handed over by another page (if new),
    else where the user left it, else zero."""
    state = st.session_state.get(_STATE_KEY)
    handed = _handed_over(model_name, latent_dim)
    if not state or state["model"] != model_name or len(state["z"]) != latent_dim:
        token = (state["token"] + 1) if state else 1
        state = {"model": model_name, "z": handed or [0.0] * latent_dim, "token": token, "settled": None,
                 "handoff_seen": handed}
        st.session_state[_STATE_KEY] = state
    elif handed is not None and handed != state["handoff_seen"]:
        state.update(z=handed, token=state["token"] + 1, settled=None, handoff_seen=handed)
    return PadStart(z=state["settled"] or state["z"], token=state["token"])


def move_pad(model_name: str, z: list[float]) -> None:
    """Make the pad jump to z on this run (e.g. the posterior mean of a chosen image)."""
    z = [float(v) for v in z]
    state = st.session_state.get(_STATE_KEY)
    token = (state["token"] + 1) if state else 1
    st.session_state[_STATE_KEY] = {"model": model_name, "z": z, "token": token, "settled": None, "handoff_seen": z}
    st.session_state[HANDOFF_Z], st.session_state[HANDOFF_MODEL] = z, model_name


def record_settled(model_name: str, z: list[float] | None) -> list[float] | None:
    """Remember the z the user settled on (also as the page-to-page hand-over code); returns the
    current settled z, or None before the user has moved anything."""
    state = st.session_state.get(_STATE_KEY)
    if state is None or state["model"] != model_name:
        return None
    if z is not None and z != state["settled"]:
        state.update(settled=z, handoff_seen=z)
        st.session_state[HANDOFF_Z], st.session_state[HANDOFF_MODEL] = z, model_name
    return state["settled"]
