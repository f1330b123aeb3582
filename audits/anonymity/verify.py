"""Verify k-anonymity, l-diversity and t-closeness of any table, vectorized.

Every function groups rows into equivalence classes (identical QI values) with integer keys and
NumPy counting, so checking a 45k-row table takes milliseconds, not the per-class Python loops of
pycanon. Each returns the table-level value; `per_class=True` returns one row per class instead.

Suppressed rows: by default a value "*" is an ordinary value, so rows whose QIs are all "*" form
one equivalence class together (pycanon's behaviour; conservative). With
``ignore_suppressed=True`` such rows are left out before checking (ARX's behaviour, where
suppressed records are not published). `audits.anonymity` removes suppressed rows from its
output, so both give the same answer there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from audits.anonymity.hierarchy import TOP, Hierarchy
from fedlab.core.errors import ConfigError, DataError

LKind = Literal["distinct", "entropy", "recursive"]
TDistance = Literal["ordered", "equal", "hierarchical"]
_DENSE_LIMIT = 4_000_000  # class x value cells materialised at once


@dataclass
class Classes:
    """Equivalence classes of a table: class id per row (0..n_classes-1 in order of first row)."""

    ids: np.ndarray
    n_classes: int
    sizes: np.ndarray
    first_row: np.ndarray  # positional index of each class's first row


def _check(df: pd.DataFrame, cols: Sequence[str]) -> None:
    for c in cols:
        if c not in df.columns:
            raise DataError(f"column {c!r} not in the table (columns: {', '.join(map(str, df.columns))})")
    if df.empty:
        raise DataError("cannot verify an empty table")


def combine_codes(codes: Sequence[np.ndarray], radices: Sequence[int]) -> np.ndarray:
    """Dense class id per row from per-column integer codes (mixed radix, re-factorized on overflow)."""
    n = len(codes[0]) if codes else 0
    key = np.zeros(n, dtype=np.int64)
    span = 1
    for c, r in zip(codes, radices, strict=True):
        if span * max(r, 1) >= 2**62:
            key, uniq = pd.factorize(key)
            span = len(uniq)
        key = key * max(r, 1) + c
        span *= max(r, 1)
    ids, _ = pd.factorize(key)
    return ids.astype(np.int64)


def equivalence_classes(df: pd.DataFrame, qis: Sequence[str]) -> pd.Series:
    """Class id of every row (aligned with ``df.index``); rows with equal QI values share an id."""
    _check(df, qis)
    return pd.Series(_classes(df, qis).ids, index=df.index, name="class")


def _classes(df: pd.DataFrame, qis: Sequence[str]) -> Classes:
    codes, radices = [], []
    for q in qis:
        c, u = pd.factorize(df[q], use_na_sentinel=False)
        codes.append(c.astype(np.int64))
        radices.append(len(u))
    ids = combine_codes(codes, radices) if qis else np.zeros(len(df), dtype=np.int64)
    n_classes = int(ids.max()) + 1 if len(ids) else 0
    sizes = np.bincount(ids, minlength=n_classes)
    first = np.full(n_classes, len(ids), dtype=np.int64)
    np.minimum.at(first, ids, np.arange(len(ids)))
    return Classes(ids, n_classes, sizes, first)


def _drop_suppressed(df: pd.DataFrame, qis: Sequence[str], ignore: bool) -> pd.DataFrame:
    if not ignore:
        return df
    mask = np.ones(len(df), dtype=bool)
    for q in qis:
        mask &= df[q].astype(str).to_numpy() == TOP
    out = df.loc[~mask]
    if out.empty:
        raise DataError("every row is suppressed (all QIs '*'): nothing to verify")
    return out


def _frame(df: pd.DataFrame, qis: Sequence[str], cls: Classes, name: str, values: np.ndarray) -> pd.DataFrame:
    out = df[list(qis)].iloc[cls.first_row].reset_index(drop=True)
    out.insert(len(out.columns), "size", cls.sizes)
    out[name] = values
    out.index.name = "class"
    return out


def k_anonymity(
    df: pd.DataFrame, qis: Sequence[str], per_class: bool = False, ignore_suppressed: bool = False
) -> int | pd.DataFrame:
    """Smallest equivalence-class size."""
    _check(df, qis)
    df = _drop_suppressed(df, qis, ignore_suppressed)
    cls = _classes(df, qis)
    if per_class:
        return _frame(df, qis, cls, "k", cls.sizes)
    return int(cls.sizes.min())


def _pairs(
    ids: np.ndarray, codes: np.ndarray, m: int, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(class, value, count) for every value present in every class (counts weighted if given)."""
    uniq, inv = np.unique(ids * m + codes, return_inverse=True)
    cnt = np.bincount(inv, weights=weights, minlength=len(uniq)) if weights is not None else np.bincount(inv)
    return uniq // m, uniq % m, cnt.astype(float)


def class_l_values(
    ids: np.ndarray,
    sizes: np.ndarray,
    codes: np.ndarray,
    m: int,
    kind: LKind = "distinct",
    c: float | None = None,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """l of each class for the given l-diversity variant (shared with the anonymizers)."""
    pc, _, cnt = _pairs(ids, codes, m, weights)
    g = len(sizes)
    if kind == "distinct":
        return np.bincount(pc, minlength=g).astype(float)
    if kind == "entropy":
        p = cnt / sizes[pc]
        ent = -np.bincount(pc, weights=p * np.log(p), minlength=g)
        return np.exp(ent)
    if kind == "recursive":
        if c is None or c <= 0:
            raise ConfigError(f"recursive (c,l)-diversity needs a constant c > 0 (got {c!r})")
        # counts sorted descending within each class; tail = r_j + ... + r_m at rank j
        order = np.lexsort((-cnt, pc))
        pc, cnt = pc[order], cnt[order]
        starts = np.r_[0, np.flatnonzero(np.diff(pc)) + 1]
        lengths = np.diff(np.r_[starts, len(cnt)])
        r1 = np.repeat(cnt[starts], lengths)
        csum = np.cumsum(cnt)
        before = csum - cnt - np.repeat(np.r_[0.0, csum[starts[1:] - 1]], lengths)
        tail = np.bincount(pc, weights=cnt, minlength=g)[pc] - before
        ok = r1 < c * tail  # holds for l = rank + 1, monotone in rank
        return np.bincount(pc, weights=ok.astype(float), minlength=g)
    raise ConfigError(f"unknown l-diversity kind {kind!r}: expected distinct, entropy or recursive")


def l_diversity(
    df: pd.DataFrame,
    qis: Sequence[str],
    sensitive: str,
    kind: LKind = "distinct",
    c: float | None = None,
    per_class: bool = False,
    ignore_suppressed: bool = False,
) -> float | pd.DataFrame:
    """Smallest l over classes.

    distinct: number of distinct sensitive values; entropy: exp(entropy) ("entropy l", not
    rounded); recursive: for the given c, the largest l with r1 < c * (r_l + ... + r_m) where
    r1 >= r2 >= ... are the class's value counts (0 if even l = 1 fails).
    """
    _check(df, [*qis, sensitive])
    df = _drop_suppressed(df, qis, ignore_suppressed)
    cls = _classes(df, qis)
    s, uniq = pd.factorize(df[sensitive], use_na_sentinel=False)
    values = class_l_values(cls.ids, cls.sizes, s.astype(np.int64), len(uniq), kind, c)
    if per_class:
        return _frame(df, qis, cls, "l", values)
    return float(values.min())


def sensitive_codes(
    series: pd.Series, distance: TDistance, hierarchy: Hierarchy | None, order: Sequence[object] | None
) -> tuple[np.ndarray, int]:
    """Codes of the sensitive values in the ground-distance order, and the number of values."""
    if distance == "hierarchical":
        if hierarchy is None:
            raise ConfigError(f"hierarchical t-closeness on {series.name!r} needs its hierarchy")
        return hierarchy.encode(series), len(hierarchy.leaves)
    if order is not None:
        cats = pd.Index(list(order))
        codes = pd.Categorical(series, categories=cats).codes.astype(np.int64)
        if (codes < 0).any():
            bad = series.to_numpy()[int(np.argmax(codes < 0))]
            raise DataError(f"column {series.name!r}: value {bad!r} is not in the given order")
        return codes, len(cats)
    codes, _ = pd.factorize(series, sort=True, use_na_sentinel=False)
    return codes.astype(np.int64), int(codes.max()) + 1


def class_emd(
    ids: np.ndarray,
    sizes: np.ndarray,
    codes: np.ndarray,
    m: int,
    distance: TDistance,
    hierarchy: Hierarchy | None = None,
    p: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """EMD between each class's sensitive distribution and `p` (default: the whole table's)."""
    g = len(sizes)
    if p is None:
        p = np.bincount(codes, weights=weights, minlength=m) / float(sizes.sum())
    if distance == "equal":
        pc, pv, cnt = _pairs(ids, codes, m, weights)
        q = cnt / sizes[pc]
        # 0.5 * sum |q - p| = 0.5 * (sum p + sum over present values of (|q - p| - p))
        part = np.bincount(pc, weights=np.abs(q - p[pv]) - p[pv], minlength=g)
        return np.maximum(0.5 * (p.sum() + part), 0.0)
    if distance not in ("ordered", "hierarchical"):
        raise ConfigError(
            f"unknown t-closeness distance {distance!r}: expected ordered, equal or hierarchical"
        )
    out = np.zeros(g)
    step = max(1, _DENSE_LIMIT // max(m, 1))
    order = np.argsort(ids, kind="stable")
    bounds = np.searchsorted(ids[order], np.arange(0, g + step, step))
    for i, lo in enumerate(range(0, g, step)):
        hi = min(lo + step, g)
        rows = order[bounds[i] : bounds[i + 1]]
        w = None if weights is None else weights[rows]
        counts = np.bincount((ids[rows] - lo) * m + codes[rows], weights=w, minlength=(hi - lo) * m)
        with np.errstate(invalid="ignore", divide="ignore"):
            q = counts.reshape(hi - lo, m) / sizes[lo:hi, None]
        r = np.nan_to_num(q) - p[None, :]
        if distance == "ordered":
            out[lo:hi] = np.abs(np.cumsum(r, axis=1)).sum(axis=1) / (m - 1) if m > 1 else 0.0
        else:
            assert hierarchy is not None
            out[lo:hi] = hierarchy.emd(r)
    return out


def t_closeness(
    df: pd.DataFrame,
    qis: Sequence[str],
    sensitive: str,
    distance: TDistance | None = None,
    hierarchy: Hierarchy | None = None,
    order: Sequence[object] | None = None,
    per_class: bool = False,
    ignore_suppressed: bool = False,
) -> float | pd.DataFrame:
    """Largest EMD between a class's sensitive distribution and the table's (Li et al. 2007).

    ordered: sum |cumsum(q - p)| / (m - 1) over values sorted (or in `order`); equal:
    0.5 * sum |q - p|; hierarchical: tree EMD over `hierarchy`. Default distance: ordered for
    numeric columns, equal otherwise (pycanon's choice).
    """
    _check(df, [*qis, sensitive])
    df = _drop_suppressed(df, qis, ignore_suppressed)
    if distance is None:
        distance = "ordered" if pd.api.types.is_numeric_dtype(df[sensitive]) else "equal"
    codes, m = sensitive_codes(df[sensitive], distance, hierarchy, order)
    cls = _classes(df, qis)
    values = class_emd(cls.ids, cls.sizes, codes, m, distance, hierarchy)
    if per_class:
        return _frame(df, qis, cls, "t", values)
    return float(values.max())
