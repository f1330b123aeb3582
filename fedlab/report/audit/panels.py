"""Plot panels of an audit report: one metric against every privacy model of the grid."""

from __future__ import annotations

from typing import Any

from fedlab.report.audit.read import Audit, Cell
from fedlab.report.content import Panel, PlotSpec, Series

FAMILY_AXIS = {
    "k": ("k", "k (k-anonymity)", True),
    "l": ("l", "l (l-diversity)", False),
    "t": ("t", "t (t-closeness)", False),
}


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


def grid_plot(
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
