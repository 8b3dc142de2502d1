"""The Train page's inputs, built from the declarations in vae.hyperparameters (bounds, default, help).

So the page offers exactly what `TrainConfig`, `ModelConfig` and the command line accept.
"""

from __future__ import annotations

from vae.hyperparameters import HYPERPARAMETERS


def hyperparameter_input(container, name: str, key: str, value=None, help: str | None = None):
    """One declared setting as a widget in `container` (st, a column, a form): a selectbox for choices,
    a number input bounded by the declaration otherwise. `value` overrides the declared default as the
    starting value, `help` the declared help text."""
    setting = HYPERPARAMETERS[name]
    start = setting.default if value is None else value
    help = setting.help if help is None else help
    if setting.choices:
        return container.selectbox(setting.label, setting.choices, index=setting.choices.index(start), key=key,
                                   help=help)
    number = float if setting.kind is float else int
    # Streamlit's "%0.2f" would show a bound like 1e-08 as 0.00.
    tiny = setting.kind is float and 0 < setting.low < 0.01
    return container.number_input(setting.label, number(setting.low), number(setting.high), number(start),
                                  step=setting.step, format="%g" if tiny else None, key=key, help=help)
