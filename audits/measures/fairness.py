"""Group fairness of binary predictions with respect to one protected attribute.

All per-group rates come from fairlearn (`MetricFrame` with `selection_rate`,
`true_positive_rate`, `false_positive_rate`, precision, accuracy) and the between-group
summaries from fairlearn's own ``*_difference`` / ``*_ratio`` functions. What fairlearn
does not provide is the *signed* privileged-vs-rest view the audit literature reports, so
that part is read off ``MetricFrame.by_group``.

Orientation: the FAVOURABLE outcome. ``favourable`` (1 or 0) is the label that is good for
the person (a loan, "no re-offence"); every rate below is the rate of the favourable outcome
(AIF360's convention). With ``favourable=0`` labels and predictions are flipped before any rate
is taken, so SR is the share predicted "no re-offence", TPR the share of people who did not
re-offend that the model predicted so, and DI < 0.8 always means the unprivileged group gets the
good outcome less often.

Groups. ``privileged`` is one value or several values of the attribute (one privileged group);
every other value (e.g. all non-Caucasian races) is pooled into the single unprivileged group,
so a multi-valued attribute is audited as privileged vs the rest. The ``*_groups`` numbers
instead use every original value as its own group (fairlearn ``method="between_groups"``: max −
min over groups) — over the groups with at least ``min_group_size`` rows only: with 2 and 9
test rows in a group, "equalized odds difference = 1.0" is noise, not a finding.

Definitions (on the favourable outcome f: SR = P(ŷ=f), TPR = P(ŷ=f|y=f), FPR = P(ŷ=f|y≠f),
PPV = P(y=f|ŷ=f); "p" = privileged group, "u" = unprivileged group). Signed differences are
**p − u**, so a positive value means the privileged group gets the favourable outcome more often:

- ``spd``               statistical parity difference  SR_p − SR_u
- ``disparate_impact``  SR_u / SR_p (1 = parity; the "80 % rule" flags < 0.8)
- ``eq_opp_diff``       equal opportunity difference   TPR_p − TPR_u
- ``fpr_diff``          false positive rate difference FPR_p − FPR_u
- ``avg_odds_diff``     (TPR_p − TPR_u + FPR_p − FPR_u) / 2
- ``eq_odds_diff``      equalized odds difference max(|ΔTPR|, |ΔFPR|) (fairlearn, unsigned)
- ``ppv_diff``          predictive parity difference   PPV_p − PPV_u
- ``acc_diff``          accuracy difference            ACC_p − ACC_u
- ``dp_diff_groups``, ``dp_ratio_groups``, ``eq_odds_diff_groups``, ``eq_opp_diff_groups``:
  fairlearn's max − min (ratio: min / max) over the original groups of >= ``min_group_size``
  rows, unsigned; ``n_groups`` groups seen, ``n_small_groups`` of them left out as too small,
  ``n_smallest_group`` the size of the smallest group.

A rate whose denominator is empty in a group (e.g. TPR in a group without positives) is
NaN rather than fairlearn's silent 0, so it cannot masquerade as a real disparity.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score, precision_score

from audits.datasets.protected import privileged_mask as protected_mask

PRIVILEGED = "privileged"
UNPRIVILEGED = "unprivileged"

FAIRNESS_KEYS = (
    "spd",
    "disparate_impact",
    "eq_opp_diff",
    "fpr_diff",
    "avg_odds_diff",
    "eq_odds_diff",
    "ppv_diff",
    "acc_diff",
    "sr_priv",
    "sr_unpriv",
    "n_priv",
    "n_unpriv",
    "dp_diff_groups",
    "dp_ratio_groups",
    "eq_odds_diff_groups",
    "eq_opp_diff_groups",
    "n_groups",
    "n_small_groups",
    "n_smallest_group",
)


def _guarded(metric: Callable[..., float], need: Callable[[np.ndarray, np.ndarray], bool]) -> Callable:
    """Wrap a fairlearn rate so an empty denominator gives NaN instead of 0."""

    def wrapped(y_true: Any, y_pred: Any, sample_weight: Any = None) -> float:
        yt, yp = np.asarray(y_true), np.asarray(y_pred)
        return float(metric(yt, yp, sample_weight=sample_weight)) if need(yt, yp) else float("nan")

    wrapped.__name__ = getattr(metric, "__name__", "metric")
    return wrapped


def _precision(y_true: Any, y_pred: Any, sample_weight: Any = None) -> float:
    return float(precision_score(y_true, y_pred, sample_weight=sample_weight, zero_division=0))


def _count(y_true: Any, y_pred: Any, sample_weight: Any = None) -> float:
    """Rows in the group (the weights are the row counts of the collapsed table)."""
    return float(np.sum(sample_weight)) if sample_weight is not None else float(len(y_true))


_tpr = _guarded(true_positive_rate, lambda yt, yp: bool((yt == 1).any()))
_fpr = _guarded(false_positive_rate, lambda yt, yp: bool((yt == 0).any()))
_ppv = _guarded(_precision, lambda yt, yp: bool((yp == 1).any()))
_sr = _guarded(selection_rate, lambda yt, yp: len(yp) > 0)


def _as_binary(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values)
    uniq = set(np.unique(arr).tolist())
    if not uniq <= {0, 1}:
        raise ValueError(f"{name} must be 0/1 labels, got values {sorted(map(str, uniq))[:5]}")
    return arr.astype(int)


def privileged_mask(sensitive_features: pd.Series, privileged: Any) -> np.ndarray:
    """True where the attribute takes a privileged value (one or several; compared as text, 1 == "1")."""
    return protected_mask(sensitive_features, privileged)


def group_sizes(sensitive_features: Any) -> dict[str, int]:
    """Rows per original attribute value (what a reader needs next to every multi-group number)."""
    counts = pd.Series(np.asarray(sensitive_features)).astype(str).value_counts()
    return {str(k): int(v) for k, v in counts.items()}


def _collapse(y_true: np.ndarray, y_pred: np.ndarray, groups: pd.Series) -> pd.DataFrame:
    """Identical (group, y, ŷ) rows merged into one row with weight = count.

    Every metric used here is a function of the per-group confusion counts, so passing the
    counts as ``sample_weight`` gives exactly the per-row result — while fairlearn's
    MetricFrame, which converts its inputs element by element, runs on <= 4 rows per group
    instead of ~10^4 (Adult test split: seconds per cell otherwise).
    """
    frame = pd.DataFrame({"group": groups.astype(str).to_numpy(), "y": y_true, "p": y_pred})
    return frame.groupby(["group", "y", "p"], sort=True).size().rename("w").reset_index()


def group_fairness(
    y_true: Any,
    y_pred: Any,
    sensitive_features: pd.Series,
    privileged: Any,
    favourable: int = 1,
    min_group_size: int = 0,
) -> dict[str, float]:
    """Group fairness numbers (see module docstring) for one protected attribute.

    `y_true`, `y_pred` are 0/1 labels (1 = the positive label); `favourable` says which of the two
    is the favourable outcome every rate is taken of; `privileged` is one value or a list of
    values; `sensitive_features` holds the raw (never generalized) attribute values.
    """
    if favourable not in (0, 1):
        raise ValueError(f"favourable must be 0 or 1, got {favourable!r}")
    yt = _as_binary(y_true, "y_true")
    yp = _as_binary(y_pred, "y_pred")
    if favourable == 0:  # rates of the favourable outcome: flip both, then "1" is favourable
        yt, yp = 1 - yt, 1 - yp
    sf = pd.Series(np.asarray(sensitive_features), name="group")
    if not len(yt) == len(yp) == len(sf):
        raise ValueError(f"length mismatch: y_true {len(yt)}, y_pred {len(yp)}, sensitive {len(sf)}")
    binary = pd.Series(np.where(privileged_mask(sf, privileged), PRIVILEGED, UNPRIVILEGED))
    two = _collapse(yt, yp, binary)
    sizes = sf.astype(str).value_counts()
    big = set(sizes.index[sizes >= min_group_size])
    many_all = _collapse(yt, yp, sf)
    many = many_all[many_all["group"].isin(big)].reset_index(drop=True)
    w2 = {"sample_weight": two["w"].to_numpy()}
    wm = {"sample_weight": many["w"].to_numpy()}

    with warnings.catch_warnings():
        # fairlearn/sklearn warn on empty groups; the NaN guards above handle those cases.
        warnings.simplefilter("ignore", category=RuntimeWarning)
        warnings.simplefilter("ignore", category=UserWarning)
        metrics = {"sr": _sr, "tpr": _tpr, "fpr": _fpr, "ppv": _ppv, "acc": accuracy_score, "n": _count}
        frame = MetricFrame(
            metrics=metrics,
            y_true=two["y"].to_numpy(),
            y_pred=two["p"].to_numpy(),
            sensitive_features=two["group"],
            sample_params={name: w2 for name in metrics},
        )
        by = frame.by_group.reindex([PRIVILEGED, UNPRIVILEGED])
        p, u = by.loc[PRIVILEGED], by.loc[UNPRIVILEGED]
        n_p, n_u = float(np.nan_to_num(p["n"])), float(np.nan_to_num(u["n"]))
        ym, pm = many["y"].to_numpy(), many["p"].to_numpy()
        groups_kw: dict[str, Any] = {"sensitive_features": many["group"], **wm}
        out = {
            "spd": float(p["sr"] - u["sr"]),
            "disparate_impact": float(u["sr"] / p["sr"]) if p["sr"] > 0 else float("nan"),
            "eq_opp_diff": float(p["tpr"] - u["tpr"]),
            "fpr_diff": float(p["fpr"] - u["fpr"]),
            "avg_odds_diff": float((p["tpr"] - u["tpr"] + p["fpr"] - u["fpr"]) / 2),
            "eq_odds_diff": float(
                equalized_odds_difference(
                    two["y"].to_numpy(), two["p"].to_numpy(), sensitive_features=two["group"], **w2
                )
            )
            if n_p and n_u
            else float("nan"),
            "ppv_diff": float(p["ppv"] - u["ppv"]),
            "acc_diff": float(p["acc"] - u["acc"]),
            "sr_priv": float(p["sr"]),
            "sr_unpriv": float(u["sr"]),
            "n_priv": n_p,
            "n_unpriv": n_u,
        }
        nan = float("nan")
        out.update(
            dp_diff_groups=float(demographic_parity_difference(ym, pm, **groups_kw)) if len(many) else nan,
            dp_ratio_groups=float(demographic_parity_ratio(ym, pm, **groups_kw)) if len(many) else nan,
            eq_odds_diff_groups=float(equalized_odds_difference(ym, pm, **groups_kw)) if len(many) else nan,
            eq_opp_diff_groups=float(equal_opportunity_difference(ym, pm, **groups_kw))
            if len(many)
            else nan,
            n_groups=float(len(sizes)),
            n_small_groups=float(len(sizes) - len(big)),
            n_smallest_group=float(sizes.min()) if len(sizes) else nan,
        )
    return out
