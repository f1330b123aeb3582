"""Format-independent report content.

Every renderer (HTML, Markdown, JSON) reads the same `Report` object, so a number can only
differ between formats if a renderer invents it - none does: tables hold raw values plus a
format name, findings hold finished sentences, plots hold the plotted data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["info", "good", "warn", "flag"]
CellFormat = Literal[
    "text",
    "int",
    "num3",
    "signed3",
    "pct1",
    "signed_pct1",
    "mean_std3",
    "mean_std_pct1",
    "seconds",
    "mean_std_pp1",  # Group Effect (fraction) as signed percentage points ± std
    "ci_pp1",  # paired interval in pp: {"mean", "ci_low", "ci_high", "wins", "n"}
    "ratio_ci",  # ratio with interval: {"mean", "ci_low", "ci_high"}
]


@dataclass
class Column:
    """A table column: the row key it shows, its heading, how its cells are formatted, a tooltip."""
    key: str
    label: str
    fmt: CellFormat = "text"
    help: str = ""


@dataclass
class Table:
    """Rows are dicts keyed by column key; a mean ± std cell is ``{"mean": x, "std": s}``."""

    id: str
    title: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    note: str = ""
    # row index -> CSS-ish status ("bad" rows are highlighted, e.g. negative transfer)
    row_status: list[str] = field(default_factory=list)


@dataclass
class Finding:
    """One sentence computed from the numbers; `exceeds_spread` says whether seeds agree it is real."""

    text: str
    severity: Severity = "info"
    topic: str = ""
    exceeds_spread: bool | None = None
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class Series:
    """One line of a plot: name, x and y values and an optional band (spread over seeds)."""
    name: str
    x: list[Any]
    y: list[float | None]
    std: list[float | None] | None = None  # band: y ± std
    style: str = "line"  # line | dashed | bar | step
    color: str | None = None


@dataclass
class Panel:
    """One plot panel: its series, axis labels, baselines and reference lines (e.g. the four-fifths line)."""
    title: str
    x_label: str
    y_label: str
    series: list[Series]
    kind: Literal["line", "bar", "grouped_bar"] = "line"
    x_log: bool = False
    y_percent: bool = False  # y values are fractions shown as % (accuracy, Group Effect points)
    baselines: list[dict[str, Any]] = field(default_factory=list)  # {"label", "y", "std"}: line + band
    hlines: list[dict[str, Any]] = field(default_factory=list)  # {"y", "label"}
    negative_highlight: bool = False  # shade y < 0 (negative transfer)
    # categorical x axis (series x values are category labels), split into labelled groups
    categories: list[str] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)  # {"label", "categories": [...]}


@dataclass
class PlotSpec:
    """A figure, independent of the renderer: panels and a caption."""
    id: str
    title: str
    panels: list[Panel]
    ncols: int = 3
    caption: str = ""


@dataclass
class Section:
    """A report section: heading, intro text, tables, plots and findings."""
    id: str
    title: str
    intro: str = ""
    findings: list[Finding] = field(default_factory=list)
    plots: list[PlotSpec] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)


@dataclass
class Report:
    """Everything a report says, computed once; the HTML, Markdown and JSON renderers only format it."""
    kind: Literal["simulation", "sweep", "study", "audit"]
    title: str
    run_dir: str
    generated: str
    report_version: str
    fedlab_version: str | None
    header: list[tuple[str, str]]
    reproduce: str
    key_findings: list[Finding]
    sections: list[Section]
    missing: list[str] = field(default_factory=list)

    def plots(self) -> list[PlotSpec]:
        """Every plot in the report, in section order."""
        return [p for s in self.sections for p in s.plots]

    def tables(self) -> list[Table]:
        """Every table in the report, in section order."""
        return [t for s in self.sections for t in s.tables]


def to_dict(obj: Any) -> Any:
    """Plain JSON-ready structure (dataclasses -> dicts, tuples -> lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_dict(v) for v in obj]
    return obj
