"""Paired comparison of a sweep's runs against a baseline strategy (FedAvg).

Input: one row per run (runs.csv: target, strategy, seed, final/best accuracy and Group
Effect as fractions). Output: one row per target × strategy (and a "mean over targets" row
per strategy) with, in PERCENTAGE POINTS, the per-seed differences to the baseline for the
final and the best round, their mean, paired t 95% interval and win count; the same for the
final Group Effect; each strategy's own Group Effect with its interval (to call negative
transfer only when it is below 0 beyond noise); and the strategy/baseline ratio of mean
Group Effects with a paired bootstrap interval. Pairs are runs with the same seed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from fedlab.metrics.stats import (
    BOOT_METHOD,
    NO_SPREAD,
    T_METHOD,
    Interval,
    Ratio,
    bootstrap_ratio,
    paired_difference,
    t_interval,
)

BASELINE = "fedavg"
# Reference rows a sweep may hold beside its strategies (`fedlab.runs.reference` trains them):
# they are the scale a federated number is read on, compared with the baseline but never a "gain".
REFERENCES = {
    "central": "pooled source clients' rows, no federation; simulation-only",
    "oracle": "pooled sources + the target's labelled pool; upper bound",
}
ALL_TARGETS = "all targets (mean)"
METRICS = {"final": "final_target_acc", "best": "best_target_acc", "ge": "final_group_effect"}
METHODS = {"differences": T_METHOD, "ratio": BOOT_METHOD, "unit": "percentage points (pp)"}


def _pp(iv: Interval) -> Interval:
    """The same interval in percentage points (values stored as fractions)."""
    return Interval(
        iv.n,
        100 * iv.mean,
        100 * iv.ci_low,
        100 * iv.ci_high,
        iv.wins,
        iv.losses,
        iv.ties,
        [100 * v for v in iv.values],
        iv.method,
    )


def _by_seed(runs: pd.DataFrame, target: str | None, strategy: str, metric: str) -> dict[int, float]:
    sel = runs[runs["strategy"] == strategy]
    if target is not None:
        sel = sel[sel["target"] == target]
        return {int(s): float(v) for s, v in zip(sel["seed"], sel[metric], strict=True)}
    # mean over targets, per seed: only seeds with a run on every target; NaN where a target's value
    # is NaN (a reference has no Group Effect), never a mean over the targets that happen to have one
    n_targets = runs["target"].nunique()
    out = {}
    for seed, values in sel.groupby("seed")[metric]:
        if len(values) == n_targets:
            out[int(seed)] = float(values.mean()) if values.notna().all() else math.nan
    return out


def compare_cell(runs: pd.DataFrame, target: str | None, strategy: str, baseline: str) -> dict[str, Any]:
    """All paired statistics of `strategy` vs `baseline` on one target (None = mean over targets)."""
    out: dict[str, Any] = {"target": target or ALL_TARGETS, "strategy": strategy, "baseline": baseline}
    ge_s = _by_seed(runs, target, strategy, METRICS["ge"])
    ge_b = _by_seed(runs, target, baseline, METRICS["ge"])
    seeds = sorted(set(ge_s) & set(ge_b))
    out["seeds"] = len(seeds)
    out["seed_list"] = seeds
    for key, metric in METRICS.items():
        s = _by_seed(runs, target, strategy, metric)
        b = _by_seed(runs, target, baseline, metric)
        common = [k for k in seeds if k in s and k in b]
        out[key] = _pp(paired_difference([s[k] for k in common], [b[k] for k in common]))
    out["ge_strategy"] = _pp(t_interval([ge_s[k] for k in seeds]))
    out["ge_baseline"] = _pp(t_interval([ge_b[k] for k in seeds]))
    out["ge_ratio"] = bootstrap_ratio([ge_s[k] for k in seeds], [ge_b[k] for k in seeds])
    return out


def compare(runs: pd.DataFrame, baseline: str = BASELINE) -> list[dict[str, Any]]:
    """Paired statistics for every target × non-baseline strategy, then the means over targets.

    Empty when the baseline strategy is not in the sweep."""
    runs = runs.copy()
    for col in (*METRICS.values(), "seed"):
        runs[col] = pd.to_numeric(runs[col], errors="coerce")
    runs = runs.dropna(subset=["seed"])
    strategies = [s for s in dict.fromkeys(runs["strategy"]) if s != baseline]
    if baseline not in set(runs["strategy"]) or not strategies:
        return []
    targets = list(dict.fromkeys(runs["target"]))
    cells = [compare_cell(runs, t, s, baseline) for t in targets for s in strategies]
    if len(targets) > 1:
        cells += [compare_cell(runs, None, s, baseline) for s in strategies]
    return cells


def flat_row(cell: dict[str, Any]) -> dict[str, Any]:
    """One CSV row: every interval as mean / ci_low / ci_high / wins / n columns (pp)."""
    row: dict[str, Any] = {k: cell[k] for k in ("target", "strategy", "baseline", "seeds")}
    for key, label in (
        ("final", "final_acc_diff_pp"),
        ("best", "best_acc_diff_pp"),
        ("ge", "ge_diff_pp"),
        ("ge_strategy", "ge_pp"),
        ("ge_baseline", "baseline_ge_pp"),
    ):
        iv: Interval = cell[key]
        row[f"{label}_mean"] = iv.mean
        row[f"{label}_ci_low"] = iv.ci_low
        row[f"{label}_ci_high"] = iv.ci_high
        if key in ("final", "best", "ge"):
            row[f"{label}_wins"] = iv.wins
    ratio: Ratio = cell["ge_ratio"]
    row["ge_ratio"] = ratio.ratio
    row["ge_ratio_ci_low"] = ratio.ci_low
    row["ge_ratio_ci_high"] = ratio.ci_high
    return row


def comparison_frame(cells: list[dict[str, Any]]) -> pd.DataFrame:
    """The paired cells of `compare` as one flat table (paired.csv): one row per target x strategy."""
    return pd.DataFrame([flat_row(c) for c in cells])


def to_json(cells: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """summary.json form: intervals as dicts with the per-seed values (pp) and the method."""
    out = []
    for c in cells:
        item: dict[str, Any] = {k: c[k] for k in ("target", "strategy", "baseline", "seeds", "seed_list")}
        for key in ("final", "best", "ge", "ge_strategy", "ge_baseline", "ge_ratio"):
            item[key] = _clean(c[key].to_dict())
        out.append(item)
    return out


def _clean(d: dict[str, Any]) -> dict[str, Any]:
    """Strict JSON: NaN -> None, ±inf -> "inf"/"-inf"."""

    def fix(v: Any) -> Any:
        if isinstance(v, float) and np.isinf(v):
            return "inf" if v > 0 else "-inf"  # an unbounded ratio interval
        if isinstance(v, float) and np.isnan(v):
            return None
        if isinstance(v, list):
            return [fix(x) for x in v]
        return v

    return {k: fix(v) for k, v in d.items()}


def reference_position(cell: dict[str, Any]) -> str | None:
    """"reference central (pooled sources ...) is above fedavg" for a reference row, else None.

    Why one wording: a reference (`REFERENCES`) is the scale a federated result is read on, never a
    competitor, so neither the CLI nor a report may call it a gain or a negative transfer; both
    print this phrase followed by `interval_text` of its paired difference."""
    what = REFERENCES.get(cell["strategy"])
    if what is None:
        return None
    d = cell["final"].direction()
    where = "above" if d > 0 else "below" if d < 0 else "level with"
    if not cell["final"].known:  # one paired seed or none: no interval to place it with
        return f"reference {cell['strategy']} ({what}) vs {cell['baseline']}"
    return f"reference {cell['strategy']} ({what}) is {where} {cell['baseline']}"


def ratio_note(cell: dict[str, Any]) -> str | None:
    """Why a cell's Group Effect ratio is not shown, or None when it is.

    Why one owner: the console table and the report both print it; a reference has no clients and
    so no Group Effect, and a ratio to a baseline Group Effect whose interval includes 0 is unbounded."""
    if cell["strategy"] in REFERENCES:
        return "n/a (a reference has no clients)"
    if not cell["ge_baseline"].excludes_zero():
        return f"unbounded ({cell['baseline']} GE CI includes 0)"
    return None


def interval_text(iv: Interval) -> str:
    """A paired difference in pp with its 95% CI: "+2.5 pp (95% CI +0.2 to +4.8)"; said in words
    where there is no pair (no seed with both runs) or only one (no interval)."""
    if iv.n == 0 or not math.isfinite(iv.mean):
        return "not compared (no seed has both runs)"
    if not iv.known:
        return f"{iv.mean:+.1f} pp (one paired seed: no interval)"
    if iv.no_spread:
        return f"{iv.mean:+.1f} pp (the same in all {iv.n} seeds: {NO_SPREAD})"
    return f"{iv.mean:+.1f} pp (95% CI {iv.ci_low:+.1f} to {iv.ci_high:+.1f})"
