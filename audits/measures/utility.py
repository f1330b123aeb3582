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


# A model that gives one class to at least this share of the rows "predicts one class".
ONE_CLASS_SHARE = 0.98


def utility_context(y_true: Any, y_pred: Any) -> dict[str, Any]:
    """What a reader needs to judge a model before its fairness: is it better than a constant?

    Returns the majority-class rate (accuracy of always predicting the majority class), balanced
    accuracy, F1 of class 1, the predicted-positive rate next to the prevalence, and
    ``degenerate`` with a reason when the model (nearly) predicts one class, or its balanced
    accuracy is within noise of 0.5: less than two standard errors above it, with
    SE = ½·sqrt(¼/n_pos + ¼/n_neg) (the binomial error of TPR and TNR at 0.5). A fairness gap of
    such a model says little: it shrinks when the model stops predicting positives for anyone.
    """
    yt = np.asarray(y_true).astype(int)
    yp = np.asarray(y_pred).astype(int)
    n = len(yt)
    if n == 0:
        nan = float("nan")
        keys = ("majority_rate", "prevalence", "positive_rate", "balanced_accuracy", "f1")
        empty = dict.fromkeys(keys, nan)
        return {"n": 0, **empty, "degenerate": False, "degenerate_reason": ""}
    prevalence = float(yt.mean())
    positive_rate = float(yp.mean())
    n_pos, n_neg = int(yt.sum()), int(n - yt.sum())
    both = n_pos > 0 and n_neg > 0
    ba = float(balanced_accuracy_score(yt, yp)) if both else float("nan")
    reason = ""
    top = max(positive_rate, 1 - positive_rate)
    if top >= ONE_CLASS_SHARE:
        label = 1 if positive_rate >= 0.5 else 0
        reason = f"predicts class {label} for {100 * top:.1f} % of rows"
    elif both:
        se = 0.5 * np.sqrt(0.25 / n_pos + 0.25 / n_neg)
        if ba < 0.5 + 2 * se:
            reason = f"balanced accuracy {ba:.3f} is within noise of 0.5 (2·SE = {2 * se:.3f})"
    return {
        "n": n,
        "majority_rate": max(prevalence, 1 - prevalence),
        "prevalence": prevalence,
        "positive_rate": positive_rate,
        "balanced_accuracy": ba,
        "f1": float(f1_score(yt, yp, zero_division=0)),
        "degenerate": bool(reason),
        "degenerate_reason": reason,
    }
