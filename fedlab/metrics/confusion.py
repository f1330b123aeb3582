"""Binary confusion counts of the global model, per client and on the target, and the utility they imply.

Why counts: a client must not send its rows or predictions, but its 2×2 table [y, ŷ] is enough for
the utility context a reader needs before trusting a fairness number (majority-class rate,
balanced accuracy, predicted-positive rate): `utility_from_confusion` rebuilds equivalent label
arrays and calls `audits.measures.utility.utility_context`, the one owner of those definitions.
The client's table comes from the fairness counts it already sends (`fedlab.metrics.fairness`):
the cells of any one protected attribute sum to the client's whole confusion table.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np


def confusion_matrix_counts(y_true: Any, y_pred: Any) -> list[list[int]]:
    """[[tn, fp], [fn, tp]] of 0/1 labels and predictions (class 1 = the positive label)."""
    yt = np.asarray(y_true).astype(np.int64)
    yp = np.asarray(y_pred).astype(np.int64)
    flat = np.bincount(yt * 2 + yp, minlength=4)[:4]
    return [[int(flat[0]), int(flat[1])], [int(flat[2]), int(flat[3])]]


def confusion_from_counts(rows: Iterable[Sequence[Any]]) -> list[list[int]]:
    """A client's [[tn, fp], [fn, tp]] from its (attribute, value, y, ŷ, count) fairness cells.

    Only the first attribute's cells are summed: each attribute partitions the same rows."""
    table = np.zeros((2, 2), dtype=np.int64)
    first = None
    for attr, _value, y, p, n in rows:
        first = attr if first is None else first
        if attr == first:
            table[int(y), int(p)] += int(n)
    return table.tolist()


def utility_from_confusion(confusion: Sequence[Sequence[int]] | None) -> dict[str, Any]:
    """`utility_context` (accuracy added) of the labels/predictions a confusion table stands for."""
    from audits.measures.utility import utility_context

    table = np.asarray(confusion if confusion is not None else [[0, 0], [0, 0]], dtype=np.int64)
    cells = [(0, 0), (0, 1), (1, 0), (1, 1)]
    reps = np.array([table[y, p] for y, p in cells])
    y_true = np.repeat([c[0] for c in cells], reps)
    y_pred = np.repeat([c[1] for c in cells], reps)
    out = utility_context(y_true, y_pred)
    out["accuracy"] = float((y_true == y_pred).mean()) if len(y_true) else float("nan")
    return out
