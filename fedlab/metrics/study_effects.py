"""Paired effects in a privacy × fairness study: what a privacy treatment or a strategy changes.

A study crosses strategies with privacy conditions (client DP-SGD at ε, local anonymization
k / ℓ / t) over seeds. Two questions, both answered by pairing runs that share a seed (same
data split, same client order, same initial weights), so seed-to-seed variation cancels:

* **privacy effect**: a condition minus the matching no-privacy condition of the SAME strategy
  (no DP, raw rows), seed by seed;
* **strategy effect**: a strategy minus the baseline strategy (FedAvg) within the SAME privacy
  condition, seed by seed.

Each effect is a paired t 95% interval with win counts (`fedlab.metrics.stats`). Input: one row
per run with the condition columns ``strategy``, ``epsilon_target`` (None = no DP), ``anonymize``
("none" = raw) and ``seed``, and the metric columns (fractions; fairness gaps signed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from fedlab.metrics.stats import Interval, paired_difference

BASELINE = "fedavg"
NO_DP = -1.0  # epsilon_target of the no-DP condition inside a grouping key (None is not hashable-stable)


def _eps_key(value: Any) -> float:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return NO_DP
    return float(value)


def _keyed(runs: pd.DataFrame) -> pd.DataFrame:
    out = runs.copy()
    out["_eps"] = [_eps_key(v) for v in out["epsilon_target"]]
    out["anonymize"] = out["anonymize"].fillna("none").replace("", "none")
    return out


def _paired(a: pd.DataFrame, b: pd.DataFrame, metric: str) -> Interval:
    left = {int(s): v for s, v in zip(a["seed"], a[metric], strict=True)}
    right = {int(s): v for s, v in zip(b["seed"], b[metric], strict=True)}
    seeds = sorted(set(left) & set(right))
    return paired_difference([_f(left[s]) for s in seeds], [_f(right[s]) for s in seeds])


def _f(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def is_reference(epsilon: Any, anonymize: Any) -> bool:
    """Whether a condition is the no-privacy reference (no DP, raw rows)."""
    return _eps_key(epsilon) == NO_DP and (anonymize in (None, "", "none"))


def privacy_effects(runs: pd.DataFrame, metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Each private condition minus the same strategy's no-DP, raw-rows condition, paired by seed.

    One entry per strategy × condition × metric: the condition's keys, ``metric`` and the
    `Interval` under ``effect``."""
    k = _keyed(runs)
    out: list[dict[str, Any]] = []
    for strategy, sel in k.groupby("strategy", sort=False):
        ref = sel[(sel["_eps"] == NO_DP) & (sel["anonymize"] == "none")]
        if ref.empty:
            continue
        for (eps, anon), cond in sel.groupby(["_eps", "anonymize"], sort=False):
            if eps == NO_DP and anon == "none":
                continue
            for metric in metrics:
                if metric in cond.columns:
                    out.append(
                        {
                            "strategy": strategy,
                            "epsilon_target": None if eps == NO_DP else eps,
                            "anonymize": anon,
                            "metric": metric,
                            "effect": _paired(cond, ref, metric),
                        }
                    )
    return out


def strategy_effects(
    runs: pd.DataFrame, metrics: Sequence[str], baseline: str = BASELINE
) -> list[dict[str, Any]]:
    """Each strategy minus `baseline` within the same privacy condition, paired by seed."""
    k = _keyed(runs)
    out: list[dict[str, Any]] = []
    for (eps, anon), cond in k.groupby(["_eps", "anonymize"], sort=False):
        base = cond[cond["strategy"] == baseline]
        if base.empty:
            continue
        for strategy, sel in cond.groupby("strategy", sort=False):
            if strategy == baseline:
                continue
            for metric in metrics:
                if metric in sel.columns:
                    out.append(
                        {
                            "strategy": strategy,
                            "baseline": baseline,
                            "epsilon_target": None if eps == NO_DP else eps,
                            "anonymize": anon,
                            "metric": metric,
                            "effect": _paired(sel, base, metric),
                        }
                    )
    return out


def condition_intervals(runs: pd.DataFrame, metric: str) -> list[dict[str, Any]]:
    """Per condition: the metric's mean over seeds with a t interval (e.g. Group Effect vs 0)."""
    from fedlab.metrics.stats import t_interval

    k = _keyed(runs)
    out = []
    for (strategy, eps, anon), cond in k.groupby(["strategy", "_eps", "anonymize"], sort=False):
        if metric in cond.columns:
            out.append(
                {
                    "strategy": strategy,
                    "epsilon_target": None if eps == NO_DP else eps,
                    "anonymize": anon,
                    "metric": metric,
                    "interval": t_interval([_f(v) for v in cond[metric]]),
                }
            )
    return out
