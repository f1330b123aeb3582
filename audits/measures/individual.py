"""Individual fairness: similar individuals should get similar predictions.

Everything is measured in the feature space the model actually sees (the fitted
preprocessing output), with Euclidean distance and scikit-learn `NearestNeighbors`. For
speed, at most ``max_rows`` query rows are drawn (seeded); their neighbours are searched
among *all* rows. A row is never its own neighbour (if an identical duplicate is returned
instead, it counts like any other neighbour at distance 0).

For query row i with neighbour set N_k(i), hard prediction ŷ and probability p = P(ŷ=1):

- ``consistency`` (Zemel et al. 2013), k = ``k_consistency`` (default 5):
  1 − mean_i | ŷ_i − mean_{j∈N_k(i)} ŷ_j |. 1 = neighbours always agree.
- ``ncf`` (neighbourhood consistency, the audit paper's individual-fairness score),
  k = ``k_ncf`` (default 100): mean_i mean_{j∈N_k(i)} | p_i − p_j |. 0 = perfectly fair.
- ``asf`` (average similarity fairness) over the same (i, j) neighbour pairs, with
  similarity s_ij = 1 / (1 + d_ij): Σ s_ij |p_i − p_j| / Σ s_ij, i.e. the prediction gap
  weighted towards the most similar pairs. 0 = perfectly fair.
- ``alf`` (average Lipschitz fairness) over the same pairs with d_ij > 0:
  mean |p_i − p_j| / d_ij, the empirical Lipschitz ratio a fair model keeps small. Pairs
  at distance 0 (identical encoded rows, frequent after generalization) have an undefined
  ratio and are left out; ``zero_distance_pairs`` reports their share.

Note that generalization makes many rows identical in this space, which by construction
lowers ncf/asf: that is the effect the audit measures, not an artefact.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.neighbors import NearestNeighbors

INDIVIDUAL_KEYS = ("consistency", "ncf", "asf", "alf", "zero_distance_pairs")


def neighbours(X: np.ndarray, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Distances and indices (into X) of the k nearest rows to each row index in `query`, self excluded."""
    n = X.shape[0]
    k = min(k, n - 1)
    if k < 1:
        raise ValueError("need at least two rows to find neighbours")
    nn = NearestNeighbors(n_neighbors=k + 1).fit(X)
    dist, idx = nn.kneighbors(X[query])
    is_self = idx == query[:, None]
    # drop self where it was returned, otherwise the farthest of the k+1
    drop = np.where(is_self.any(axis=1), is_self.argmax(axis=1), k)
    keep = np.ones_like(idx, dtype=bool)
    keep[np.arange(len(query)), drop] = False
    return dist[keep].reshape(len(query), k), idx[keep].reshape(len(query), k)


def consistency(X: np.ndarray, y_pred: np.ndarray, k: int = 5, query: np.ndarray | None = None) -> float:
    """Zemel et al. kNN consistency of hard predictions (1 = neighbours always agree)."""
    X, y_pred = np.asarray(X, dtype=float), np.asarray(y_pred, dtype=float)
    q = np.arange(len(X)) if query is None else np.asarray(query)
    _, idx = neighbours(X, q, k)
    return float(1.0 - np.mean(np.abs(y_pred[q] - y_pred[idx].mean(axis=1))))


def _pair_scores(dist: np.ndarray, gaps: np.ndarray) -> dict[str, float]:
    sim = 1.0 / (1.0 + dist)
    pos = dist > 1e-12
    return {
        "ncf": float(gaps.mean()),
        "asf": float((sim * gaps).sum() / sim.sum()),
        "alf": float((gaps[pos] / dist[pos]).mean()) if pos.any() else float("nan"),
        "zero_distance_pairs": float(1.0 - pos.mean()),
    }


def ncf(X: np.ndarray, proba: np.ndarray, k: int = 100, query: np.ndarray | None = None) -> float:
    """Mean |p_i − p_j| over each row's k nearest neighbours (0 = perfectly fair)."""
    X, proba = np.asarray(X, dtype=float), np.asarray(proba, dtype=float)
    q = np.arange(len(X)) if query is None else np.asarray(query)
    dist, idx = neighbours(X, q, k)
    return _pair_scores(dist, np.abs(proba[q][:, None] - proba[idx]))["ncf"]


def individual_fairness(
    X: Any,
    proba: Any,
    y_pred: Any | None = None,
    *,
    k_consistency: int = 5,
    k_ncf: int = 100,
    max_rows: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """consistency, ncf, asf, alf and zero_distance_pairs (see module docstring) on a seeded sample."""
    X = np.asarray(X.toarray() if hasattr(X, "toarray") else X, dtype=float)
    proba = np.asarray(proba, dtype=float)
    y_pred = (proba >= 0.5).astype(float) if y_pred is None else np.asarray(y_pred, dtype=float)
    n = len(X)
    if n < 2:
        return dict.fromkeys(INDIVIDUAL_KEYS, float("nan"))
    rng = np.random.default_rng(seed)
    query = np.sort(rng.choice(n, size=max_rows, replace=False)) if n > max_rows else np.arange(n)
    # one search serves both: neighbours come sorted by distance, so the first k_consistency are
    # the consistency neighbourhood
    dist, idx = neighbours(X, query, max(k_ncf, k_consistency))
    kc = min(k_consistency, idx.shape[1])
    gap = np.abs(y_pred[query] - y_pred[idx[:, :kc]].mean(axis=1))
    out = {"consistency": float(1.0 - gap.mean())}
    dist, idx = dist[:, :k_ncf], idx[:, :k_ncf]
    out.update(_pair_scores(dist, np.abs(proba[query][:, None] - proba[idx])))
    return out
