"""Privacy-vs-fairness audit reports from a `fedlab audit` run directory.

Input: results.parquet / results.csv (one row per cell × seed; rebuilt from cells/*.json when
both are gone), summary.json (dataset and schema) and config.toml (the grid). Every number
shown is a mean ± sample std over the seeds whose status is "ok", computed here from the
per-seed rows, so plots, tables and findings share one source.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fedlab.report import findings as fnd
from fedlab.report import risk as rk
from fedlab.report.content import Column, Finding, Panel, PlotSpec, Section, Series, Table
from fedlab.report.load import Notes, read_json, read_toml

KEYS = ["client", "privacy_model", "family", "k", "l", "t", "algorithm", "classifier"]
FAMILY_AXIS = {
    "k": ("k", "k (k-anonymity)", True),
    "l": ("l", "l (l-diversity)", False),
    "t": ("t", "t (t-closeness)", False),
}
# (metric, label, direction): "abs" = |x| smaller is fairer, "di" = closer to 1 is fairer
GROUP_METRICS = [
    ("spd", "SPD", "abs"),
    ("disparate_impact", "disparate impact", "di"),
    ("eq_opp_diff", "equal opportunity difference", "abs"),
    ("fpr_diff", "FPR difference", "abs"),
    ("avg_odds_diff", "average odds difference", "abs"),
    ("eq_odds_diff", "equalized odds difference", "abs"),
    ("ppv_diff", "predictive parity difference", "abs"),
    ("acc_diff", "accuracy difference", "abs"),
]
FINDING_METRICS = ("spd", "disparate_impact", "eq_opp_diff", "avg_odds_diff")
UTILITY = [
    ("accuracy", "accuracy"),
    ("balanced_accuracy", "balanced accuracy"),
    ("f1", "F1"),
    ("roc_auc", "ROC AUC"),
]
INDIVIDUAL = [
    ("consistency", "consistency", "higher"),
    ("ncf", "NCF", "lower"),
    ("asf", "ASF", "lower"),
    ("alf", "ALF", "lower"),
]
ANON = [
    ("anon_loss", "information loss (NCP)"),
    ("suppressed_fraction", "suppressed rows (share)"),
    ("anon_avg_class_size", "average class size"),
]


@dataclass
class Cell:
    """One grid cell (everything but the seed) with the per-seed values of its ok rows."""

    keys: dict[str, Any]
    n_seeds: int
    n_ok: int
    rows: pd.DataFrame

    def values(self, metric: str) -> np.ndarray:
        if metric not in self.rows.columns:
            return np.array([])
        return pd.to_numeric(self.rows[metric], errors="coerce").dropna().to_numpy(dtype=float)

    def stat(self, metric: str) -> dict[str, float | None]:
        v = self.values(metric)
        return {
            "mean": float(v.mean()) if v.size else None,
            "std": float(v.std(ddof=1)) if v.size > 1 else None,
        }

    @property
    def family(self) -> str:
        return str(self.keys["family"])

    @property
    def label(self) -> str:
        return str(self.keys["privacy_model"])


@dataclass
class Audit:
    path: Path
    results: pd.DataFrame
    summary: dict[str, Any]
    grid: dict[str, Any] | None
    protected: dict[str, Any]
    cells: list[Cell] = field(default_factory=list)
    multi: dict[str, bool] = field(default_factory=dict)  # which key varies (client, algorithm, ...)

    def baseline(self, cell: Cell) -> Cell | None:
        for c in self.cells:
            if (
                c.family == "baseline"
                and c.keys["client"] == cell.keys["client"]
                and c.keys["classifier"] == cell.keys["classifier"]
            ):
                return c
        return None

    def context(self, cell: Cell, with_k: bool = False) -> str:
        parts = [
            f"{key} {cell.keys[key]}" if key == "client" else str(cell.keys[key])
            for key in ("client", "algorithm", "classifier")
            if self.multi.get(key)
        ]
        if with_k:
            parts.append(f"k={int(cell.keys['k'])}")
        return ", ".join(parts)

    def subject(self, cell: Cell) -> str:
        ctx = self.context(cell)
        return cell.label + (f" ({ctx})" if ctx else "")

    def families(self) -> list[str]:
        return [f for f in ("k", "l", "t") if any(c.family == f and c.n_ok for c in self.cells)]


# ----------------------------------------------------------------------------- loading
def _family(row: pd.Series) -> str:
    if pd.notna(row.get("l")):
        return "l"
    if pd.notna(row.get("t")):
        return "t"
    return "k" if int(row.get("k") or 1) > 1 else "baseline"


def read_results(path: Path, notes: Notes) -> pd.DataFrame | None:
    """results.parquet, else results.csv, else the cells/*.json rows of an unfinished run."""
    for name in ("results.parquet", "results.csv"):
        p = path / name
        if not p.is_file():
            continue
        try:
            return pd.read_parquet(p) if name.endswith("parquet") else pd.read_csv(p)
        except (ImportError, OSError, ValueError, pd.errors.ParserError) as exc:
            notes.add(f"{name} could not be read ({exc.__class__.__name__}); trying the next source")
    rows = []
    for cell_file in sorted((path / "cells").glob("*.json")):
        try:
            rows.append(json.loads(cell_file.read_text(encoding="utf-8"))["row"])
        except (json.JSONDecodeError, KeyError, UnicodeDecodeError):
            notes.add(f"cells/{cell_file.name} is corrupt and was skipped")
    if rows:
        notes.add(
            f"results.csv and results.parquet are missing: the report uses {len(rows)} cells/*.json rows"
        )
        return pd.DataFrame(rows)
    notes.add("no results (results.parquet, results.csv or cells/*.json): nothing to plot")
    return None


def load_audit(path: Path, notes: Notes) -> Audit:
    summary = read_json(path / "summary.json", notes, "dataset and schema details are limited") or {}
    config = read_toml(path / "config.toml", notes, "the reproduce command and risk recomputation need it")
    grid = config if config is not None else summary.get("grid")
    results = read_results(path, notes)
    if results is None:
        results = pd.DataFrame(columns=[*KEYS, "seed", "status"])
    results = results.copy()
    if "status" not in results.columns:
        results["status"] = "ok"
    for col in ("client", "algorithm", "classifier"):
        if col not in results.columns:
            results[col] = "all" if col == "client" else "?"
    for col in ("k", "l", "t", "seed"):
        results[col] = pd.to_numeric(results[col], errors="coerce") if col in results.columns else np.nan
    results["k"] = results["k"].fillna(1)
    if "family" not in results.columns:
        results["family"] = results.apply(_family, axis=1) if len(results) else []
    if "privacy_model" not in results.columns:
        results["privacy_model"] = results["family"]
    protected = dict((summary.get("dataset") or {}).get("protected") or {})
    if not protected:
        protected = {c.removesuffix("_spd"): "?" for c in results.columns if c.endswith("_spd")}
        if summary:
            notes.add("summary.json names no protected attributes: taken from the *_spd columns")
    audit = Audit(path, results, summary, grid, protected)
    audit.cells = _cells(results)
    anon = results[results["family"] != "baseline"]
    audit.multi = {
        "client": results["client"].nunique() > 1,
        "algorithm": anon["algorithm"].nunique() > 1,
        "classifier": results["classifier"].nunique() > 1,
    }
    failed = int((results["status"] != "ok").sum())
    if failed:
        notes.add(
            f"{failed} of {len(results)} result rows failed (see 'Failed cells'); "
            "their cells average fewer seeds"
        )
    return audit


def _cells(results: pd.DataFrame) -> list[Cell]:
    if results.empty:
        return []
    keys = results[KEYS].astype(str)
    cells = []
    for _, idx in results.groupby([keys[c] for c in KEYS], sort=False).groups.items():
        part = results.loc[idx]
        ok = part[part["status"] == "ok"]
        first = part.iloc[0]
        cells.append(Cell({c: first[c] for c in KEYS}, len(part), len(ok), ok))
    return cells


# ----------------------------------------------------------------------------- header
def header(a: Audit) -> list[tuple[str, str]]:
    ds = a.summary.get("dataset") or {}
    grid = a.grid or {}
    r = a.results
    rows = []
    name = ds.get("name") or grid.get("dataset") or "?"
    size = f"{ds['rows']} rows, {100 * ds['positive_rate']:.1f}% positive" if "rows" in ds else ""
    rows.append(("Dataset", f"{name} ({size})" if size else str(name)))
    if ds.get("target"):
        rows.append(("Target", f"{ds['target']} = {ds.get('positive_label')}"))
    rows.append(("Quasi-identifiers", ", ".join(ds.get("quasi_identifiers") or []) or "unknown"))
    rows.append(("Sensitive attribute", str(ds.get("sensitive") or "none / unknown")))
    rows.append(("Protected attributes", ", ".join(f"{k} (privileged: {v})" for k, v in a.protected.items())))
    models = a.summary.get("privacy_models") or list(dict.fromkeys(r["privacy_model"].astype(str)))
    rows.append(("Privacy models", ", ".join(map(str, models))))
    rows.append(("Algorithms", ", ".join(sorted(set(r["algorithm"].astype(str)) - {"none"})) or "none"))
    rows.append(("Classifiers", ", ".join(dict.fromkeys(r["classifier"].astype(str)))))
    if "suppression_limit" in grid:
        rows.append(("Suppression limit", f"{100 * float(grid['suppression_limit']):.0f}% of training rows"))
    seeds = sorted(int(s) for s in r["seed"].dropna().unique())
    rows.append(("Seeds", ", ".join(map(str, seeds)) or "?"))
    if grid.get("split_by"):
        rows.append(("Audited per", f"{grid['split_by']} ({r['client'].nunique()} partitions)"))
    if grid.get("test_size") is not None:
        rows.append(("Test split", f"{100 * float(grid['test_size']):.0f}%, stratified per seed"))
    rows.append(("Audit created", str(a.summary.get("created") or "unknown")))
    command = a.summary.get("command")
    if command:
        rows.append(
            ("Recorded command", shlex.join(map(str, command)) if isinstance(command, list) else command)
        )
    return rows


def reproduce(a: Audit) -> str:
    if not (a.path / "config.toml").is_file():
        return "unknown: config.toml is missing"
    return shlex.join(
        ["fedlab", "audit", "--config", str(a.path / "config.toml"), "--out", f"{a.path}-rerun"]
    )


# ----------------------------------------------------------------------------- plots
def _order(c: Cell) -> tuple[float, float]:
    axis = FAMILY_AXIS[c.family][0]
    return (float(c.keys[axis]), float(c.keys["k"]))


def privacy_panel(a: Audit, metric: str, label: str, baseline: bool, hlines: list[dict[str, Any]]) -> Panel:
    """One metric against every privacy model, grouped by family (k | l | t) on one axis.

    Privacy models are categories ordered by strength within their family; each family is its
    own line segment, so k=100 and l=2 are never joined as if they were one scale.
    """
    categories: list[str] = []
    groups = []
    series = []
    for fam in a.families():
        fam_cells = sorted((c for c in a.cells if c.family == fam and c.n_ok), key=_order)
        labels = list(dict.fromkeys(c.label for c in fam_cells))
        categories += labels
        groups.append({"label": FAMILY_AXIS[fam][1].split(" (")[1].rstrip(")"), "categories": labels})
        by_context: dict[str, list[Cell]] = {}
        for c in fam_cells:
            by_context.setdefault(a.context(c) or "anonymized (mean ± std)", []).append(c)
        for name, cells in by_context.items():
            stats = [c.stat(metric) for c in cells]
            series.append(
                Series(name, [c.label for c in cells], [s["mean"] for s in stats], [s["std"] for s in stats])
            )
    bases = []
    if baseline:
        for b in (c for c in a.cells if c.family == "baseline" and c.n_ok):
            ctx = ", ".join(str(b.keys[k]) for k in ("client", "classifier") if a.multi.get(k))
            bases.append({"label": "no anonymization" + (f" ({ctx})" if ctx else ""), **b.stat(metric)})
    return Panel(
        label,
        "",
        "",
        series,
        baselines=bases,
        hlines=list(hlines),
        categories=categories,
        groups=groups,
    )


def _grid_plot(
    a: Audit,
    pid: str,
    title: str,
    metrics: list[tuple[str, str]],
    baseline: bool,
    caption: str,
    hlines: dict[str, list[dict[str, Any]]] | None = None,
) -> PlotSpec | None:
    """One panel per metric (two per row), each against every privacy model."""
    panels = [privacy_panel(a, m, label, baseline, (hlines or {}).get(m, [])) for m, label in metrics]
    panels = [p for p in panels if any(v is not None for s in p.series for v in s.y)]
    if not panels:
        return None
    return PlotSpec(pid, title, panels, ncols=min(2, len(panels)), caption=caption)


# ----------------------------------------------------------------------------- sections
def _cell_columns(a: Audit) -> list[Column]:
    cols = [Column("client", "Client")] if a.multi.get("client") else []
    cols += [
        Column("privacy_model", "Privacy model"),
        Column("algorithm", "Algorithm"),
        Column("classifier", "Classifier"),
        Column("seeds_ok", "Seeds ok"),
    ]
    return cols


def _cell_row(c: Cell) -> dict[str, Any]:
    return {
        **{k: c.keys[k] for k in ("client", "privacy_model", "algorithm", "classifier")},
        "seeds_ok": f"{c.n_ok}/{c.n_seeds}",
    }


def _changes(
    a: Audit, metrics: list[tuple[str, str, str]], topic: str, attr: str | None = None, worse: str = "flag"
) -> list[Finding]:
    out = []
    for c in a.cells:
        base = a.baseline(c)
        if c.family == "baseline" or base is None or not c.n_ok:
            continue
        for metric, label, kind in metrics:
            col = f"{attr}_{metric}" if attr else metric
            subject = a.subject(c)
            label_for = f"{label} for {attr}" if attr else label
            f = fnd.change_finding(
                subject,
                label_for,
                kind,
                base.values(col),
                c.values(col),
                topic,
                {
                    "metric": col,
                    "privacy_model": c.label,
                    "algorithm": c.keys["algorithm"],
                    "classifier": c.keys["classifier"],
                    "client": c.keys["client"],
                },
            )
            if f is not None:
                f.severity = worse if f.severity == "flag" else f.severity
                out.append(f)
    return out


def fairness_section(a: Audit, attr: str) -> Section:
    parity = [{"y": 0.0, "label": "parity"}]
    di = [{"y": 1.0, "label": "parity"}, {"y": 0.8, "label": "80% rule"}]
    metrics = [(f"{attr}_{m}", label) for m, label, _ in GROUP_METRICS if f"{attr}_{m}" in a.results.columns]
    hlines = {f"{attr}_{m}": di if kind == "di" else parity for m, _, kind in GROUP_METRICS}
    plot = _grid_plot(
        a,
        f"fair-{attr}",
        f"Group fairness for {attr} vs privacy level",
        metrics,
        True,
        "Mean over seeds with ± 1 std (band / error bars), per privacy model family; dashed line and "
        "grey band = the same classifier without anonymization.",
        hlines,
    )
    plots = [plot] if plot else []
    cols = _cell_columns(a) + [Column(f"{attr}_{m}", label, "mean_std3") for m, label, _ in GROUP_METRICS]
    rows = [
        {**_cell_row(c), **{f"{attr}_{m}": c.stat(f"{attr}_{m}") for m, _, _ in GROUP_METRICS}}
        for c in a.cells
    ]
    metrics = [m for m in GROUP_METRICS if m[0] in FINDING_METRICS]
    privileged = a.protected.get(attr)
    return Section(
        f"fairness-{attr}",
        f"Group fairness: {attr}",
        f"Privileged group: {attr} = {privileged}; every other value is the unprivileged group. Signed "
        + fnd.sign_sentence(a.summary),
        fnd.truthful(a, attr, _changes(a, metrics, f"fairness:{attr}", attr)),
        plots,
        [Table(f"audit-fairness-{attr}", f"Group fairness for {attr} ({fnd.SIGNED_LABEL})", cols, rows)],
    )


def utility_section(a: Audit) -> Section:
    plot = _grid_plot(
        a,
        "utility",
        "Utility vs privacy level",
        UTILITY,
        True,
        "Classifier trained on the anonymized training split, scored on the recoded test split.",
    )
    cols = _cell_columns(a) + [Column(m, label, "mean_std3") for m, label in UTILITY]
    rows = [{**_cell_row(c), **{m: c.stat(m) for m, _ in UTILITY}} for c in a.cells]
    kinds = [(m, label, "higher") for m, label in UTILITY if m in ("accuracy", "roc_auc")]
    return Section(
        "utility",
        "Utility",
        "What anonymization costs the classifier.",
        _changes(a, kinds, "utility", worse="warn"),
        [plot] if plot else [],
        [Table("audit-utility", "Utility (mean ± std over seeds)", cols, rows)],
    )


def individual_section(a: Audit) -> Section:
    metrics = [(m, label) for m, label, _ in INDIVIDUAL]
    plot = _grid_plot(
        a,
        "individual",
        "Individual fairness vs privacy level",
        metrics,
        True,
        "Consistency: 1 = neighbours get the same prediction. NCF, ASF, ALF: 0 = similar "
        "individuals get the same probability.",
    )
    cols = _cell_columns(a) + [Column(m, label, "mean_std3") for m, label, _ in INDIVIDUAL]
    rows = [{**_cell_row(c), **{m: c.stat(m) for m, _, _ in INDIVIDUAL}} for c in a.cells]
    return Section(
        "individual",
        "Individual fairness",
        "Do similar people get similar predictions?",
        _changes(a, [i for i in INDIVIDUAL if i[0] in ("consistency", "ncf")], "individual"),
        [plot] if plot else [],
        [Table("audit-individual", "Individual fairness (mean ± std over seeds)", cols, rows)],
    )


def anonymization_section(a: Audit) -> Section:
    plot = _grid_plot(
        a,
        "anonymization",
        "Information loss and suppression vs privacy level",
        ANON,
        False,
        "Measured on the anonymized training split.",
    )
    extra = [
        ("suppressed_rows", "Suppressed rows", "mean_std3"),
        ("anon_height", "Lattice height", "mean_std3"),
        ("anon_discernibility", "Discernibility", "mean_std3"),
        ("anon_seconds", "Seconds", "mean_std3"),
    ]
    cols = _cell_columns(a) + [Column(m, label, "mean_std3") for m, label in ANON]
    cols += [Column(m, label, f) for m, label, f in extra]
    keys = [m for m, _ in ANON] + [m for m, _, _ in extra]
    rows = [{**_cell_row(c), **{m: c.stat(m) for m in keys}} for c in a.cells]
    limit = (a.grid or {}).get("suppression_limit")
    found = []
    for c in a.cells:
        if c.family == "baseline" or not c.n_ok:
            continue
        supp, loss = c.stat("suppressed_fraction")["mean"], c.stat("anon_loss")["mean"]
        if supp is None:
            continue
        text = f"{a.subject(c)} suppresses {fnd.pct(supp)} of the training rows"
        text += f" (limit {fnd.pct(limit)})" if limit is not None else ""
        text += f" at information loss {fnd.cell(loss, 'num3')}." if loss is not None else "."
        near = limit is not None and supp > 0.9 * float(limit)
        found.append(
            Finding(
                text,
                "warn" if near else "info",
                "anonymization",
                values={"privacy_model": c.label, "suppressed_fraction": supp, "loss": loss},
            )
        )
    return Section(
        "anonymization",
        "Anonymization cost",
        "Information lost to generalization and suppression.",
        found,
        [plot] if plot else [],
        [Table("audit-anonymization", "Anonymization metrics (mean ± std over seeds)", cols, rows)],
    )


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


def overview_section(a: Audit) -> Section:
    cols = [
        *_cell_columns(a),
        Column("suppressed_fraction", "Suppressed", "mean_std3"),
        Column("accuracy", "Accuracy", "mean_std3"),
        Column("roc_auc", "ROC AUC", "mean_std3"),
    ]
    keys = ["suppressed_fraction", "accuracy", "roc_auc"]
    for attr in a.protected:
        cols += [
            Column(f"{attr}_spd", f"{attr} SPD", "mean_std3"),
            Column(f"{attr}_eq_opp_diff", f"{attr} EOD", "mean_std3"),
        ]
        keys += [f"{attr}_spd", f"{attr}_eq_opp_diff"]
    cols += [Column("consistency", "Consistency", "mean_std3"), Column("ncf", "NCF", "mean_std3")]
    keys += ["consistency", "ncf"]
    rows = [{**_cell_row(c), **{k: c.stat(k) for k in keys}} for c in a.cells]
    status = ["bad" if c.n_ok < c.n_seeds else "" for c in a.cells]
    tables = [
        Table(
            "audit-cells",
            "All cells: headline numbers (mean ± std over seeds)",
            cols,
            rows,
            row_status=status,
        )
    ]
    failed = a.results[a.results["status"] != "ok"]
    if len(failed):
        fcols = [Column("cell_id", "Cell"), Column("seed", "Seed", "int"), Column("status", "Status")]
        frows = [
            {"cell_id": r.get("cell_id"), "seed": r.get("seed"), "status": r.get("status")}
            for r in failed.to_dict("records")
        ]
        tables.append(Table("audit-failed", "Failed cells", fcols, frows, row_status=["bad"] * len(frows)))
    return Section("cells", "All cells", "Sortable: click a column header.", tables=tables)


def sections(a: Audit, notes: Notes, threshold: float, level: str | None) -> list[Section]:
    if not a.cells:
        return []
    out = [fairness_section(a, attr) for attr in a.protected]
    out += [utility_section(a), individual_section(a), anonymization_section(a)]
    risk = risk_section(a, notes, threshold, level)
    if risk is not None:
        out.append(risk)
    out.append(overview_section(a))
    return out


def key_findings(secs: list[Section]) -> list[Finding]:
    """The strongest real effects: fairness changes beyond the seed spread, then utility and risk."""
    fair = [f for s in secs for f in s.findings if f.topic.startswith("fairness") and f.exceeds_spread]

    def rel(f: Finding) -> float:
        b, a = f.values.get("before") or 0.0, f.values.get("after") or 0.0
        return abs(a - b) / max(abs(b), 1e-9)

    out = sorted(fair, key=rel, reverse=True)[:6]
    if not out:
        out = [f for s in secs for f in s.findings if f.topic.startswith("fairness")][:3]
        if out:
            out.insert(
                0, Finding("No group-fairness change exceeds the spread over seeds.", "info", "fairness")
            )
    out += [f for s in secs for f in s.findings if f.topic in fnd.KEY_TOPICS and f.exceeds_spread][:3]
    out += [f for s in secs for f in s.findings if f.topic == "risk"][:3]
    return out
