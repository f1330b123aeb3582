"""Federation metrics: accuracy and the Group Effect criterion for negative transfer.

Group Effect = accuracy of the aggregated (global) model on the target domain minus
the mean target accuracy of the clients' own returned models in that round. It is the
gain from aggregation; a negative value means aggregation hurt (negative transfer).
The clients are those that trained that round: with per-round sampling (`clients_per_round`)
the round's sample, without clients whose training failed or whose DP budget ran out — the
models that were actually averaged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def group_effect(global_accuracy: float, client_accuracies: Sequence[float]) -> float:
    """Global accuracy minus the mean accuracy of the clients' returned models: the gain from aggregation
    (negative = negative transfer)."""
    if len(client_accuracies) == 0:
        raise ValueError("group_effect needs at least one client accuracy")
    return float(global_accuracy - float(np.mean(client_accuracies)))


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation over seeds, NaNs ignored (std 0 for a single value)."""
    arr = np.asarray([v for v in values if v == v], dtype=float)
    if arr.size == 0:
        return float("nan"), float("nan")
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0
