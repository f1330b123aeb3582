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


def sort_key(value: Any) -> str:
    """Machine-sortable value for HTML tables (numbers as numbers, text as text)."""
    if isinstance(value, dict):
        value = value.get("mean")
    x = number(value) if not isinstance(value, str) else None
    if x is not None:
        return repr(x)
    return "" if value is None else str(value)
