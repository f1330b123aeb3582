"""Sentences a study's report states, each naming its condition (strategy · DP ε · anonymization).

A privacy or strategy effect is called ("raises", "lowers", "negative transfer") only when its
paired 95% interval excludes 0; otherwise the finding says no detectable difference, or is left
out of the key findings.
"""

from __future__ import annotations

from typing import Any

from fedlab.metrics.stats import Interval, t_interval
from fedlab.report.content import Finding
from fedlab.report.fmt import number
from fedlab.report.study.read import Study
from fedlab.runs.study_rows import condition_label

NAMES = {
    "target_acc": "target accuracy",
    "target_balanced_acc": "target balanced accuracy",
    "group_effect": "Group Effect",
}


def _metric_name(metric: str, positive: str = "") -> str:
    if metric in NAMES:
        return NAMES[metric]
    scope, _, attr = metric.partition("__")
    where, what = scope.split("_", 1)
    return f"{what.upper()} ({attr}, {'pooled clients' if where == 'pooled' else 'target'})"


def _ci(iv: Interval) -> str:
    ci = f"95% CI {100 * iv.ci_low:+.1f} to {100 * iv.ci_high:+.1f}"
    return f"{100 * iv.mean:+.1f} pp ({ci}), {iv.wins}/{iv.n} seeds > 0"


def condition_findings(st: Study) -> list[Finding]:
    from fedlab.report.study.read import conditions, select_condition

    out = []
    constant: list[str] = []
    for strategy, eps, anon in conditions(st):
        sel = select_condition(st.runs, strategy, eps, anon)
        name = condition_label(strategy, eps, anon)
        ge = t_interval([v for v in (number(x) for x in sel["group_effect"]) if v is not None])
        if ge.direction() < 0:
            out.append(
                Finding(f"{name}: negative transfer, final Group Effect {_ci(ge)}.", "flag", "group_effect")
            )
        elif ge.direction() > 0:
            out.append(
                Finding(
                    f"{name}: the federation helps the target, Group Effect {_ci(ge)}.",
                    "good",
                    "group_effect",
                )
            )
        reasons = [r for r in sel["target_degenerate"] if r]
        if reasons:
            constant.append(f"{name} ({len(reasons)}/{len(sel)} seeds, e.g. {reasons[0]})")
    if constant:
        out.append(
            Finding(
                f"The global model is near-constant on the target in {len(constant)} condition(s): "
                + "; ".join(constant)
                + ". Their fairness gaps say little (a constant predictor has SPD 0).",
                "warn",
                "utility",
            )
        )
    return out


def fairness_findings(st: Study) -> list[Finding]:
    from fedlab.report.study.read import conditions, select_condition

    out = []
    for attr in st.attrs:
        col = f"pooled_spd__{attr}"
        if col not in st.runs:
            continue
        best: tuple[float, str, Interval] | None = None
        for strategy, eps, anon in conditions(st):
            values = select_condition(st.runs, strategy, eps, anon)[col]
            iv = t_interval([v for v in (number(x) for x in values) if v is not None])
            if iv.n and (best is None or abs(iv.mean) > abs(best[0])):
                best = (iv.mean, condition_label(strategy, eps, anon), iv)
        if best is None:
            continue
        mean, name, iv = best
        priv = st.privileged.get(attr, "?")
        beyond = iv.excludes_zero()
        out.append(
            Finding(
                f"Largest pooled SPD of P(ŷ = {st.positive_label!r}) for {attr} (privileged {priv}): {name}, "
                f"{100 * mean:+.1f} pp"
                + (f" (95% CI {100 * iv.ci_low:+.1f} to {100 * iv.ci_high:+.1f})" if iv.known else "")
                + ("" if beyond else "; its interval includes 0"),
                "warn" if beyond and abs(mean) >= 0.1 else "info",
                "fairness",
            )
        )
    return out


def effect_findings(entries: list[dict[str, Any]], against: str) -> list[Finding]:
    """One finding per effect whose interval excludes 0, naming condition, metric and direction."""
    out = []
    for e in entries:
        iv: Interval = e["effect"]
        if not iv.excludes_zero():
            continue
        name = condition_label(e["strategy"], e["epsilon_target"], e["anonymize"])
        metric = _metric_name(e["metric"])
        verb = "raises" if iv.mean > 0 else "lowers"
        bad = (e["metric"] in NAMES and iv.mean < 0) or (e["metric"] not in NAMES and abs(iv.mean) > 0)
        out.append(
            Finding(
                f"{name} {verb} {metric} {against}: {_ci(iv)}.",
                "flag" if bad and e["metric"] in NAMES else ("warn" if bad else "good"),
                "comparison",
                exceeds_spread=True,
                values={"condition": name, "metric": e["metric"], "mean_pp": 100 * iv.mean},
            )
        )
    if not out and entries:
        out.append(Finding(f"No effect {against} has a 95% interval that excludes 0.", "info", "comparison"))
    return out
