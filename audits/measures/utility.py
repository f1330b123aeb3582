"""Predictive utility of a classifier on the (generalized) test split."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, roc_auc_score

UTILITY_KEYS = (
    "accuracy",
    "balanced_accuracy",
    "f1",
    "roc_auc",
    "positive_rate",
    "majority_rate",
    "prevalence",
    "near_trivial",
)


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
# Near-trivial: balanced accuracy below this, or a predicted-positive rate outside
# [prevalence / RATE_FACTOR, prevalence × RATE_FACTOR].
MIN_BALANCED_ACCURACY = 0.55
RATE_FACTOR = 2.0
CONTEXT_KEYS = ("majority_rate", "prevalence", "near_trivial")


def utility_context(y_true: Any, y_pred: Any) -> dict[str, Any]:
    """What a reader needs to judge a model before its fairness: is it better than a constant?

    Returns the majority-class rate (accuracy of always predicting the majority class), the
    model's accuracy and balanced accuracy, F1 of class 1, the predicted-positive rate next to
    the prevalence, and ``degenerate`` (near-trivial) with the reasons, when any of these holds:

    * it predicts one class for >= 98 % of rows (a constant predictor is always flagged);
    * its accuracy is not above the majority-class rate;
    * its balanced accuracy is below 0.55, or within noise of 0.5 (less than 2 SE above it,
      SE = ½·sqrt(¼/n_pos + ¼/n_neg): the binomial error of TPR and TNR at 0.5);
    * its predicted-positive rate is below half the prevalence or above twice it.

    Why: a fairness gap of such a model says little — it shrinks when the model stops predicting
    positives for anyone — so findings never call its fairness change an improvement.
    """
    yt = np.asarray(y_true).astype(int)
    yp = np.asarray(y_pred).astype(int)
    n = len(yt)
    if n == 0:
        nan = float("nan")
        keys = ("majority_rate", "prevalence", "positive_rate", "accuracy", "balanced_accuracy", "f1")
        return {"n": 0, **dict.fromkeys(keys, nan), "degenerate": False, "degenerate_reason": ""}
    prevalence = float(yt.mean())
    positive_rate = float(yp.mean())
    majority = max(prevalence, 1 - prevalence)
    accuracy = float((yt == yp).mean())
    n_pos, n_neg = int(yt.sum()), int(n - yt.sum())
    both = n_pos > 0 and n_neg > 0
    ba = float(balanced_accuracy_score(yt, yp)) if both else float("nan")
    reasons = []
    top = max(positive_rate, 1 - positive_rate)
    if top >= ONE_CLASS_SHARE:
        label = 1 if positive_rate >= 0.5 else 0
        reasons.append(f"predicts class {label} for {100 * top:.1f} % of rows")
    if accuracy <= majority:
        reasons.append(f"accuracy {accuracy:.3f} is not above the majority-class rate {majority:.3f}")
    if both:
        se = 0.5 * np.sqrt(0.25 / n_pos + 0.25 / n_neg)
        if ba < MIN_BALANCED_ACCURACY or ba < 0.5 + 2 * se:
            reasons.append(
                f"balanced accuracy {ba:.3f} < {max(MIN_BALANCED_ACCURACY, 0.5 + 2 * se):.3f} "
                f"(0.5 = a constant; 2·SE = {2 * se:.3f})"
            )
        if not prevalence / RATE_FACTOR <= positive_rate <= prevalence * RATE_FACTOR:
            reasons.append(
                f"predicted-positive rate {100 * positive_rate:.1f} % vs prevalence {100 * prevalence:.1f} % "
                f"(outside ×{1 / RATE_FACTOR:g}–×{RATE_FACTOR:g})"
            )
    return {
        "n": n,
        "majority_rate": majority,
        "prevalence": prevalence,
        "positive_rate": positive_rate,
        "accuracy": accuracy,
        "balanced_accuracy": ba,
        "f1": float(f1_score(yt, yp, zero_division=0)),
        "degenerate": bool(reasons),
        "degenerate_reason": "; ".join(reasons),
    }
