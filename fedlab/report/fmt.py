"""One formatter for table cells and finding numbers, shared by every renderer.

The HTML, Markdown and JSON outputs agree because the two text formats print cells through
`cell` and the JSON carries the raw value plus the same format name.
"""

from __future__ import annotations

import math
from typing import Any

MISSING = "–"


def number(value: Any) -> float | None:
    """Float or None for NaN / missing / non-numeric values (NumPy scalars included)."""
    if value is None or isinstance(value, bool):
        return None if value is None else float(value)
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) or math.isinf(x) else x


def cell(value: Any, fmt: str) -> str:
    """Display text of one table cell."""
    if fmt == "text":
        return MISSING if value is None or value == "" else str(value)
    if fmt in ("mean_std3", "mean_std_pct1"):
        if not isinstance(value, dict):
            return cell(value, "num3" if fmt == "mean_std3" else "pct1")
        mean, std = number(value.get("mean")), number(value.get("std"))
        if mean is None:
            return MISSING
        if fmt == "mean_std3":
            return f"{mean:.3f}" if std is None else f"{mean:.3f} ± {std:.3f}"
        return f"{100 * mean:.1f}%" if std is None else f"{100 * mean:.1f} ± {100 * std:.1f}%"
    if fmt in ("mean_std_pp1", "ci_pp1", "ratio_ci"):
        return _interval_cell(value, fmt)
    x = number(value)
    if x is None:
        return MISSING
    if fmt == "int":
        return f"{round(x):d}"
    if fmt == "num3":
        return f"{x:.3f}"
    if fmt == "signed3":
        return f"{x:+.3f}"
    if fmt == "pct1":
        return f"{100 * x:.1f}%"
    if fmt == "signed_pct1":
        return f"{100 * x:+.1f} pp"
    if fmt == "seconds":
        return f"{x:.1f} s"
    return str(value)


def pct(x: Any) -> str:
    """A fraction in a finding's sentence, printed as its "pct1" table cell is."""
    return cell(x, "pct1")


def pp(x: Any) -> str:
    """A difference of fractions in a finding's sentence, printed as its "signed_pct1" cell is."""
    return cell(x, "signed_pct1")


def _interval_cell(value: Any, fmt: str) -> str:
    """Group Effect as "+x ± s pp" (fractions in, points out); a paired interval (already in pp)
    as "+x pp [lo, hi] w/n"; a ratio as "x× [lo, hi]"."""
    if not isinstance(value, dict):
        value = {"mean": value}
    mean, lo, hi = number(value.get("mean")), number(value.get("ci_low")), number(value.get("ci_high"))
    if mean is None:
        return MISSING if not value.get("note") else str(value["note"])
    if fmt == "mean_std_pp1":
        std = number(value.get("std"))
        return f"{100 * mean:+.1f} pp" + ("" if std is None else f" ± {100 * std:.1f}")
    if fmt == "ratio_ci":
        if value.get("ci_low") is None:
            return f"{mean:.2f}×"
        return f"{mean:.2f}× [{_bound(value.get('ci_low'))}, {_bound(value.get('ci_high'))}]"
    text = f"{mean:+.1f} pp"
    if lo is not None and hi is not None:
        text += f" [{lo:+.1f}, {hi:+.1f}]"
    if value.get("n"):
        text += f" {int(value.get('wins', 0))}/{int(value['n'])}"
    return text


def _bound(v: Any) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return "?"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    return "?" if math.isnan(x) else f"{x:.2f}"


def sort_key(value: Any) -> str:
    """Machine-sortable value for HTML tables (numbers as numbers, text as text)."""
    if isinstance(value, dict):
        value = value.get("mean")
    x = number(value) if not isinstance(value, str) else None
    if x is not None:
        return repr(x)
    return "" if value is None else str(value)
