"""Group fairness of the global model in a tabular federation: per client, pooled, on the target.

Per client: each client scores the received global model on its own held-out split and computes
the numbers of `audits.measures.fairness.group_fairness` (fairlearn) for every protected attribute, on the
RAW attribute values it keeps locally (even when its features were anonymized). They are computed
from the per-group confusion counts by `fedlab.metrics.group_rates` (identical values, ~1000× cheaper than
rebuilding fairlearn's MetricFrame per client per round; tests/test_group_rates.py checks equality).

Pooled: the server must not see rows, so each client also sends the counts of its
(attribute value, label, prediction) cells; those counts are sufficient statistics for every
metric `group_fairness` reports, so the server sums them into one count table per attribute and
computes the same numbers from it: exactly the numbers one would get on the concatenation of all
clients' evaluation splits (`expand_counts` rebuilds those rows, for checking against fairlearn).

Target: the server's own held-out target domain, scored like the clients (it holds those rows).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from fedlab.metrics.group_rates import confusion_table, encode, fairness_from_table

CountRow = tuple[str, str, int, int, int]  # attribute, value, y, ŷ, count


def _clean(d: Mapping[str, float]) -> dict[str, float | None]:
    return {k: (None if v != v else float(v)) for k, v in d.items()}


_ENCODED: dict[tuple[int, str], tuple[pd.DataFrame, np.ndarray, np.ndarray]] = {}


def _encoded(groups: pd.DataFrame, attr: str) -> tuple[np.ndarray, np.ndarray]:
    """(labels, codes) of one attribute column, cached per frame: a client's groups never change."""
    key = (id(groups), attr)
    hit = _ENCODED.get(key)
    if hit is not None and hit[0] is groups:
        return hit[1], hit[2]
    if len(_ENCODED) > 8192:  # bounded: 1,000s of clients × a few attributes
        _ENCODED.clear()
    labels, codes = encode(groups[attr])
    _ENCODED[key] = (groups, labels, codes)
    return labels, codes


def _tables(
    y_true: np.ndarray, y_pred: np.ndarray, groups: pd.DataFrame, protected: Mapping[str, str]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for attr in protected:
        if attr in groups.columns:
            labels, codes = _encoded(groups, attr)
            out[attr] = (labels, confusion_table(codes, len(labels), y_true, y_pred))
    return out


def fairness_by_attribute(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    groups: pd.DataFrame,
    protected: Mapping[str, Any],
    favourable: int = 1,
) -> dict[str, dict[str, float | None]]:
    """`group_fairness` for every protected attribute present in `groups` (NaN -> None), on the
    `favourable` outcome (1 = the positive label; see `fedlab.metrics.group_rates`)."""
    if len(y_true) == 0:
        return {}
    tables = _tables(y_true, y_pred, groups, protected)
    return {
        attr: _clean(fairness_from_table(labels, table, protected[attr], favourable))
        for attr, (labels, table) in tables.items()
    }


def _count_rows(attr: str, labels: np.ndarray, table: np.ndarray) -> list[CountRow]:
    """Non-empty (value, y, ŷ) cells in sorted order (what pandas' group-by used to list)."""
    rows: list[CountRow] = []
    for gi, y, p in zip(*np.nonzero(table), strict=True):
        rows.append((attr, str(labels[gi]), int(y), int(p), int(table[gi, y, p])))
    return rows


def group_counts(
    y_true: np.ndarray, y_pred: np.ndarray, groups: pd.DataFrame, protected: Mapping[str, str]
) -> list[CountRow]:
    """Counts of every (attribute, value, y, ŷ) cell: what a client sends for pooled fairness."""
    tables = _tables(y_true, y_pred, groups, protected)
    return [row for attr, (labels, table) in tables.items() for row in _count_rows(attr, labels, table)]


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
    rows: Iterable[CountRow], protected: Mapping[str, Any], favourable: int = 1
) -> dict[str, dict[str, float | None]]:
    """Fairness of the pooled evaluation splits from the clients' counts (module docstring)."""
    merged: dict[str, dict[str, np.ndarray]] = {}
    for attr, v, y, p, n in rows:
        cell = merged.setdefault(attr, {}).setdefault(str(v), np.zeros((2, 2), dtype=np.int64))
        cell[int(y), int(p)] += int(n)
    out: dict[str, dict[str, float | None]] = {}
    for attr, priv in protected.items():
        cells = merged.get(attr)
        if cells and sum(int(c.sum()) for c in cells.values()):
            labels = sorted(cells)
            table = np.stack([cells[v] for v in labels])
            out[attr] = _clean(fairness_from_table(labels, table, priv, favourable))
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
