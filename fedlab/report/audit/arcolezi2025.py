"""Report content for a published-protocol run (``fedlab audit --protocol arcolezi2025``).

Sections: the comparison with the published per-seed results (``compare.csv``: exact-match share,
trend per seed, verdict), the k-anonymity trend of SPD / EOD / ACC / NCF published vs fedlab, the
attribution table (which QIs each cell generalized, protected attribute included) and failed cells.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from fedlab.report.content import Column, Finding, Panel, PlotSpec, Report, Section, Series, Table
from fedlab.report.read import Notes

TREND_METRICS = ("SPD", "EOD", "ACC", "NCF")


def is_protocol_run(run_dir: Path) -> bool:
    """A run directory written by ``--protocol`` (summary.json names the protocol)."""
    path = run_dir / "summary.json"
    if not path.is_file():
        return False
    try:
        return bool(json.loads(path.read_text(encoding="utf-8")).get("protocol"))
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return False


def _read(path: Path, notes: Notes) -> pd.DataFrame | None:
    if not path.is_file():
        notes.add(f"{path.name} is missing")
        return None
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        notes.add(f"{path.name} could not be read ({exc.__class__.__name__})")
        return None


def _num(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def compare_section(cmp: pd.DataFrame) -> Section:
    """Published vs fedlab per cell and metric, with exact-match shares and verdicts."""
    findings: list[Finding] = []
    for (k, metric), part in cmp[cmp["method"] == "k-anonymity"].groupby(["k_parameter", "metric"]):
        if metric not in ("SPD", "EOD", "ACC") or k > 2:
            continue
        share = part["exact_share"].min()
        n = int(part["common_seeds"].min())
        sev = "good" if share == 1 else "warn"
        findings.append(
            Finding(
                f"k={k}: {metric} equals the published row in {share:.0%} of {n} seeds.", sev, "reproduction"
            )
        )
    differs = cmp[
        cmp["verdict"].astype(str).str.startswith("trend differs") & cmp["metric"].isin(["SPD", "EOD"])
    ]
    differs = differs.assign(gap=(differs["pub_mean"] - differs["ours_mean"]).abs()).sort_values(
        "gap", ascending=False
    )
    for _, r in differs.head(6).iterrows():
        findings.append(
            Finding(
                f"{r['method']} k={r['k_parameter']} {r['protected_att']}: {r['metric']} {r['verdict']} "
                f"(published {r['pub_mean']:+.3f}, fedlab {r['ours_mean']:+.3f})",
                "flag",
                "reproduction",
            )
        )
    cols = [
        Column("method", "Method"), Column("k_parameter", "k", "int"), Column("anon_parameter", "ℓ/t"),
        Column("protected_att", "Attribute"), Column("metric", "Metric"),
        Column("published", "Published mean ± std"), Column("fedlab", "fedlab mean ± std"),
        Column("exact_share", "Exact share", "pct1", "seeds with |Δ| ≤ 1e-6 among common seeds"),
        Column("common_seeds", "Common seeds", "int"), Column("verdict", "Verdict"),
    ]  # fmt: skip
    rows, status = [], []
    for r in cmp.to_dict("records"):
        rows.append(
            {
                **{c: r[c] for c in ("method", "k_parameter", "protected_att", "metric", "verdict")},
                "anon_parameter": "" if r["method"] == "k-anonymity" else f"{r['anon_parameter']:g}",
                "published": f"{r['pub_mean']:+.4f} ± {r['pub_std']:.4f}",
                "fedlab": f"{r['ours_mean']:+.4f} ± {r['ours_std']:.4f}",
                "exact_share": _num(r["exact_share"]),
                "common_seeds": r["common_seeds"],
            }
        )
        status.append("good" if r["verdict"] == "exact" else "bad" if "differs" in str(r["verdict"]) else "")
    table = Table(
        "protocol-compare", "Published vs fedlab, per cell and metric", cols, rows, row_status=status
    )
    return Section(
        "compare",
        "Reproduction: published vs fedlab",
        "Per seed, fedlab's row is compared with the published row of the same seed, cell and attribute.",
        findings=findings,
        tables=[table],
    )


def trend_plot(cmp: pd.DataFrame) -> PlotSpec:
    """k-anonymity trend of the headline metrics, published and fedlab (mean ± std over seeds)."""
    panels = []
    ka = cmp[cmp["method"] == "k-anonymity"].sort_values("k_parameter")
    for attr in ka["protected_att"].unique():
        for metric in TREND_METRICS:
            part = ka[(ka["protected_att"] == attr) & (ka["metric"] == metric)]
            if part.empty:
                continue
            x = part["k_parameter"].tolist()
            series = [
                Series(
                    "published", x, [_num(v) for v in part["pub_mean"]], [_num(v) for v in part["pub_std"]]
                ),
                Series(
                    "fedlab", x, [_num(v) for v in part["ours_mean"]], [_num(v) for v in part["ours_std"]]
                ),
            ]
            panels.append(Panel(f"{metric} ({attr})", "k", metric, series, x_log=True))
    return PlotSpec("protocol-trend", "k-anonymity: published vs fedlab", panels, ncols=4)


def attribution_section(attr: pd.DataFrame) -> Section:
    cols = [
        Column("method", "Method"), Column("k_parameter", "k", "int"), Column("anon_parameter", "ℓ/t"),
        Column("qi", "QI"), Column("mean_level", "Mean level", "num3"),
        Column("share_generalized", "Seeds generalized", "pct1"), Column("level_counts", "Seeds per level"),
    ]  # fmt: skip
    rows = attr.to_dict("records")
    return Section(
        "attribution",
        "Attribution: what each privacy cell generalized",
        "Per cell and QI over seeds; the protected attributes are QIs in this protocol.",
        tables=[Table("protocol-attribution", "Generalization levels per cell", cols, rows)],
    )


def switches_section(sw: pd.DataFrame) -> Section:
    """Paired protocol-switch effects (protected attribute generalized in test, one-hot encoding)."""
    other = sw[sw["verdict"] != "paper setting"]
    findings = []
    for _, r in other[
        (other["verdict"] == "protocol effect") & other["metric"].isin(["SPD", "EOD"])
    ].iterrows():
        findings.append(
            Finding(
                f"k={r['k_parameter']} {r['protected_att']}: {r['metric']} moves by "
                f"{r['diff_vs_paper']:+.3f} "
                f"[{r['ci_low']:+.3f}, {r['ci_high']:+.3f}] with protected_in_test={r['protected_in_test']}, "
                f"encoding={r['encoding']} instead of the paper's raw/label",
                "warn",
                "protocol",
                exceeds_spread=True,
            )
        )
    cols = [
        Column("k_parameter", "k", "int"), Column("protected_att", "Attribute"), Column("metric", "Metric"),
        Column("protected_in_test", "Protected in test"), Column("encoding", "Encoding"),
        Column("mean", "Mean", "num3"), Column("change_vs_k1", "Change vs k=1", "signed3"),
        Column("diff_vs_paper", "Δ vs paper setting", "signed3"),
        Column("ci_low", "95% CI low", "signed3"), Column("ci_high", "95% CI high", "signed3"),
        Column("seeds_positive", "Seeds Δ>0", "int"), Column("n", "Seeds", "int"),
        Column("verdict", "Verdict"),
    ]  # fmt: skip
    rows = sw.to_dict("records")
    status = ["bad" if r["verdict"] == "protocol effect" else "" for r in rows]
    return Section(
        "switches",
        "Protocol switches: anonymization effect vs evaluation-protocol effect",
        "Same seeds and anonymizations; only how the test split is encoded changes. "
        "'Change vs k=1' is the anonymization effect under that setting.",
        findings=findings,
        tables=[
            Table(
                "protocol-switches",
                "Paired differences from the paper's setting",
                cols,
                rows,
                row_status=status,
            )
        ],
    )


def build_protocol_report(run_dir: Path, notes: Notes, generated: str, version: str) -> Report:
    """The report of a protocol run (see module docstring)."""
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    sections: list[Section] = []
    cmp = _read(run_dir / "compare.csv", notes) if (run_dir / "compare.csv").is_file() else None
    if cmp is not None and len(cmp):
        sec = compare_section(cmp)
        sec.plots.append(trend_plot(cmp))
        sections.append(sec)
    if (run_dir / "switches.csv").is_file():
        sw = _read(run_dir / "switches.csv", notes)
        if sw is not None and len(sw):
            sections.append(switches_section(sw))
    if cmp is None or not len(cmp):
        from fedlab.report.audit.protocol_trend import read_trend, trend_section

        results = _read(run_dir / "results.csv", notes)
        trend = trend_section(read_trend(run_dir, results, notes), results)
        if trend is not None:
            sections.append(trend)
    attr = _read(run_dir / "attribution.csv", notes)
    if attr is not None and len(attr):
        sections.append(attribution_section(attr))
    failed = summary.get("failed") or []
    if failed:
        cols = [Column(c, c) for c in failed[0]]
        sections.append(
            Section(
                "failed",
                "Failed cells",
                f"{summary.get('n_failed')} result rows failed (first {len(failed)} listed).",
                tables=[
                    Table("protocol-failed", "Failed cells", cols, failed, row_status=["bad"] * len(failed))
                ],
            )
        )
    key = [f for s in sections for f in s.findings][:8]
    data = summary.get("data") or {}
    header = [
        ("Protocol", str(summary.get("protocol"))),
        ("Data", f"{data.get('csv')} ({(data.get('rows') or {}).get('rows')} rows)"),
        ("QI order", ", ".join(data.get("qis") or [])),
        ("Settings", ", ".join(f"{k}={v}" for k, v in (summary.get("settings") or {}).items())),
        ("Wall time", f"{summary.get('wall_seconds', float('nan')):.1f} s"),
        ("Versions", ", ".join(f"{k} {v}" for k, v in (summary.get("versions") or {}).items())),
    ]
    return Report(
        "audit",
        f"Published-protocol audit: {summary.get('protocol')}",
        str(run_dir),
        generated,
        version,
        summary.get("fedlab_version"),
        header,
        " ".join(str(x) for x in summary.get("command") or []),
        key,
        sections,
        notes.items,
    )
