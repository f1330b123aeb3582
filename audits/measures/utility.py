"""Predictive utility of a classifier on the (generalized) test split."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, roc_auc_score

UTILITY_KEYS = ("accuracy", "balanced_accuracy", "f1", "roc_auc", "positive_rate")


def utility_metrics(y_true: Any, y_pred: Any, proba: Any) -> dict[str, float]:
    """Accuracy, balanced accuracy, F1 (positive class 1), ROC-AUC on probabilities, predicted positive rate.

    ROC-AUC is NaN when the test split holds a single class (tiny per-client partitions),
    rather than an exception that would kill a whole grid.
    """
    yt, yp, pr = (
        np.asarray(y_true).astype(int),
        np.asarray(y_pred).astype(int),
        np.asarray(proba, dtype=float),
    )
    auc = float(roc_auc_score(yt, pr)) if len(np.unique(yt)) == 2 else float("nan")
    return {
        "accuracy": float(accuracy_score(yt, yp)),
        "balanced_accuracy": float(balanced_accuracy_score(yt, yp))
        if len(np.unique(yt)) == 2
        else float("nan"),
        "f1": float(f1_score(yt, yp, zero_division=0)),
        "roc_auc": auc,
        "positive_rate": float(yp.mean()) if len(yp) else float("nan"),
    }
