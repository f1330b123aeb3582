"""What an audit report says: the header facts, the reproduce command and its sections.

Sections: group fairness per protected attribute, utility, individual fairness, anonymization
cost, re-identification risk (`fedlab.report.audit.risk_section`) and the table of all cells.
Metric tables show means ± sample std over each cell's ok seeds (`fedlab.report.audit.read.Cell`).
"""

from __future__ import annotations

import shlex
from typing import Any

from audits.datasets.protected import privileged_text
from fedlab.report.audit import findings as fnd
from fedlab.report.audit.panels import grid_plot
from fedlab.report.audit.read import Audit, Cell
from fedlab.report.audit.risk_section import risk_section
from fedlab.report.content import Column, Finding, Section, Table
from fedlab.report.fmt import cell, pct
from fedlab.report.read import Notes

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


def _trivial(a: Audit, c: Cell, base: Cell) -> str:
    """Why the baseline or the anonymized model of a pair is near-trivial ("" if neither is)."""
    return "; ".join(r for r in (base.near_trivial(), c.near_trivial()) if r)


def _small(a: Audit, c: Cell, base: Cell, attr: str | None) -> bool:
    """Whether the privileged or the pooled unprivileged group has fewer test rows than the minimum."""
    if attr is None or not a.min_group_size:
        return False
    sizes = [x.stat(f"{attr}_{n}")["mean"] for x in (c, base) for n in ("n_priv", "n_unpriv")]
    return any(v is not None and v < a.min_group_size for v in sizes)


def _utility_drops(c: Cell, base: Cell) -> tuple[list[str], bool]:
    """Balanced accuracy / F1 falls beyond noise in this cell, and whether the positive rate fell."""
    from fedlab.metrics.judge import WORSE, judge_change

    drops = []
    for metric, label in (("balanced_accuracy", "balanced accuracy"), ("f1", "F1")):
        j = judge_change(base.by_seed(metric), c.by_seed(metric), "higher", bad_is="warn")
        if j.verdict == WORSE:
            b, n = base.stat(metric)["mean"], c.stat(metric)["mean"]
            drops.append(f"{label} {cell(b, 'num3')} → {cell(n, 'num3')}")
    rate = judge_change(base.by_seed("positive_rate"), c.by_seed("positive_rate"), "higher")
    return drops, rate.verdict == WORSE


def _changes(
    a: Audit, metrics: list[tuple[str, str, str]], topic: str, attr: str | None = None, worse: str = "flag"
) -> list[Finding]:
    out = []
    for c in a.cells:
        base = a.baseline(c)
        if c.family == "baseline" or base is None or not c.n_ok:
            continue
        trivial = _trivial(a, c, base) if topic != "utility" else ""
        small = _small(a, c, base, attr)
        drops, rate_fell = _utility_drops(c, base) if attr is not None else ([], False)
        for metric, label, kind in metrics:
            col = f"{attr}_{metric}" if attr else metric
            subject = a.subject(c)
            label_for = f"{label} for {attr}" if attr else label
            f = fnd.change_finding(
                subject,
                label_for,
                kind,
                base.by_seed(col),
                c.by_seed(col),
                topic,
                {
                    "metric": col,
                    "privacy_model": c.label,
                    "algorithm": c.keys["algorithm"],
                    "classifier": c.keys["classifier"],
                    "client": c.keys["client"],
                    "small_group": small,
                },
                near_trivial=trivial,
                bad_is=worse,
            )
            if f is None:
                continue
            if attr is not None:
                f = fnd.utility_caveat(f, drops, rate_fell)
                f.text = f.text.rstrip(".") + f" [{a.orientation(attr)}]."
                if small:
                    f.severity = "info"
                    f.text = f.text.rstrip(".") + (
                        f" A group has fewer than {a.min_group_size} test rows: not a headline finding."
                    )
            out.append(f)
    return out


GROUP_SIZES = [
    ("n_priv", "n privileged"),
    ("n_unpriv", "n unprivileged (pooled)"),
    ("n_smallest_group", "smallest group"),
    ("n_small_groups", "groups < min size"),
]
MULTI_GROUP = [
    ("dp_diff_groups", "DP difference, max − min over groups"),
    ("eq_odds_diff_groups", "equalized odds difference over groups"),
]


def _sizes_text(c: Cell, attr: str) -> str:
    """'Caucasian 740, African-American 1108, …' from the first ok seed's group sizes."""
    import json

    col = f"{attr}_group_sizes"
    if col not in c.rows.columns or not len(c.rows):
        return ""
    try:
        sizes = json.loads(str(c.rows[col].iloc[0]))
    except (json.JSONDecodeError, TypeError):
        return ""
    return ", ".join(f"{k} {v}" for k, v in sorted(sizes.items(), key=lambda kv: -kv[1]))


def fairness_section(a: Audit, attr: str) -> Section:
    parity = [{"y": 0.0, "label": "parity"}]
    di = [{"y": 1.0, "label": "parity"}, {"y": 0.8, "label": "four-fifths rule"}]
    metrics = [(f"{attr}_{m}", label) for m, label, _ in GROUP_METRICS if f"{attr}_{m}" in a.results.columns]
    hlines = {f"{attr}_{m}": di if kind == "di" else parity for m, _, kind in GROUP_METRICS}
    orientation = a.orientation(attr)
    plot = grid_plot(
        a,
        f"fair-{attr}",
        f"Group fairness for {attr} vs privacy level ({orientation})",
        metrics,
        True,
        "Mean over seeds with ± 1 std (band / error bars), per privacy model family; dashed line and "
        f"grey band = the same classifier without anonymization. Rates of the {orientation}.",
        hlines,
    )
    plots = [plot] if plot else []
    extra = [(m, label) for m, label in MULTI_GROUP] + GROUP_SIZES
    cols = _cell_columns(a) + [Column(f"{attr}_{m}", label, "mean_std3") for m, label, _ in GROUP_METRICS]
    cols += [Column(f"{attr}_{m}", label, "mean_std3") for m, label in extra]
    keys = [m for m, _, _ in GROUP_METRICS] + [m for m, _ in extra]
    rows = [{**_cell_row(c), **{f"{attr}_{m}": c.stat(f"{attr}_{m}") for m in keys}} for c in a.cells]
    status = []
    for c in a.cells:
        sizes = [c.stat(f"{attr}_{n}")["mean"] for n in ("n_priv", "n_unpriv")]
        small = a.min_group_size and any(v is not None and v < a.min_group_size for v in sizes)
        status.append("small" if small else ("trivial" if c.near_trivial() else ""))
    metrics = [m for m in GROUP_METRICS if m[0] in FINDING_METRICS]
    first = next((c for c in a.cells if c.n_ok), None)
    sizes = _sizes_text(first, attr) if first is not None else ""
    minimum = a.min_group_size
    intro = (
        f"Orientation: {orientation}. Every rate is the rate of the favourable outcome, and every "
        f"value of {attr} that is not privileged is pooled into one unprivileged group. Signed "
        + fnd.sign_sentence(a.summary)
        + (f" Test rows per group (first seed): {sizes}." if sizes else "")
        + (
            f" The max-over-groups numbers leave out groups with fewer than {minimum} test rows; "
            "rows in grey rest on a privileged or unprivileged group below that size."
            if minimum
            else ""
        )
        + " Rows marked as near-trivial are models no better than a constant (see Utility)."
    )
    return Section(
        f"fairness-{attr}",
        f"Group fairness: {attr}",
        intro,
        fnd.truthful(a, attr, _changes(a, metrics, f"fairness:{attr}", attr)),
        plots,
        [
            Table(
                f"audit-fairness-{attr}",
                f"Group fairness for {attr} ({fnd.SIGNED_LABEL}; {orientation})",
                cols,
                rows,
                row_status=status,
            )
        ],
    )


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
    cols = _cell_columns(a) + [Column(m, label, "mean_std3") for m, label in UTILITY + context]
    rows = [{**_cell_row(c), **{m: c.stat(m) for m, _ in UTILITY + context}} for c in a.cells]
    judged = ("accuracy", "balanced_accuracy", "roc_auc")
    kinds = [(m, label, "higher") for m, label in UTILITY if m in judged]
    return Section(
        "utility",
        "Utility",
        "What anonymization costs the classifier, next to what a constant predictor scores: a model "
        "whose accuracy is not above the majority-class rate, whose balanced accuracy is near 0.5 or "
        "whose predicted-positive rate is far from the prevalence is flagged as near-trivial.",
        _trivial_findings(a) + _changes(a, kinds, "utility", worse="warn"),
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
