"""The re-identification risk section of an audit report: before-vs-after plots and table.

The risk rows themselves are computed by `fedlab.report.audit.risk`; this module only decides what
the section shows of them.
"""

from __future__ import annotations

from fedlab.report.audit import findings as fnd
from fedlab.report.audit import risk as rk
from fedlab.report.audit.read import Audit
from fedlab.report.content import Column, Panel, PlotSpec, Section, Series, Table
from fedlab.report.read import Notes


def risk_section(a: Audit, notes: Notes, threshold: float, level: str | None) -> Section | None:
    rows = rk.audit_risk(a.results, a.grid, notes, threshold)
    if not rows:
        return None
    labels = [
        f"{r.label}"
        + (f" ({r.algorithm})" if a.multi.get("algorithm") and r.label != "before" else "")
        + (f" [{r.client}]" if a.multi.get("client") else "")
        for r in rows
    ]
    bars = [
        Series("max risk", labels, [r.max_risk for r in rows], style="bar"),
        Series("average risk", labels, [r.avg_risk for r in rows], style="bar"),
        Series(
            f"share of records with risk > {threshold:g}", labels, [r.share_above for r in rows], style="bar"
        ),
    ]
    before_after = PlotSpec(
        "risk-before-after",
        "Re-identification (prosecutor) risk before vs after",
        [
            Panel(
                "",
                "released training table",
                "risk / share",
                bars,
                kind="grouped_bar",
                hlines=[{"y": threshold, "label": f"threshold {threshold:g}"}],
            )
        ],
        ncols=1,
        caption=f"Seed {rows[0].seed}, training split. Risk = 1 / equivalence-class size.",
    )
    anon = [r for r in rows if r.label != "before"]
    chosen = next((r for r in anon if level is not None and r.label == level), None)
    if level is not None and chosen is None:
        notes.add(f"--level {level!r} is not an anonymized model of this run; showing the default level")
    if chosen is None:
        ks = [r for r in anon if r.label.startswith("k=") and "," not in r.label]
        chosen = max(ks, key=lambda r: int(r.label[2:])) if ks else anon[0]
    before = next(r for r in rows if r.label == "before" and r.client == chosen.client)
    buckets = list(before.buckets)
    dist = PlotSpec(
        "risk-class-sizes",
        f"Equivalence-class sizes: before vs {chosen.label}",
        [
            Panel(
                "",
                "equivalence-class size",
                "share of records",
                [
                    Series(
                        "before",
                        buckets,
                        [before.buckets[b] / max(before.records, 1) for b in buckets],
                        style="bar",
                    ),
                    Series(
                        chosen.label,
                        buckets,
                        [chosen.buckets[b] / max(chosen.records, 1) for b in buckets],
                        style="bar",
                    ),
                ],
                kind="grouped_bar",
            )
        ],
        ncols=1,
        caption="Share of (published) training records by the size of their class. "
        "Choose the level with `fedlab report --level`.",
    )
    cols = [
        Column("table", "Table"),
        Column("client", "Client"),
        Column("seed", "Seed", "int"),
        Column("records", "Records published", "int"),
        Column("suppressed", "Suppressed", "int"),
        Column("classes", "Classes", "int"),
        Column("min_class", "Smallest class", "int"),
        Column("max_risk", "Max risk", "num3"),
        Column("avg_risk", "Average risk", "num3"),
        Column("share_above", f"Share risk > {threshold:g}", "pct1"),
        Column("source", "Source"),
    ]
    if not a.multi.get("client"):
        cols = [c for c in cols if c.key != "client"]
    trows = [
        {
            "table": lab,
            "client": r.client,
            "seed": r.seed,
            "records": r.records,
            "suppressed": r.suppressed,
            "classes": r.classes,
            "min_class": r.min_class,
            "max_risk": r.max_risk,
            "avg_risk": r.avg_risk,
            "share_above": r.share_above,
            "source": r.source,
        }
        for lab, r in zip(labels, rows, strict=True)
    ]
    status = ["bad" if r.max_risk > threshold else "" for r in rows]
    return Section(
        "risk",
        "Re-identification risk",
        "Prosecutor risk of the released (anonymized) training table: 1 / size of a record's "
        "equivalence class on the quasi-identifiers. Suppressed records are not published.",
        fnd.risk_findings(rows, threshold),
        [before_after, dist],
        [Table("audit-risk", "Re-identification risk per released table", cols, trows, row_status=status)],
    )
