"""The measured trend of a protocol run: SPD / EOD / ACC / NCF against the privacy level.

Why: a protocol run on a data set with no published rows (no ``--compare``) must still report
what it measured — plots of each metric against k with a 95 % CI over seeds, findings judged
by `fedlab.metrics.judge.judge_change` (paired by seed against k = 1, >= 3 seeds, never GOOD for
a near-trivial model) and the per-cell table (``trend.csv``; rebuilt from results.csv when absent).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from audits.reproductions.arcolezi2025.trend import TREND_METRICS, near_trivial, trend_table
from fedlab.metrics.judge import IMPROVEMENT, WORSE, judge_change
from fedlab.report.content import Column, Finding, Panel, PlotSpec, Section, Series, Table
from fedlab.report.read import Notes

# metric -> (direction for the judge, what it is)
KINDS = {"SPD": "abs", "EOD": "abs", "ACC": "higher", "NCF": "lower"}
ORIENTATION = (
    "the paper's definitions: group 1 = the privileged value of the schema, rates of the predicted "
    "positive label ŷ = 1; SPD = SR(privileged) − SR(rest), EOD = TPR(privileged) − TPR(rest)"
)


def read_trend(run_dir: Path, results: pd.DataFrame | None, notes: Notes) -> pd.DataFrame:
    """trend.csv, or the same table computed from results.csv (older runs)."""
    path = run_dir / "trend.csv"
    if path.is_file():
        try:
            return pd.read_csv(path)
        except (pd.errors.ParserError, ValueError, UnicodeDecodeError):
            notes.add("trend.csv could not be read; recomputed from results.csv")
    return trend_table(results) if results is not None and len(results) else pd.DataFrame()


def _findings(results: pd.DataFrame, attr: str, method: str) -> list[Finding]:
    ok = results[(results["status"] == "ok") & (results["protected_att"] == attr)]
    ok = ok[ok["method"] == method] if method == "k-anonymity" else ok
    base = results[
        (results["status"] == "ok") & (results["protected_att"] == attr) & (results["k_parameter"] == 1)
    ].drop_duplicates("SEED")
    out = []
    for (k, param), part in ok[ok["method"] == method].groupby(["k_parameter", "anon_parameter"], sort=True):
        if k == 1 and method == "k-anonymity":
            continue
        trivial = [near_trivial(cm) for cm in part.get("CM", pd.Series(dtype=str))]
        share = sum(bool(t) for t in trivial) / max(len(trivial), 1)
        reason = next((t for t in trivial if t), "") if share >= 0.5 else ""
        base_reason = [near_trivial(cm) for cm in base.get("CM", pd.Series(dtype=str))]
        if sum(bool(t) for t in base_reason) >= 0.5 * max(len(base_reason), 1):
            reason = reason or f"k=1: {next(t for t in base_reason if t)}"
        label = f"k={k}" if method == "k-anonymity" else f"{method} {param:g}, k={k}"
        for metric in ("SPD", "EOD"):
            before = dict(zip(base["SEED"].astype(int), base[metric].astype(float), strict=True))
            after = dict(zip(part["SEED"].astype(int), part[metric].astype(float), strict=True))
            j = judge_change(before, after, KINDS[metric], near_trivial=reason)
            if j.verdict not in (IMPROVEMENT, WORSE) and not reason:
                continue
            mb = sum(before.values()) / max(len(before), 1)
            ma = sum(after.values()) / max(len(after), 1)
            verdict = {IMPROVEMENT: "closer to parity", WORSE: "further from parity"}.get(
                j.verdict, j.verdict
            )
            out.append(
                Finding(
                    f"{label} moves {metric} for {attr} from {mb:+.3f} (k=1) to {ma:+.3f}: {verdict} "
                    f"({j.reason}) [paper's orientation: rates of ŷ = 1, group 1 = privileged {attr}].",
                    j.severity,
                    f"trend:{attr}",
                    exceeds_spread=j.beyond_noise,
                    values={"metric": metric, "k": int(k), "before": mb, "after": ma},
                )
            )
    return out


def trend_section(trend: pd.DataFrame, results: pd.DataFrame | None) -> Section | None:
    """Plots (metric vs k, 95 % CI band), judged findings and the per-cell table."""
    if trend.empty:
        return None
    ka = trend[trend["method"] == "k-anonymity"].sort_values("k_parameter")
    panels = []
    for attr in ka["protected_att"].unique():
        for metric in TREND_METRICS:
            part = ka[(ka["protected_att"] == attr) & (ka["metric"] == metric)]
            if part.empty:
                continue
            x = part["k_parameter"].astype(int).tolist()
            half = ((part["ci_high"] - part["ci_low"]) / 2).tolist()
            y = part["mean"].astype(float).tolist()
            hl = [{"y": 0.0, "label": "parity"}] if metric in ("SPD", "EOD") else []
            series = [Series("fedlab", x, y, half)]
            panels.append(Panel(f"{metric} ({attr})", "k", metric, series, x_log=True, hlines=hl))
    plots = [
        PlotSpec(
            "protocol-measured-trend",
            "k-anonymity: measured SPD / EOD / ACC / NCF vs k",
            panels,
            ncols=4,
            caption=f"Mean over seeds; band = 95% t interval over seeds. {ORIENTATION}.",
        )
    ] if panels else []  # fmt: skip
    findings: list[Finding] = []
    if results is not None and len(results):
        for attr in trend["protected_att"].unique():
            for method in trend["method"].unique():
                findings += _findings(results, attr, method)
    if not findings:
        findings.append(
            Finding("No SPD / EOD change against k=1 is beyond noise (paired 95% CI, >= 3 seeds).", "info")
        )
    cols = [
        Column("method", "Method"), Column("k_parameter", "k", "int"), Column("anon_parameter", "ℓ/t"),
        Column("protected_att", "Attribute"), Column("metric", "Metric"), Column("n_seeds", "Seeds", "int"),
        Column("mean", "Mean", "signed3"), Column("ci_low", "95% CI low", "signed3"),
        Column("ci_high", "95% CI high", "signed3"), Column("change_vs_k1", "Δ vs k=1", "signed3"),
        Column("change_ci_low", "Δ CI low", "signed3"), Column("change_ci_high", "Δ CI high", "signed3"),
        Column("near_trivial_seeds", "Near-trivial seeds", "int"),
    ]  # fmt: skip
    rows = trend.to_dict("records")
    for r in rows:
        r["anon_parameter"] = "" if r["method"] == "k-anonymity" else f"{float(r['anon_parameter']):g}"
    status = ["trivial" if r.get("near_trivial_seeds") else "" for r in rows]
    return Section(
        "trend",
        "What the protocol measured",
        f"Per cell over seeds ({ORIENTATION}). Changes are paired by seed against the same seed's k=1 "
        "row and called real only with >= 3 seeds and a 95% interval excluding 0; a near-trivial model "
        "(no better than a constant, from the row's confusion matrix) is never judged.",
        findings=findings[:12],
        plots=plots,
        tables=[
            Table("protocol-trend-table", "Per cell and metric (trend.csv)", cols, rows, row_status=status)
        ],
    )
