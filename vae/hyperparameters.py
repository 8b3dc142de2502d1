"""Every hyperparameter a person sets for a run, declared once: type, bounds, default, unit and help.

The library checks values against these declarations (`vae.configs.ModelConfig`,
`vae.train.TrainConfig`), the command line builds its options from them (`vae.train_cli`) and the
Train page builds its inputs from them (`ui_inputs.py`), so the three accept and refuse the same
values. Bounds are inclusive. Importable without PyTorch (the app lists checkpoints with it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ARCHITECTURES = ("mlp", "conv")
LIKELIHOODS = ("bernoulli", "gaussian")
MAX_LATENT_DIM = 128
MAX_WIDTH = 16_384  # units of a dense layer, channels of a convolution
MAX_EPOCHS = 10_000
MAX_SEED = 2**31 - 1  # the range every generator here accepts, and what a person can type


@dataclass(frozen=True)
class Hyperparameter:
    """One setting: `name` is the config field (the CLI flag is it with '-' for '_'); `label` is what the
    Train page shows; `noun` names it in messages ("learning rate must be between ...")."""

    name: str
    label: str
    noun: str
    kind: type  # int, float or str
    default: int | float | str | tuple
    low: int | float | None = None
    high: int | float | None = None
    choices: tuple[str, ...] = ()
    unit: str = ""
    help: str = ""
    step: float | None = None  # the Train page's +/- step (None: Streamlit's own, 1 for whole numbers)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def problem(self, value) -> str | None:
        """Why `value` is not allowed, as a sentence starting with the noun; None when it is allowed.

        Whole numbers must be ints (not bools, not 2.0); numbers ints or floats, finite; text one of `choices`.
        """
        if self.choices:
            return (None if value in self.choices
                    else f"{self.noun} must be one of {', '.join(self.choices)}, not {_shown(value)}")
        kinds = (int, float) if self.kind is float else (int,)
        if isinstance(value, bool) or not isinstance(value, kinds):
            return f"{self.noun} must be {'a number' if self.kind is float else 'a whole number'}, not {_shown(value)}"
        if not (math.isfinite(value) and self.low <= value <= self.high):
            return f"{self.noun} must be between {_number(self.low)} and {_number(self.high)}, not {_number(value)}"
        return None

    def check(self, value, error: type[Exception] = ValueError):
        """`value` itself when allowed; otherwise raises `error` with the reason as a sentence."""
        if (reason := self.problem(value)) is not None:
            raise error(reason[0].upper() + reason[1:] + ".")
        return value

    def parse(self, text: str) -> int | float | str:
        """`text`, as typed on a command line, as a value of this setting; raises ValueError with the reason."""
        if not self.choices:
            try:
                value = self.kind(text)
            except ValueError:
                raise ValueError(f"{self.noun} must be "
                                 f"{'a number' if self.kind is float else 'a whole number'}, not {text!r}") from None
        else:
            value = text
        if (reason := self.problem(value)) is not None:
            raise ValueError(reason)
        return value

    @property
    def described(self) -> str:
        """The help text with the unit, the allowed values and the default: "... (epochs; 0 to 10000; default 0)"."""
        allowed = " or ".join(self.choices) if self.choices else f"{_number(self.low)} to {_number(self.high)}"
        default = (f"; default {self.default if isinstance(self.default, str) else _number(self.default)}"
                   if self.default != () else "")
        return f"{self.help.rstrip('.')} ({self.unit + '; ' if self.unit else ''}{allowed}{default})"


def _number(value: int | float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# Where the copies disagreed, these bounds won (see each comment); the rest were the same everywhere.
HYPERPARAMETERS: dict[str, Hyperparameter] = {h.name: h for h in (
    Hyperparameter("arch", "Architecture", "architecture", str, "mlp", choices=ARCHITECTURES,
                   help="mlp: dense layers (Kingma & Welling); conv: strided convolutions, then a dense layer."),
    Hyperparameter("latent_dim", "Latent size (z dimensions)", "latent dimension", int, 20, 1, MAX_LATENT_DIM,
                   unit="dimensions", help="How many numbers the code z has; 2 gives a latent space you can see "
                                           "directly on the Latent map."),
    # The CLI allowed 8,192 units, a config.json 16,384: the wider one, since the 100-million-weight
    # limit (vae.configs.MAX_PARAMETERS) is what keeps a model buildable.
    Hyperparameter("hidden", "Hidden units", "hidden units", int, (), 1, MAX_WIDTH, unit="units per layer",
                   help="Dense layer width(s), one or two; by default 400 for mlp, 256 for conv."),
    Hyperparameter("likelihood", "Likelihood p(x|z)", "likelihood", str, "bernoulli", choices=LIKELIHOODS,
                   help="Bernoulli for near-binary images like digits; Gaussian for grey levels and colour."),
    Hyperparameter("beta", "beta (weight of KL)", "beta", float, 1.0, 0.0, 1000.0, step=0.5,
                   help="1 is the plain VAE. Larger values press q(z|x) toward the prior (beta-VAE)."),
    # Was unbounded (TrainConfig), 10,000 (CLI), 1,000 (page): now the longest run, MAX_EPOCHS. The
    # weight is beta * min(1, epochs done / warm-up), safe for any finite warm-up; a longer one only
    # lowers the last weight, which beta already does.
    Hyperparameter("warmup_epochs", "KL warm-up epochs", "warm-up epochs", float, 0.0, 0.0, float(MAX_EPOCHS),
                   unit="epochs", step=1.0, help="The KL weight grows from 0 to beta over these epochs."),
    Hyperparameter("epochs", "Epochs", "epochs", int, 10, 1, MAX_EPOCHS, unit="passes over the training set",
                   help="How many times training goes through the training images."),
    Hyperparameter("batch_size", "Batch size", "batch size", int, 128, 1, 65_536, unit="images per step",
                   help="Images per Adam step."),
    # Was > 0 (TrainConfig), >= 1e-8 (CLI), >= 1e-6 (page): 1e-8, the widest a number box can offer.
    # Adam moves each weight by about lr a step, so 1e-8 barely trains but is safe; 1 is the top
    # every copy shared (larger steps blow up, which training refuses with a message anyway).
    Hyperparameter("lr", "Learning rate", "learning rate", float, 1e-3, 1e-8, 1.0, step=1e-4,
                   help="Adam's step size."),
    # TrainConfig did not check the seed; the CLI and page allowed 0 to 2^31 - 1.
    Hyperparameter("seed", "Seed", "seed", int, 0, 0, MAX_SEED,
                   help="The same seed gives the same weights at the start and the same order of batches."),
)}
