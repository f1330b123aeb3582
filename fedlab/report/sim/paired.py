"""Sweep report: the paired comparison with FedAvg, and the findings that may call a result.

Computed from runs.csv (the per-run source of truth) with `fedlab.metrics.comparison`, so an older
sweep without the paired columns gets the same section. Findings say "gain" or "negative
transfer" only when the 95% interval excludes 0; otherwise "no detectable difference (±x)".
Everything is in percentage points (pp).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from fedlab.metrics import comparison
from fedlab.metrics.stats import Interval, Ratio, t_interval, verdict
from fedlab.report.content import Column, Finding, Section, Table


def _json(x: float) -> float | str | None:
    """Report values must be strict JSON: NaN -> None, ±inf -> "inf"/"-inf" (an unbounded interval)."""
    if math.isnan(x):
        return None
    return ("inf" if x > 0 else "-inf") if math.isinf(x) else x


def _iv(iv: Interval) -> dict[str, Any]:
    out = {"mean": iv.mean, "ci_low": iv.ci_low, "ci_high": iv.ci_high}
    return {**{k: _json(v) for k, v in out.items()}, "wins": iv.wins, "n": iv.n}


def _ratio(r: Ratio) -> dict[str, Any]:
    if not r.defined:
        return {"mean": None, "note": "n/a (FedAvg GE ≤ 0)" if r.n else None}
    if r.n < 2:
        return {"mean": r.ratio}
    return {"mean": r.ratio, "ci_low": _json(r.ci_low), "ci_high": _json(r.ci_high)}


def _numeric(runs: pd.DataFrame) -> pd.DataFrame:
    runs = runs.copy()
    for col in ("seed", "final_target_acc", "best_target_acc", "final_group_effect"):
        if col in runs:
            runs[col] = pd.to_numeric(runs[col], errors="coerce")
    return runs


def ge_interval(runs: pd.DataFrame, target: Any, strategy: Any) -> Interval:
    """A strategy's final Group Effect over seeds on one target (fractions), t interval."""
    runs = _numeric(runs)
    sel = runs[(runs["target"] == target) & (runs["strategy"] == strategy)]
    return t_interval(sel["final_group_effect"].tolist())


def ge_negative(runs: pd.DataFrame, target: Any, strategy: Any) -> bool:
    """Negative transfer beyond noise: the Group Effect's 95% interval lies below 0."""
    return ge_interval(runs, target, strategy).direction() < 0


def paired_sections(runs: pd.DataFrame) -> list[Section]:
    """The paired-comparison section, or none when the sweep has no FedAvg runs to pair with."""
    cells = comparison.compare(_numeric(runs))
    if not cells:
        return []
    columns = [
        Column("target", "Target"),
        Column("strategy", "Strategy"),
        Column("seeds", "Pairs", "int"),
        Column("final", "Δ final acc", "ci_pp1", "strategy − FedAvg per seed, pp: mean [95% CI] wins/pairs"),
        Column("best", "Δ best-round acc", "ci_pp1", "optimistic: best round chosen on the test set"),
        Column("ge", "Δ final Group Effect", "ci_pp1"),
        Column("ge_strategy", "Final Group Effect", "ci_pp1"),
        Column("ge_baseline", "FedAvg Group Effect", "ci_pp1"),
        Column("ge_ratio", "GE ratio vs FedAvg", "ratio_ci", comparison.METHODS["ratio"]),
    ]
    rows, status = [], []
    for c in cells:
        row = {"target": c["target"], "strategy": c["strategy"], "seeds": c["seeds"]}
        row.update({k: _iv(c[k]) for k in ("final", "best", "ge", "ge_strategy", "ge_baseline")})
        row["ge_ratio"] = _ratio(c["ge_ratio"])
        note = comparison.ratio_note(c)  # no Group Effect (a reference), or a denominator that may be 0
        if note is not None:
            row["ge_ratio"] = {"mean": None, "note": note}
        rows.append(row)
        status.append("bad" if c["final"].direction() < 0 else "")
    table = Table(
        "sweep-paired",
        f"Paired difference vs {comparison.BASELINE} (percentage points)",
        columns,
        rows,
        note=f"Differences: {comparison.METHODS['differences']}, 95% CI; wins = seeds where the strategy "
        f"beats {comparison.BASELINE} (in the two Group Effect columns: seeds with a Group Effect > 0). "
        f"Group Effect ratio = mean GE / mean {comparison.BASELINE} GE, "
        f"{comparison.METHODS['ratio']}, 95% CI; shown only when {comparison.BASELINE}'s GE interval "
        "excludes 0 (otherwise the ratio is unbounded). The interval covers training randomness on a fixed "
        "target test set, not the test set's own sampling error.",
        row_status=status,
    )
    section = Section(
        "paired",
        f"Paired comparison with {comparison.BASELINE}",
        "Each seed runs every strategy on the same data split and initial model, so differences are "
        "taken seed by seed.",
        paired_findings(cells),
        tables=[table],
    )
    return [section]


def paired_findings(cells: list[dict[str, Any]]) -> list[Finding]:
    out = []
    for c in cells:
        final: Interval = c["final"]
        d = final.direction()
        position = comparison.reference_position(c)
        if position is not None:  # a reference is the scale, not a competitor: no gain/loss
            out.append(
                Finding(
                    f"Target {c['target']}: {position}: {comparison.interval_text(final)}.",
                    "info",
                    "reference",
                    values={"target": c["target"], "strategy": c["strategy"], "mean_pp": final.mean},
                )
            )
            continue
        out.append(
            Finding(
                f"Target {c['target']}: {c['strategy']} vs {c['baseline']}, final accuracy: "
                f"{verdict(final, 1.0)}; {final.wins}/{final.n} seeds won.",
                "good" if d > 0 else ("flag" if d < 0 else "info"),
                "comparison",
                exceeds_spread=final.excludes_zero() if final.known else None,
                values={"target": c["target"], "strategy": c["strategy"], "mean_pp": final.mean},
            )
        )
        ge: Interval = c["ge_strategy"]
        if ge.direction() < 0:
            out.append(
                Finding(
                    f"Target {c['target']}: {c['strategy']} ends with negative transfer (final Group Effect "
                    f"{comparison.interval_text(ge)}).",
                    "flag",
                    "group_effect",
                )
            )
    return out
