"""A checkpoint's training history, read without PyTorch (the first page shows it before torch loads)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ELBONumbers:
    """A model's test-set ELBO terms at its last epoch, per image in nats."""

    recon: float  # -E_q[log p(x|z)]
    kl: float  # KL(q(z|x) || p(z))
    epochs: int

    @property
    def elbo(self) -> float:
        return -(self.recon + self.kl)


def final_numbers(history: list[dict]) -> ELBONumbers | None:
    """The test recon and KL of the last epoch of a checkpoint's history (None for an empty history)."""
    if not history:
        return None
    test = history[-1]["test"]
    return ELBONumbers(recon=float(test["recon"]), kl=float(test["kl"]), epochs=len(history))


# One vocabulary for latent dimensions on every page (what a learner reads):
COLLAPSED_KL_NATS = 0.1  # a dimension whose test KL(q(z_i|x) || p(z_i)) averages under this has collapsed onto the prior


def dimension_name(index: int) -> str:
    """The name a person reads for the latent dimension at 0-based `index`: z1 .. zD, as the maths writes it."""
    return f"z{index + 1}"


def is_collapsed(kl_nats: float, threshold: float = COLLAPSED_KL_NATS) -> bool:
    """Whether a dimension with this average KL (nats per image) carries (almost) no information about x."""
    return float(kl_nats) < threshold
