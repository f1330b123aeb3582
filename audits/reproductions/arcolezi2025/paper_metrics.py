"""The audit paper's metrics, exactly as its code computes them (Arcolezi et al. 2025, utils.py).

Named with a ``paper_`` prefix / upper case (SPD, EOD, MAD, PED, PRD, ASF, ALF, NCF) so they are
never confused with fedlab's own definitions in `audits.measures.fairness` / `audits.measures.individual`.

Group metrics, group 1 = privileged (e.g. Male / White), group 0 = the rest, ŷ hard predictions:

- SPD = P(ŷ=1 | g=1) − P(ŷ=1 | g=0)
- EOD = TPR_1 − TPR_0           (recall per group; 0 when a group has no positive)
- MAD = ACC_1 − ACC_0
- PED = FPR_1 − FPR_0
- PRD = PPV_1 − PPV_0           (precision per group; 0 when a group has no predicted positive)
- ACC, f1, Precision, Recall, and ROC_AUC computed on the *hard* predictions.

Individual metrics on the label-encoded test features X and `predict_proba` P (n × 2), with the
k = 100 Euclidean nearest neighbours of each row (scikit-learn, self first):

- ASF = mean over rows i and neighbours j ≠ i of |P_i − P_j| · max(d_ij, 1e-6) (both columns),
  averaged per chunk of rows and then over chunks, as the paper's parallel code does;
- ALF = max over i and its k nearest rows j with d_ij > 1e-10 of KL(P_i ‖ P_j) / d_ij;
- NCF = mean over rows of mean_j |P_i − P_j| (both columns), chunked the same way.

The chunking depends on the paper's worker count (``os.cpu_count()`` of its machine):
``workers`` reproduces it; the default 1 is the plain mean over all rows.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import entropy
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score
from sklearn.neighbors import NearestNeighbors

GROUP_KEYS = ("SPD", "EOD", "MAD", "PED", "PRD")
UTILITY_KEYS = ("ACC", "f1", "Precision", "Recall", "ROC_AUC")
INDIVIDUAL_KEYS = ("ASF", "ALF", "NCF")


def _rate(mask: np.ndarray) -> float:
    return float(mask.mean()) if mask.size else float("nan")


def group_metrics(y: np.ndarray, pred: np.ndarray, privileged: np.ndarray) -> dict[str, float]:
    """SPD, EOD, MAD, PED, PRD (group 1 − group 0) as in the paper's ``get_metrics``."""
    y, pred, g = (np.asarray(a).astype(int) for a in (y, pred, privileged))
    out: dict[str, float] = {}
    parts = [(y[g == v], pred[g == v]) for v in (1, 0)]
    if any(len(yy) == 0 for yy, _ in parts):
        return dict.fromkeys(GROUP_KEYS, float("nan"))
    (y1, p1), (y0, p0) = parts
    out["SPD"] = _rate(p1 == 1) - _rate(p0 == 1)
    out["EOD"] = float(recall_score(y1, p1, zero_division=0) - recall_score(y0, p0, zero_division=0))
    out["MAD"] = float(accuracy_score(y1, p1) - accuracy_score(y0, p0))
    out["PED"] = _rate(p1[y1 == 0] == 1) - _rate(p0[y0 == 0] == 1)
    out["PRD"] = float(precision_score(y1, p1, zero_division=0) - precision_score(y0, p0, zero_division=0))
    return out


def utility_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """ACC, f1, Precision, Recall and ROC_AUC (on hard predictions, as the paper does)."""
    y, pred = np.asarray(y).astype(int), np.asarray(pred).astype(int)
    auc = float(roc_auc_score(y, pred)) if len(np.unique(y)) == 2 else float("nan")
    return {
        "ACC": float(accuracy_score(y, pred)),
        "f1": float(f1_score(y, pred, zero_division=0)),
        "Precision": float(precision_score(y, pred, zero_division=0)),
        "Recall": float(recall_score(y, pred, zero_division=0)),
        "ROC_AUC": auc,
    }


def _chunks(n: int, size: int) -> list[range]:
    size = max(1, size)
    return [range(s, min(s + size, n)) for s in range(0, n, size)]


def _kneighbors(X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``NearestNeighbors(k).fit(X).kneighbors(X)``, querying each distinct row once.

    A query's answer depends only on the fitted tree and the query's coordinates, so duplicate
    rows (most rows of a generalized table) get exactly the answer they would get on their own."""
    nn = NearestNeighbors(n_neighbors=k, metric="euclidean").fit(X)
    uniq, inv = np.unique(X, axis=0, return_inverse=True)
    if len(uniq) == len(X):
        return nn.kneighbors(X)
    dist, nb = nn.kneighbors(uniq)
    inv = inv.reshape(-1)
    return dist[inv], nb[inv]


def individual_metrics(proba: np.ndarray, X: np.ndarray, k: int = 100, workers: int = 1) -> dict[str, float]:
    """ASF, ALF, NCF of the paper (see module docstring)."""
    P = np.asarray(proba)
    if P.ndim == 1:
        P = np.column_stack([1 - P, P])
    X = np.asarray(X, dtype=float)
    n = len(X)
    if n <= k:
        return dict.fromkeys(INDIVIDUAL_KEYS, float("nan"))
    dist, nb = _kneighbors(X, k + 1)
    diff = np.abs(P[:, None, :] - P[nb[:, 1:]])  # (n, k, 2)
    d = np.maximum(dist[:, 1:], 1e-6)
    per_pair = diff * d[:, :, None]
    asf = float(np.mean([per_pair[c.start : c.stop].mean() for c in _chunks(n, n // workers)]))
    row_ncf = diff.mean(axis=(1, 2))
    ncf = float(np.mean([row_ncf[c.start : c.stop].mean() for c in _chunks(n, n // workers)]))
    # ALF: the paper queries k (not k + 1) neighbours, the row itself included and then skipped
    dk, nk = dist[:, :k], nb[:, :k]
    keep = dk > 1e-10
    # a row's KL values depend on its features (hence neighbours) and probabilities only:
    # computed once per distinct (features, probabilities) row, row-wise as scipy does
    _, first, inv = np.unique(np.column_stack([X, P]), axis=0, return_index=True, return_inverse=True)
    kl_first = entropy(np.repeat(P[first], k, axis=0), P[nk[first].ravel()], axis=1)
    kl = kl_first.reshape(len(first), k)[inv.reshape(-1)]
    ratio = np.where(keep, kl / np.where(keep, dk, 1.0), 0.0)
    alf = float(max(0.0, ratio.max()))
    return {"ASF": abs(asf), "ALF": abs(alf), "NCF": abs(ncf)}
