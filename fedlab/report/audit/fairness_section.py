"""The audit report's group-fairness section, one per protected attribute.

Why its own module: it is the section an auditor reads first and the one with the most rules —
orientation from the user's schema, pooled unprivileged groups, group sizes, the four-fifths line,
near-trivial and small-group rows greyed out — so it lives apart from the shorter sections.
"""

from __future__ import annotations

from fedlab.report.audit import findings as fnd
from fedlab.report.audit.changes import cell_columns, cell_row, changes
from fedlab.report.audit.panels import grid_plot
from fedlab.report.audit.read import Audit, Cell
from fedlab.report.content import Column, Section, Table

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
    cols = cell_columns(a) + [Column(f"{attr}_{m}", label, "mean_std3") for m, label, _ in GROUP_METRICS]
    cols += [Column(f"{attr}_{m}", label, "mean_std3") for m, label in extra]
    keys = [m for m, _, _ in GROUP_METRICS] + [m for m, _ in extra]
    rows = [{**cell_row(c), **{f"{attr}_{m}": c.stat(f"{attr}_{m}") for m in keys}} for c in a.cells]
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
        fnd.truthful(a, attr, changes(a, metrics, f"fairness:{attr}", attr)),
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
