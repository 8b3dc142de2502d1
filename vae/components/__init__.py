"""The UI bridge: browser-side components (HTML/JS/CSS read from files) and their Python wrappers.

This is the one part of `vae` that imports Streamlit.
"""

from vae.components.latent_pad import (PadResult, PadStart, latent_pad, move_pad, pad_start, record_settled,
                                      take_handed_axes)

__all__ = ["PadResult", "PadStart", "latent_pad", "move_pad", "pad_start", "record_settled", "take_handed_axes"]
