"""Group fairness of the global model in a tabular federation: per client, pooled, on the target.

Per client: each client scores the received global model on its own held-out split and computes
`audits.fairness.group_fairness` (fairlearn) for every protected attribute, on the RAW attribute
values it keeps locally (even when its features were anonymized).

Pooled: the server must not see rows, so each client also sends the counts of its
(attribute value, label, prediction) cells; those counts are sufficient statistics for every
metric `group_fairness` reports, so the server rebuilds an equivalent set of (y, ŷ, group) rows
(`expand_counts`) and runs the very same fairlearn code on it: exactly the numbers one would get
on the concatenation of all clients' evaluation splits.

Target: the server's own held-out target domain, scored like the clients (it holds those rows).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

CountRow = tuple[str, str, int, int, int]  # attribute, value, y, ŷ, count


def _clean(d: Mapping[str, float]) -> dict[str, float | None]:
    return {k: (None if v != v else float(v)) for k, v in d.items()}


def fairness_by_attribute(
    y_true: np.ndarray, y_pred: np.ndarray, groups: pd.DataFrame, protected: Mapping[str, str]
) -> dict[str, dict[str, float | None]]:
    """`group_fairness` for every protected attribute present in `groups` (NaN -> None)."""
    from audits.fairness import group_fairness

    if len(y_true) == 0:
        return {}
    return {
        attr: _clean(group_fairness(y_true, y_pred, groups[attr].astype(str).reset_index(drop=True), priv))
        for attr, priv in protected.items()
        if attr in groups.columns
    }


def group_counts(
    y_true: np.ndarray, y_pred: np.ndarray, groups: pd.DataFrame, protected: Mapping[str, str]
) -> list[CountRow]:
    """Counts of every (attribute, value, y, ŷ) cell: what a client sends for pooled fairness."""
    rows: list[CountRow] = []
    for attr in protected:
        if attr not in groups.columns:
            continue
        frame = pd.DataFrame({"v": groups[attr].astype(str).to_numpy(), "y": y_true, "p": y_pred})
        for (v, y, p), n in frame.groupby(["v", "y", "p"]).size().items():
            rows.append((attr, str(v), int(y), int(p), int(n)))
    return rows


def expand_counts(rows: Iterable[CountRow], attr: str) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """Counts of one attribute -> equivalent (y, ŷ, group) arrays, in a fixed order."""
    cells = sorted((r for r in rows if r[0] == attr), key=lambda r: (r[1], r[2], r[3]))
    merged: dict[tuple[str, int, int], int] = {}
    for _, v, y, p, n in cells:
        merged[(v, y, p)] = merged.get((v, y, p), 0) + n
    keys = sorted(merged)
    reps = np.array([merged[k] for k in keys], dtype=np.int64)
    y = np.repeat([k[1] for k in keys], reps).astype(int)
    p = np.repeat([k[2] for k in keys], reps).astype(int)
    g = pd.Series(np.repeat([k[0] for k in keys], reps).astype(str))
    return y, p, g


def pooled_fairness(
    rows: Iterable[CountRow], protected: Mapping[str, str]
) -> dict[str, dict[str, float | None]]:
    """Fairness of the pooled evaluation splits from the clients' counts (module docstring)."""
    from audits.fairness import group_fairness

    rows = list(rows)
    out: dict[str, dict[str, float | None]] = {}
    for attr, priv in protected.items():
        y, p, g = expand_counts(rows, attr)
        if len(y):
            out[attr] = _clean(group_fairness(y, p, g, priv))
    return out


def client_payload(
    y_true: np.ndarray, y_pred: np.ndarray, groups: pd.DataFrame, protected: Mapping[str, str]
) -> str:
    """What a client's evaluate reply carries (JSON in a ConfigRecord): its metrics and counts."""
    return json.dumps(
        {
            "protected": dict(protected),
            "metrics": fairness_by_attribute(y_true, y_pred, groups, protected),
            "counts": group_counts(y_true, y_pred, groups, protected),
        }
    )


def read_payload(text: str) -> dict[str, Any]:
    data = json.loads(text)
    data["counts"] = [tuple(r) for r in data.get("counts", [])]
    return data
