"""What a protocol run measured, without ``--compare``: SPD / EOD / ACC / NCF against the privacy level.

Why: ``fedlab audit --protocol arcolezi2025`` on a new data set (nothing published to compare
with) printed only a row count. `trend_table` is the per-cell summary the console prints and the
report plots, written as ``trend.csv``: per (method, k, ℓ/t, protected attribute, metric) the
mean, std and 95 % t interval over seeds, and the change against the same seed's k = 1 row
(paired by seed, 95 % t interval). The numbers keep the paper's definitions (`paper_metrics`:
group 1 = the privileged value, rates of ŷ = 1); `near_trivial_seeds` counts the seeds whose
model is near-trivial by `audits.measures.utility.utility_context`, from the row's confusion
matrix.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from audits.measures.utility import utility_context

TREND_METRICS = ("SPD", "EOD", "ACC", "NCF")
CELL = ["method", "k_parameter", "anon_parameter", "protected_att"]


def _t_half(values: np.ndarray) -> float:
    from scipy.stats import t

    n = len(values)
    if n < 2:
        return float("nan")
    return float(t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n))


def near_trivial(cm: str) -> str:
    """The near-trivial reason of one row from its confusion matrix ``[[tn, fp], [fn, tp]]``."""
    counts = [int(x) for x in re.findall(r"\d+", str(cm))]
    if len(counts) != 4:
        return ""
    tn, fp, fn, tp = counts
    y = np.repeat([0, 0, 1, 1], [tn, fp, fn, tp])
    p = np.repeat([0, 1, 0, 1], [tn, fp, fn, tp])
    return str(utility_context(y, p)["degenerate_reason"])


def trend_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per cell and metric: seeds, mean, std, CI, change vs k = 1 (paired by seed), near-trivial seeds."""
    ok = results[results["status"] == "ok"].copy()
    if ok.empty:
        return pd.DataFrame()
    ok["near_trivial"] = ok["CM"].map(near_trivial) if "CM" in ok.columns else ""
    base = ok[ok["k_parameter"] == 1].drop_duplicates(["SEED", "protected_att"])
    rows = []
    for keys, part in ok.groupby(CELL, sort=True):
        cell = dict(zip(CELL, keys, strict=True))
        ref = base[base["protected_att"] == cell["protected_att"]].set_index("SEED")
        flagged = part["near_trivial"].astype(bool)
        for metric in TREND_METRICS:
            values = pd.to_numeric(part[metric], errors="coerce").dropna().to_numpy(dtype=float)
            if not len(values):
                continue
            half = _t_half(values)
            mine = part.set_index("SEED")[metric].astype(float)
            common = mine.index.intersection(ref.index)
            diff = (mine.loc[common] - ref.loc[common, metric].astype(float)).to_numpy(dtype=float)
            dhalf = _t_half(diff) if len(diff) else float("nan")
            dmean = float(diff.mean()) if len(diff) else float("nan")
            rows.append(
                {
                    **cell,
                    "metric": metric,
                    "n_seeds": len(values),
                    "mean": float(values.mean()),
                    "std": float(values.std(ddof=1)) if len(values) > 1 else float("nan"),
                    "ci_low": float(values.mean()) - half,
                    "ci_high": float(values.mean()) + half,
                    "change_vs_k1": dmean,
                    "change_ci_low": dmean - dhalf,
                    "change_ci_high": dmean + dhalf,
                    "paired_seeds": len(diff),
                    "near_trivial_seeds": int(flagged.sum()),
                    "near_trivial_reason": str(part.loc[flagged, "near_trivial"].iloc[0])
                    if flagged.any()
                    else "",
                }
            )
    return pd.DataFrame(rows)
