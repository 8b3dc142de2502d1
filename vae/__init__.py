"""Latent Lab's VAE library: models, ELBO, data, training, checkpoints.

Importable and testable without Streamlit; only `vae.components` talks to the UI.
"""

__version__ = "0.1.0"
