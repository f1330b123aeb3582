"""Console table of a sweep's paired comparison with FedAvg (see `fedlab.metrics.comparison`)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from fedlab.metrics.comparison import METHODS, interval_text, ratio_note, reference_position
from fedlab.metrics.stats import Interval, Ratio, describe, format_ratio, verdict


def _ratio(r: Ratio) -> str:
    return format_ratio(r)


def paired_table(cells: list[dict[str, Any]], federation: str) -> Table:
    """Per target × strategy: Δ vs FedAvg (final, best round), ΔGE, GE (in pp), GE ratio."""
    t = Table(
        title=f"{federation}: paired difference vs {cells[0]['baseline']} per seed, percentage points; "
        f"mean [95% CI, {METHODS['differences']}], wins; GE ratio: {METHODS['ratio']}",
        title_justify="left",
    )
    columns = (
        "target",
        "strategy",
        "seeds",
        "Δ final acc",
        "Δ best-round acc",
        "Δ final GE",
        "GE",
        "GE ratio",
    )
    for col in columns:
        t.add_column(col, justify="right")
    for c in cells:
        ge: Interval = c["ge_strategy"]
        t.add_row(
            str(c["target"]),
            str(c["strategy"]),
            str(c["seeds"]),
            describe(c["final"]),
            describe(c["best"]),
            describe(c["ge"]),
            describe(ge, wins=False),
            ratio_note(c) or _ratio(c["ge_ratio"]),
        )
    return t


def verdict_lines(cells: list[dict[str, Any]]) -> list[str]:
    """One line per cell: "gain" / "negative transfer" only when the 95% CI excludes 0."""
    lines = []
    for c in cells:
        position = reference_position(c)
        if position is not None:  # a reference is a scale, not a competitor
            lines.append(f"{c['target']}, {position} (final): {interval_text(c['final'])}")
        else:
            head = f"{c['target']}, {c['strategy']} vs {c['baseline']} (final)"
            lines.append(f"{head}: {verdict(c['final'], 1.0)}")
    return lines
