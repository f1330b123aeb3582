"""Federation metrics: accuracy and the Group Effect criterion for negative transfer.

Group Effect = accuracy of the aggregated (global) model on the target domain minus
the mean target accuracy of the clients' own returned models in that round. It is the
gain from aggregation; a negative value means aggregation hurt (negative transfer).
The clients are those that trained that round: with per-round sampling (`clients_per_round`)
the round's sample, without clients whose training failed or whose DP budget ran out — the
models that were actually averaged.

One run's Group Effect is a difference of accuracies on the same target test rows, so its
test-row noise has a paired interval (`group_effect_interval`): per row, the global model's hit
minus the clients' mean hit. That interval is what a single run can say about "negative
transfer"; the spread over training seeds is the paired comparison's (`fedlab.metrics.stats`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fedlab.metrics.stats import LEVEL, t_critical


def group_effect(global_accuracy: float, client_accuracies: Sequence[float]) -> float:
    """Global accuracy minus the mean accuracy of the clients' returned models: the gain from aggregation
    (negative = negative transfer)."""
    if len(client_accuracies) == 0:
        raise ValueError("group_effect needs at least one client accuracy")
    return float(global_accuracy - float(np.mean(client_accuracies)))


def group_effect_interval(
    global_hits: np.ndarray, client_hits: Sequence[np.ndarray], level: float = LEVEL
) -> tuple[float, float]:
    """95 % paired t interval of one round's Group Effect over the target test rows.

    Why: a Group Effect of −2 pp on 300 test rows may be three predictions; calling it negative
    transfer needs the dip to exceed what a new draw of test rows could undo. Per row i,
    d_i = hit_global(i) − mean_k hit_k(i); the Group Effect is mean(d) and its interval
    mean(d) ± t(0.975, n−1)·sd(d)/√n. It is conditional on the trained models (one seed): the
    training seed's spread is not in it. NaN bounds with fewer than two rows or no clients."""
    g = np.asarray(global_hits, dtype=float)
    if len(client_hits) == 0 or g.size < 2:
        return float("nan"), float("nan")
    clients_mean = np.mean(np.stack([np.asarray(h, dtype=float) for h in client_hits]), axis=0)
    return hit_difference_interval(g, clients_mean, level)


def hit_difference_interval(
    a_hits: np.ndarray, b_hits: np.ndarray, level: float = LEVEL
) -> tuple[float, float]:
    """95 % paired t interval of mean(a − b) over the same test rows (hits as 0/1 or row means).

    Why: "client k's own model beat the global model" on 57 test rows may be four predictions; the
    pairing by row is what makes the comparison as sharp as the rows allow. NaN with < 2 rows."""
    d = np.asarray(a_hits, dtype=float) - np.asarray(b_hits, dtype=float)
    if d.size < 2:
        return float("nan"), float("nan")
    half = t_critical(d.size, level) * float(d.std(ddof=1)) / float(np.sqrt(d.size))
    mean = float(d.mean())
    return mean - half, mean + half


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation over seeds, NaNs ignored (std 0 for a single value)."""
    arr = np.asarray([v for v in values if v == v], dtype=float)
    if arr.size == 0:
        return float("nan"), float("nan")
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0
