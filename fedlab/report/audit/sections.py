"""What an audit report says: the header facts, the reproduce command and its sections.

Sections: group fairness per protected attribute, utility, individual fairness, anonymization
cost, re-identification risk (`fedlab.report.audit.risk_section`) and the table of all cells.
Metric tables show means ± sample std over each cell's ok seeds (`fedlab.report.audit.read.Cell`).
"""

from __future__ import annotations

import shlex

from audits.datasets.protected import privileged_text
from fedlab.report.audit.changes import cell_columns, cell_row, changes
from fedlab.report.audit.fairness_section import fairness_section
from fedlab.report.audit.panels import grid_plot
from fedlab.report.audit.read import Audit
from fedlab.report.audit.risk_section import risk_section
from fedlab.report.content import Column, Finding, Section, Table
from fedlab.report.fmt import cell, pct
from fedlab.report.read import Notes

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
    rows.append(
        (
            "Protected attributes",
            ", ".join(f"{k} (privileged: {privileged_text(v)})" for k, v in a.protected.items()),
        )
    )
    if "favourable_is_positive" in ds:
        rows.append(("Fairness orientation", a.orientation() + "; unprivileged = every other value pooled"))
    if a.min_group_size:
        rows.append(("Minimum group size", f"{a.min_group_size} test rows (smaller groups are marked)"))
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
    path = a.path.resolve()  # runs from any working directory (config.toml holds absolute paths)
    return shlex.join(["fedlab", "audit", "--config", str(path / "config.toml"), "--out", f"{path}-rerun"])


# ----------------------------------------------------------------------------- sections
def _trivial_findings(a: Audit) -> list[Finding]:
    """One warning per near-trivial cell, naming the majority-class rate."""
    out = []
    for c in a.cells:
        reason = c.near_trivial()
        if not reason:
            continue
        acc, maj = c.stat("accuracy")["mean"], c.stat("majority_rate")["mean"]
        ba, rate = c.stat("balanced_accuracy")["mean"], c.stat("positive_rate")["mean"]
        prev = c.stat("prevalence")["mean"]
        text = (
            f"{a.subject(c)} is a near-trivial model: accuracy {cell(acc, 'num3')} vs majority-class rate "
            f"{cell(maj, 'num3')}, balanced accuracy {cell(ba, 'num3')}, predicted-positive rate "
            f"{pct(rate)} vs prevalence {pct(prev)} ({reason.split(': ', 1)[-1]}). Its fairness numbers "
            "say little: a gap shrinks when the model stops predicting the positive label for anyone."
        )
        out.append(Finding(text, "warn", "near-trivial", values={"privacy_model": c.label, "reason": reason}))
    return out


def utility_section(a: Audit) -> Section:
    maj = [c.stat("majority_rate")["mean"] for c in a.cells if c.n_ok]
    maj = [m for m in maj if m is not None]
    hlines = {"balanced_accuracy": [{"y": 0.5, "label": "constant predictor"}]}
    if maj:
        hlines["accuracy"] = [{"y": float(sum(maj) / len(maj)), "label": "majority-class rate"}]
    plot = grid_plot(
        a,
        "utility",
        "Utility vs privacy level",
        UTILITY,
        True,
        "Classifier trained on the anonymized training split, scored on the recoded test split. "
        "Accuracy: the dotted line is the majority-class rate (always predicting the majority class); "
        "balanced accuracy 0.5 is a constant predictor.",
        hlines,
    )
    context = [
        ("majority_rate", "majority-class rate"),
        ("positive_rate", "predicted-positive rate"),
        ("prevalence", "prevalence"),
    ]
    cols = cell_columns(a) + [Column(m, label, "mean_std3") for m, label in UTILITY + context]
    rows = [{**cell_row(c), **{m: c.stat(m) for m, _ in UTILITY + context}} for c in a.cells]
    judged = ("accuracy", "balanced_accuracy", "roc_auc")
    kinds = [(m, label, "higher") for m, label in UTILITY if m in judged]
    return Section(
        "utility",
        "Utility",
        "What anonymization costs the classifier, next to what a constant predictor scores: a model "
        "whose accuracy is not above the majority-class rate, whose balanced accuracy is near 0.5 or "
        "whose predicted-positive rate is far from the prevalence is flagged as near-trivial.",
        _trivial_findings(a) + changes(a, kinds, "utility", worse="warn"),
        [plot] if plot else [],
        [
            Table(
                "audit-utility",
                "Utility (mean ± std over seeds)",
                cols,
                rows,
                row_status=["trivial" if c.near_trivial() else "" for c in a.cells],
            )
        ],
    )


def individual_section(a: Audit) -> Section:
    metrics = [(m, label) for m, label, _ in INDIVIDUAL]
    plot = grid_plot(
        a,
        "individual",
        "Individual fairness vs privacy level",
        metrics,
        True,
        "Consistency: 1 = neighbours get the same prediction. NCF, ASF, ALF: 0 = similar "
        "individuals get the same probability.",
    )
    cols = cell_columns(a) + [Column(m, label, "mean_std3") for m, label, _ in INDIVIDUAL]
    rows = [{**cell_row(c), **{m: c.stat(m) for m, _, _ in INDIVIDUAL}} for c in a.cells]
    return Section(
        "individual",
        "Individual fairness",
        "Do similar people get similar predictions?",
        changes(a, [i for i in INDIVIDUAL if i[0] in ("consistency", "ncf")], "individual"),
        [plot] if plot else [],
        [Table("audit-individual", "Individual fairness (mean ± std over seeds)", cols, rows)],
    )


def anonymization_section(a: Audit) -> Section:
    plot = grid_plot(
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
    cols = cell_columns(a) + [Column(m, label, "mean_std3") for m, label in ANON]
    cols += [Column(m, label, f) for m, label, f in extra]
    keys = [m for m, _ in ANON] + [m for m, _, _ in extra]
    rows = [{**cell_row(c), **{m: c.stat(m) for m in keys}} for c in a.cells]
    limit = (a.grid or {}).get("suppression_limit")
    found = []
    for c in a.cells:
        if c.family == "baseline" or not c.n_ok:
            continue
        supp, loss = c.stat("suppressed_fraction")["mean"], c.stat("anon_loss")["mean"]
        if supp is None:
            continue
        text = f"{a.subject(c)} suppresses {pct(supp)} of the training rows"
        text += f" (limit {pct(limit)})" if limit is not None else ""
        text += f" at information loss {cell(loss, 'num3')}." if loss is not None else "."
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


def overview_section(a: Audit) -> Section:
    cols = [
        *cell_columns(a),
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
    rows = [{**cell_row(c), **{k: c.stat(k) for k in keys}} for c in a.cells]
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
