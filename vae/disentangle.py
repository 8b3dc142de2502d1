"""Disentanglement against ground truth: which latent dimension tracks which generative factor.

A data set whose images were drawn from known factors (`shapes`: shape, scale, rotation, x, y)
carries them as `Dataset.train_factors` / `test_factors`, each (N,). Here they meet a model's
posterior means mu (N, D):

- the **mutual information matrix** I(v_k; z_j), factors k x dimensions j, in nats, between each
  factor and each dimension's posterior mean, both discretised (20 equal-width bins for the codes,
  as in Locatello et al. 2019, "Challenging Common Assumptions in the Unsupervised Learning of
  Disentangled Representations"); estimated with scikit-learn's `mutual_info_score`;
- the **Mutual Information Gap** (MIG; Chen et al. 2018, "Isolating Sources of Disentanglement
  in VAEs"): for each factor, the gap between the two dimensions that know most about it,
  divided by the factor's entropy H(v_k); averaged over factors. 1 when every factor lives in one
  dimension alone, 0 when no dimension knows more about a factor than the next one.

Nothing here imports Streamlit or PyTorch; codes and factors are NumPy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CODE_BINS = 20  # equal-width bins per latent dimension (Locatello et al. 2019 use 20)
FACTOR_LEVELS = 20  # a factor with more distinct values than this is binned like a code
MIG_DEFINITION = (
    "MIG (Chen et al. 2018): for each ground-truth factor, how much more the dimension that knows most "
    "about it knows than the runner-up, as a fraction of the factor's entropy; averaged over factors "
    "(1 = each factor in one dimension of its own, 0 = no dimension stands out)."
)


class FactorError(ValueError):
    """Codes and factors that cannot be compared (no factors, different lengths); the message is for the user."""


def discretise(values: np.ndarray, bins: int = CODE_BINS) -> np.ndarray:
    """Integer bin ids (N,) of values (N,): equal-width bins over their range; a constant is one bin."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    low, high = float(values.min()), float(values.max())
    if not high > low:
        return np.zeros(len(values), dtype=np.int64)
    edges = np.linspace(low, high, bins + 1)[1:-1]
    return np.searchsorted(edges, values, side="right").astype(np.int64)


def factor_levels(values: np.ndarray, levels: int = FACTOR_LEVELS) -> np.ndarray:
    """Integer classes (N,) of a factor: its distinct values when there are at most `levels`, else binned."""
    values = np.asarray(values).reshape(-1)
    distinct, inverse = np.unique(values, return_inverse=True)
    if len(distinct) <= levels:
        return inverse.astype(np.int64)
    return discretise(values, levels)


def is_categorical(values: np.ndarray) -> bool:
    """Whether a factor names classes (integers, e.g. `shape`) rather than measures a quantity (floats)."""
    return np.issubdtype(np.asarray(values).dtype, np.integer)


def mutual_information_matrix(mu: np.ndarray, factors: dict[str, np.ndarray]) -> np.ndarray:
    """I(v_k; z_j) in nats, shape (K, D): each factor (rows, in `factors` order) against each latent
    dimension's posterior mean mu (N, D), both discretised (codes: CODE_BINS bins).

    Raises FactorError for no factors or factors of another length than mu.
    """
    from sklearn.metrics import mutual_info_score

    mu = np.asarray(mu)
    if mu.ndim != 2:
        raise FactorError(f"posterior means must be (N, D), not {mu.shape}")
    _check(len(mu), factors)
    codes = [discretise(mu[:, j]) for j in range(mu.shape[1])]
    matrix = np.zeros((len(factors), mu.shape[1]))
    for k, values in enumerate(factors.values()):
        classes = factor_levels(values)
        levels = int(classes.max()) + 1
        for j, binned in enumerate(codes):
            # a dense contingency table from one bincount: ten times quicker than letting
            # scikit-learn build a sparse one per pair; it still does the MI sum itself
            bins = int(binned.max()) + 1
            table = np.bincount(classes * bins + binned, minlength=levels * bins).reshape(levels, bins)
            matrix[k, j] = mutual_info_score(None, None, contingency=table)
    return np.maximum(matrix, 0.0)


def factor_entropies(factors: dict[str, np.ndarray]) -> np.ndarray:
    """H(v_k) in nats (K,) of each factor's classes (as discretised for the MI matrix)."""
    entropies = []
    for values in factors.values():
        counts = np.bincount(factor_levels(values))
        p = counts[counts > 0] / counts.sum()
        entropies.append(float(-(p * np.log(p)).sum()))
    return np.array(entropies)


def _check(length: int, factors: dict[str, np.ndarray]) -> None:
    if not factors:
        raise FactorError("This data set has no ground-truth factors (only generated sets such as 'shapes' do).")
    for name, values in factors.items():
        if len(values) != length:
            raise FactorError(f"factor '{name}' has {len(values)} values for {length} codes")


@dataclass(frozen=True)
class Disentanglement:
    """How a model's latent dimensions line up with the ground-truth factors of its data set.

    factor_names: K names; mutual_information: (K, D) nats; entropy: (K,) nats of each factor;
    gap: (K,) each factor's MIG term (top minus runner-up MI over entropy); mig: their mean.
    """

    factor_names: tuple[str, ...]
    mutual_information: np.ndarray
    entropy: np.ndarray
    gap: np.ndarray
    mig: float

    @property
    def normalised(self) -> np.ndarray:
        """(K, D) I(v_k; z_j) / H(v_k): the share of each factor's entropy a dimension explains, 0..1."""
        return self.mutual_information / np.maximum(self.entropy, 1e-12)[:, None]

    def factor_of(self, dimension: int) -> tuple[str, float]:
        """The factor dimension `dimension` (0-based) knows most about, and that share of its entropy."""
        column = self.normalised[:, dimension]
        best = int(np.argmax(column))
        return self.factor_names[best], float(column[best])


def mutual_information_gap(mutual_information: np.ndarray, entropy: np.ndarray) -> np.ndarray:
    """Each factor's MIG term (K,): (largest minus second largest I(v_k; z_j) over j) / H(v_k)
    (Chen et al. 2018, eq. 6).

    With a single latent dimension the runner-up is 0. A constant factor (H = 0) scores 0.
    """
    ordered = np.sort(mutual_information, axis=1)[:, ::-1]
    runner_up = ordered[:, 1] if ordered.shape[1] > 1 else np.zeros(len(ordered))
    return np.where(entropy > 0, (ordered[:, 0] - runner_up) / np.maximum(entropy, 1e-12), 0.0)


def disentanglement(mu: np.ndarray, factors: dict[str, np.ndarray]) -> Disentanglement:
    """MI matrix, factor entropies and MIG of posterior means mu (N, D) against factors {name: (N,)}.

    Raises FactorError when there are no factors or their lengths differ from mu's.
    """
    information = mutual_information_matrix(mu, factors)
    entropy = factor_entropies(factors)
    gap = mutual_information_gap(information, entropy)
    return Disentanglement(tuple(factors), information, entropy, gap, float(gap.mean()))


def factors_of_rows(dataset, split: np.ndarray, index: np.ndarray) -> dict[str, np.ndarray]:
    """Each factor's value (N,) for rows named by split (0 train, 1 test) and index (row in its split),
    as `vae.projection.LatentCodes` names them; {} for a data set without factors (e.g. a folder)."""
    train, test = getattr(dataset, "train_factors", {}) or {}, getattr(dataset, "test_factors", {}) or {}
    if not train or set(train) != set(test):
        return {}
    split, index = np.asarray(split), np.asarray(index, dtype=np.int64)
    out = {}
    for name in train:
        train_values, test_values = np.asarray(train[name]), np.asarray(test[name])
        values = np.empty(len(index), dtype=np.result_type(train_values.dtype, test_values.dtype))
        is_train = split == 0
        values[is_train] = train_values[index[is_train]]
        values[~is_train] = test_values[index[~is_train]]
        out[name] = values
    return out
