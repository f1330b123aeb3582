"""Group fairness from confusion counts: `audits.measures.fairness.group_fairness`'s numbers, computed once.

Why: every number `group_fairness` reports is a function of the per-group confusion counts
(tp, fp, fn, tn of each attribute value). fairlearn rebuilds a `MetricFrame` (pandas group-by,
sklearn confusion matrices) several times per attribute, which costs tens of milliseconds per
client per round — at 100 clients that was most of a round. Here one `np.bincount` gives the
(group, y, ŷ) table and the rates follow by plain arithmetic, with fairlearn's semantics kept
exactly (tests/test_group_rates.py checks bit-for-bit equality against `group_fairness`):

* privileged = one or several attribute values (compared as text), unprivileged = every other
  value pooled;
* every rate is of the favourable outcome: with ``favourable=0`` the [y, ŷ] axes are flipped;
* ``*_groups`` use only groups with >= ``min_group_size`` rows;
* the guarded rates (TPR, FPR, PPV) are NaN when their denominator is empty in a group;
* fairlearn's own rates inside ``eq_odds_diff`` and the ``*_groups`` numbers are 0 there;
* ``*_groups`` = max − min (ratio: min / max) over the groups present.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from audits.datasets.protected import as_text

NAN = float("nan")


def encode(values: pd.Series | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values as text, int code per row): done once per client and attribute."""
    text = np.asarray(pd.Series(np.asarray(values, dtype=object)).astype(str).to_numpy(), dtype=str)
    labels, codes = np.unique(text, return_inverse=True)
    return labels, codes.astype(np.int64)


def confusion_table(codes: np.ndarray, n_groups: int, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """(groups, 2, 2) counts indexed [group, y, ŷ] for 0/1 labels and predictions."""
    yt = np.asarray(y_true).astype(np.int64)
    yp = np.asarray(y_pred).astype(np.int64)
    if not (len(codes) == len(yt) == len(yp)):
        raise ValueError(f"length mismatch: groups {len(codes)}, y_true {len(yt)}, y_pred {len(yp)}")
    if len(yt) and (yt.min() < 0 or yt.max() > 1 or yp.min() < 0 or yp.max() > 1):
        raise ValueError("y_true and y_pred must be 0/1 labels")
    flat = np.bincount(codes * 4 + yt * 2 + yp, minlength=4 * n_groups)
    return flat.reshape(n_groups, 2, 2)


def _div(num: float, den: float) -> float:
    return float(num / den) if den > 0 else NAN


class _Rates:
    """Rates of one group from its 2×2 counts [y, ŷ] (guarded: NaN on an empty denominator)."""

    def __init__(self, cell: np.ndarray) -> None:
        tn, fp, fn, tp = (int(v) for v in cell.reshape(4))
        self.n = tn + fp + fn + tp
        self.sr = _div(fp + tp, self.n)
        self.tpr = _div(tp, tp + fn)
        self.fpr = _div(fp, fp + tn)
        self.ppv = _div(tp, tp + fp)
        self.acc = _div(tp + tn, self.n)
        # fairlearn's unguarded true/false positive rates (0 for an empty denominator)
        self.tpr0 = self.tpr if tp + fn else 0.0
        self.fpr0 = self.fpr if fp + tn else 0.0


def _spread(values: Sequence[float]) -> float:
    vals = [v for v in values if v == v]
    return float(max(vals) - min(vals)) if vals else NAN


def _ratio(values: Sequence[float]) -> float:
    vals = [v for v in values if v == v]
    if not vals:
        return NAN
    low, high = min(vals), max(vals)
    return float(np.float64(low) / np.float64(high)) if high != 0 else NAN


def fairness_from_table(
    labels: Sequence[str],
    table: np.ndarray,
    privileged: object,
    favourable: int = 1,
    min_group_size: int = 0,
) -> dict[str, float]:
    """`group_fairness` (see `audits.measures.fairness`) from a (groups, 2, 2) [y, ŷ] count table.

    `privileged`: one value or a list/tuple of values; `favourable`: the label (0 or 1) whose rates
    are reported."""
    table = np.asarray(table, dtype=np.int64)
    if favourable == 0:
        table = table[:, ::-1, ::-1]
    elif favourable != 1:
        raise ValueError(f"favourable must be 0 or 1, got {favourable!r}")
    sizes = table.reshape(len(labels), 4).sum(axis=1)
    present = sizes > 0
    big = present & (sizes >= min_group_size)
    wanted = {as_text(v) for v in (privileged if isinstance(privileged, list | tuple) else [privileged])}
    is_priv = np.array([as_text(v) in wanted for v in labels], dtype=bool)
    priv_cell = table[is_priv].sum(axis=0)
    unpriv_cell = table[~is_priv].sum(axis=0)
    p, u = _Rates(priv_cell), _Rates(unpriv_cell)
    nan_rates = p.n == 0, u.n == 0
    if nan_rates[0]:
        p.sr = p.tpr = p.fpr = p.ppv = p.acc = NAN
    if nan_rates[1]:
        u.sr = u.tpr = u.fpr = u.ppv = u.acc = NAN
    many = [_Rates(table[i]) for i in range(len(labels)) if big[i]]
    eq_odds = max(abs(p.tpr0 - u.tpr0), abs(p.fpr0 - u.fpr0)) if p.n and u.n else NAN
    return {
        "spd": p.sr - u.sr,
        "disparate_impact": u.sr / p.sr if p.sr > 0 else NAN,
        "eq_opp_diff": p.tpr - u.tpr,
        "fpr_diff": p.fpr - u.fpr,
        "avg_odds_diff": (p.tpr - u.tpr + p.fpr - u.fpr) / 2,
        "eq_odds_diff": float(eq_odds),
        "ppv_diff": p.ppv - u.ppv,
        "acc_diff": p.acc - u.acc,
        "sr_priv": p.sr,
        "sr_unpriv": u.sr,
        "n_priv": float(p.n),
        "n_unpriv": float(u.n),
        "dp_diff_groups": _spread([g.sr for g in many]),
        "dp_ratio_groups": _ratio([g.sr for g in many]),
        "eq_odds_diff_groups": max(_spread([g.tpr0 for g in many]), _spread([g.fpr0 for g in many])),
        "eq_opp_diff_groups": _spread([g.tpr0 for g in many]),
        "n_groups": float(present.sum()),
        "n_small_groups": float(present.sum() - big.sum()),
        "n_smallest_group": float(sizes[present].min()) if present.any() else NAN,
    }


def group_fairness_fast(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    sensitive_features: pd.Series | np.ndarray,
    privileged: object,
    favourable: int = 1,
    min_group_size: int = 0,
) -> dict[str, float]:
    """Drop-in for `audits.measures.fairness.group_fairness` on raw rows (encodes, counts, computes)."""
    labels, codes = encode(sensitive_features)
    table = confusion_table(codes, len(labels), y_true, y_pred)
    return fairness_from_table(labels, table, privileged, favourable, min_group_size)
