"""What changed between a cell and its baseline, as findings: the judgment every audit section shares.

Why its own module: the fairness, utility, individual-fairness and anonymization sections each
turn "this privacy model vs the same classifier without it" into findings with the same caveats —
a near-trivial model on either side, a group below the minimum size, a utility drop that makes a
fairness gain suspect — so one owner applies them the same way everywhere.
"""

from __future__ import annotations

from typing import Any

from fedlab.report.audit import findings as fnd
from fedlab.report.audit.read import Audit, Cell
from fedlab.report.content import Column, Finding
from fedlab.report.fmt import cell


def cell_columns(a: Audit) -> list[Column]:
    cols = [Column("client", "Client")] if a.multi.get("client") else []
    cols += [
        Column("privacy_model", "Privacy model"),
        Column("algorithm", "Algorithm"),
        Column("classifier", "Classifier"),
        Column("seeds_ok", "Seeds ok"),
    ]
    return cols


def cell_row(c: Cell) -> dict[str, Any]:
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


def changes(
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
