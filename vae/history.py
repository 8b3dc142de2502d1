"""A checkpoint's training history, read without PyTorch (the first page shows it before torch loads).

A history is a list of epoch records, one per completed epoch, as `config.json` stores them.
`EpochRecord` names their fields once, so a reader writes `record.test.kl` and never a string key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class EpochLosses:
    """The ELBO terms of one epoch on one split, per image in nats (train: averaged over the epoch's
    steps; test: after the epoch, one z sample per image)."""

    recon: float  # -E_q[log p(x|z)]
    kl: float  # KL(q(z|x) || p(z))
    total: float  # recon + kl = -ELBO

    def to_dict(self) -> dict:
        return {"recon": self.recon, "kl": self.kl, "total": self.total}

    @classmethod
    def from_dict(cls, losses: Mapping) -> EpochLosses:
        """Raises KeyError naming a missing term."""
        return cls(recon=losses["recon"], kl=losses["kl"], total=losses["total"])


@dataclass(frozen=True)
class EpochRecord:
    """One completed epoch of training, as written to `config.json`'s "history" (fields named as its keys).

    kl_per_dim: test KL(q(z_i|x) || p(z_i)) per latent dimension z1..zD, nats per image; beta: the KL
    weight at the epoch's end (after warm-up); seconds: the epoch's wall time; images_per_second: the
    training speed so far. Those four are absent (None) in records that did not write them.
    Values are kept as read (no rounding or conversion), so `EpochRecord.from_dict(d).to_dict() == d`
    for every record this project writes: the JSON written from a record is the JSON read.
    """

    epoch: int
    train: EpochLosses
    test: EpochLosses
    kl_per_dim: list[float] | None = None
    beta: float | None = None
    seconds: float | None = None
    images_per_second: float | None = None

    def to_dict(self) -> dict:
        """The JSON object, keys in the order `vae.train` writes them; an absent field is left out."""
        optional = {"kl_per_dim": self.kl_per_dim, "beta": self.beta, "seconds": self.seconds,
                    "images_per_second": self.images_per_second}
        return {"epoch": self.epoch, "train": self.train.to_dict(), "test": self.test.to_dict(),
                **{key: value for key, value in optional.items() if value is not None}}

    @classmethod
    def from_dict(cls, record: Mapping) -> EpochRecord:
        """A record from its JSON object (already checked by `vae.checkpoint_schema` when read from a
        checkpoint). Raises KeyError naming a missing field; unknown keys are ignored."""
        return cls(epoch=record["epoch"], train=EpochLosses.from_dict(record["train"]),
                   test=EpochLosses.from_dict(record["test"]), kl_per_dim=record.get("kl_per_dim"),
                   beta=record.get("beta"), seconds=record.get("seconds"),
                   images_per_second=record.get("images_per_second"))


def read_history(history: Iterable[Mapping | EpochRecord]) -> list[EpochRecord]:
    """A history as records, from its JSON objects (records pass through unchanged)."""
    return [record if isinstance(record, EpochRecord) else EpochRecord.from_dict(record) for record in history]


def last_kl_per_dim(history: list[EpochRecord]) -> list[float] | None:
    """KL per latent dimension (nats per image, test set) at the last epoch; None without a history or that figure."""
    return history[-1].kl_per_dim if history else None


@dataclass(frozen=True)
class ELBONumbers:
    """A model's test-set ELBO terms at its last epoch, per image in nats."""

    recon: float  # -E_q[log p(x|z)]
    kl: float  # KL(q(z|x) || p(z))
    epochs: int

    @property
    def elbo(self) -> float:
        return -(self.recon + self.kl)


def final_numbers(history: list[EpochRecord]) -> ELBONumbers | None:
    """The test recon and KL of the last epoch of a checkpoint's history (None for an empty history)."""
    if not history:
        return None
    test = history[-1].test
    return ELBONumbers(recon=float(test.recon), kl=float(test.kl), epochs=len(history))


# One vocabulary for latent dimensions on every page (what a learner reads):
# A dimension whose test KL(q(z_i|x) || p(z_i)) averages under this has collapsed onto the prior.
COLLAPSED_KL_NATS = 0.1


def dimension_name(index: int) -> str:
    """The name a person reads for the latent dimension at 0-based `index`: z1 .. zD, as the maths writes it."""
    return f"z{index + 1}"


def is_collapsed(kl_nats: float, threshold: float = COLLAPSED_KL_NATS) -> bool:
    """Whether a dimension with this average KL (nats per image) carries (almost) no information about x."""
    return float(kl_nats) < threshold
