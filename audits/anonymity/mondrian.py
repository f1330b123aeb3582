"""Mondrian multidimensional partitioning (LeFevre, DeWitt & Ramakrishnan 2006), strict version.

A partition is split on the QI with the widest normalized range: numeric QIs at the median
(left = values <= median), categorical QIs into the children of the lowest hierarchy node that
covers the partition's values. A split is accepted only if every part satisfies the whole model
(size >= k, l-diversity, t-closeness against the full table's distribution); otherwise the next
widest QI is tried, and a partition with no acceptable split becomes an equivalence class.
Numeric QIs are published as "[min, max]" of the partition (or the single value), categorical QIs
as the label of that lowest common hierarchy node. Nothing is ever suppressed: the whole table is
one valid partition, which `mondrian` verifies up front.

transform(other): each new row walks the same split tree (numeric: <= threshold goes left;
categorical: to the child node its value belongs to) and gets the label of the leaf region it
lands in, the region being the split-tree cell (so a value outside the training min..max of that
cell still gets its label). A row whose categorical child node had no training rows at a split
stops there and gets that internal region's (coarser) label.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from audits.anonymity.hierarchy import Hierarchy, value_key
from audits.anonymity.loss import summarize
from audits.anonymity.privacy_model import TOLERANCE, PrivacyModel, check_sensitive
from audits.anonymity.result import AnonymizationResult
from audits.anonymity.verify import TDistance, class_emd, class_l_values, combine_codes, sensitive_codes
from fedlab.core.errors import ConfigError, DataError, FedlabError


@dataclass
class _Region:
    labels: tuple[str, ...]
    split: int | None = None  # QI position
    threshold: float = 0.0
    inclusive: bool = True
    level: int = 0  # categorical split: level of the child codes
    children: dict[int, _Region] = field(default_factory=dict)  # numeric: {0: left, 1: right}


@dataclass
class _Problem:
    qis: list[str]
    numeric: list[bool]
    x: list[np.ndarray]  # numeric values (float) or leaf codes (int)
    hierarchies: list[Hierarchy | None]
    span: list[float]  # global range (numeric) or present leaves - 1 (categorical)
    present: list[np.ndarray | None]  # categorical: leaves present in the input
    sorted_values: list[np.ndarray | None]  # numeric: distinct input values (for NCP)
    model: PrivacyModel
    sens: np.ndarray | None
    m: int
    distance: TDistance | None
    s_hierarchy: Hierarchy | None
    p: np.ndarray | None
    row_codes: list[list[np.ndarray] | None] = field(default_factory=list)  # [qi][level] node per row
    under: list[list[np.ndarray] | None] = field(default_factory=list)  # [qi][level] present leaves

    def ok(self, rows: np.ndarray, group: np.ndarray, n_groups: int) -> bool:
        """Every group (ids 0..n_groups-1, one per row in `rows`) satisfies the model."""
        sizes = np.bincount(group, minlength=n_groups).astype(float)
        if (sizes < self.model.k).any() or (sizes == 0).any():
            return False
        model = self.model
        if model.l is not None:
            assert self.sens is not None
            lv = class_l_values(group, sizes, self.sens[rows], self.m, model.l_kind, model.c)
            if (lv < model.l - TOLERANCE).any():
                return False
        if model.t is not None:
            assert self.sens is not None and self.distance is not None
            emd = class_emd(group, sizes, self.sens[rows], self.m, self.distance, self.s_hierarchy, p=self.p)
            if (emd > model.t + TOLERANCE).any():
                return False
        return True


def _lca(levels: list[np.ndarray], rows: np.ndarray) -> tuple[int, int]:
    """(level, node code) of the lowest hierarchy node covering the values of `rows`."""
    for level, codes in enumerate(levels):
        col = codes[rows]
        if col.min() == col.max():
            return level, int(col[0])
    return len(levels) - 1, 0


def _fmt(lo: float, hi: float) -> str:
    return value_key(lo) if lo == hi else f"[{value_key(lo)}, {value_key(hi)}]"


def _build(
    df: pd.DataFrame,
    qis: list[str],
    hierarchies: Mapping[str, Hierarchy],
    model: PrivacyModel,
    sensitive: str | None,
) -> _Problem:
    if not qis:
        raise ConfigError("anonymize: give at least one quasi-identifier")
    for col in [*qis, *([sensitive] if sensitive else [])]:
        if col not in df.columns:
            raise DataError(f"anonymize: column {col!r} not in the table")
    if df.empty:
        raise DataError("anonymize: the table is empty")
    if model.k > len(df):
        raise FedlabError(f"anonymize: k={model.k} is larger than the table ({len(df)} rows)")
    numeric, xs, hs, span, present, sv = [], [], [], [], [], []
    for q in qis:
        col = df[q]
        is_num = pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)
        numeric.append(is_num)
        if is_num:
            if col.isna().any():
                raise DataError(f"column {q!r} has a missing value (row {col.index[col.isna()][0]!r})")
            v = col.to_numpy(dtype=float)
            xs.append(v)
            hs.append(None)
            span.append(float(v.max() - v.min()))
            present.append(None)
            sv.append(np.unique(v))
        else:
            if q not in hierarchies:
                raise ConfigError(f"anonymize: no hierarchy for categorical quasi-identifier {q!r}")
            h = hierarchies[q]
            leaf = h.encode(col)
            pres = np.zeros(len(h.leaves), dtype=bool)
            pres[leaf] = True
            xs.append(leaf)
            hs.append(h)
            span.append(float(pres.sum() - 1))
            present.append(pres)
            sv.append(None)
    prob = _Problem(qis, numeric, xs, hs, span, present, sv, model, None, 0, None, None, None)
    for i, h in enumerate(hs):
        if h is None:
            prob.row_codes.append(None)
            prob.under.append(None)
            continue
        pres = present[i]
        prob.row_codes.append([np.ascontiguousarray(h.codes[xs[i], L]) for L in range(h.height + 1)])
        prob.under.append([h.leaves_under(L, pres) for L in range(h.height + 1)])
    if model.needs_sensitive:
        distance = check_sensitive(df, qis, sensitive, model)
        s_hier = hierarchies.get(sensitive) if distance == "hierarchical" else None
        codes, m = sensitive_codes(df[sensitive], distance, s_hier, None)
        distinct = len(np.unique(codes))
        if model.l is not None and model.l > distinct + TOLERANCE:
            raise FedlabError(
                f"anonymize: l={model.l} is impossible: {sensitive!r} has {distinct} distinct values"
            )
        prob.sens, prob.m, prob.distance, prob.s_hierarchy = codes, m, distance, s_hier
        prob.p = np.bincount(codes, minlength=m) / len(codes)
    return prob


def _width(prob: _Problem, i: int, rows: np.ndarray) -> tuple[float, int, int]:
    """Normalized width of QI i on `rows`, with (level, node) of the covering node if categorical."""
    if prob.numeric[i]:
        v = prob.x[i][rows]
        return ((float(v.max() - v.min()) / prob.span[i]) if prob.span[i] > 0 else 0.0), 0, 0
    levels, under = prob.row_codes[i], prob.under[i]
    assert levels is not None and under is not None
    level, node = _lca(levels, rows)
    if prob.span[i] <= 0:
        return 0.0, level, node
    return (float(under[level][node]) - 1) / prob.span[i], level, node


def _label(prob: _Problem, i: int, rows: np.ndarray, level: int, node: int) -> str:
    if prob.numeric[i]:
        v = prob.x[i][rows]
        return _fmt(float(v.min()), float(v.max()))
    h = prob.hierarchies[i]
    assert h is not None
    return str(h.labels[level][node])


def _try_split(
    prob: _Problem, i: int, rows: np.ndarray, level: int
) -> tuple[_Region, list[np.ndarray]] | None:
    """A valid split of `rows` on QI i, or None."""
    if prob.numeric[i]:
        v = prob.x[i][rows]
        med = float(np.median(v))
        inclusive = True
        left = v <= med
        if left.all():
            left, inclusive = v < med, False
        if not left.any() or left.all():
            return None
        group = (~left).astype(np.int64)
        if not prob.ok(rows, group, 2):
            return None
        return _Region((), split=i, threshold=med, inclusive=inclusive), [rows[left], rows[~left]]
    h = prob.hierarchies[i]
    assert h is not None
    if level == 0:
        return None
    levels = prob.row_codes[i]
    assert levels is not None
    child = levels[level - 1][rows]
    uniq, group = np.unique(child, return_inverse=True)
    if len(uniq) < 2:
        return None
    if not prob.ok(rows, group.astype(np.int64), len(uniq)):
        return None
    order = np.argsort(group, kind="stable")
    parts = np.split(rows[order], np.cumsum(np.bincount(group))[:-1])
    region = _Region((), split=i, level=level - 1)
    return region, [*parts, uniq]  # last item carries the child codes


def _partition(prob: _Problem, n: int) -> tuple[_Region, np.ndarray, list[np.ndarray], float]:
    """Split tree, class id per row, published labels per QI, and the total NCP."""
    q = len(prob.qis)
    class_of = np.zeros(n, dtype=np.int64)
    labels_of: list[np.ndarray] = [np.empty(n, dtype=object) for _ in range(q)]
    root_rows = np.arange(n)
    stack: list[tuple[np.ndarray, _Region | None, int]] = [(root_rows, None, -1)]
    root: _Region | None = None
    n_classes = 0
    ncp_total = 0.0
    while stack:
        rows, parent, key = stack.pop()
        widths = [_width(prob, i, rows) for i in range(q)]
        region = _Region(tuple(_label(prob, i, rows, w[1], w[2]) for i, w in enumerate(widths)))
        if parent is None:
            root = region
        else:
            parent.children[key] = region
        done = False
        # no split can leave k rows on each side of a partition smaller than 2k
        candidates = sorted(range(q), key=lambda j: -widths[j][0]) if len(rows) >= 2 * prob.model.k else []
        for i in candidates:
            if widths[i][0] <= 0:
                break
            found = _try_split(prob, i, rows, widths[i][1])
            if found is None:
                continue
            split, parts = found
            region.split, region.threshold, region.inclusive, region.level = (
                split.split,
                split.threshold,
                split.inclusive,
                split.level,
            )
            if prob.numeric[i]:
                stack.extend([(parts[1], region, 1), (parts[0], region, 0)])
            else:
                codes = parts[-1]
                stack.extend((part, region, int(c)) for part, c in zip(parts[:-1], codes, strict=True))
            done = True
            break
        if not done:
            class_of[rows] = n_classes
            n_classes += 1
            for i in range(q):
                labels_of[i][rows] = region.labels[i]
                ncp_total += _cell_ncp(prob, i, rows, widths[i][0]) * len(rows)
    assert root is not None
    return root, class_of, labels_of, ncp_total


def _route(prob: _Problem, root: _Region, other: pd.DataFrame) -> list[np.ndarray]:
    """Labels for new rows by walking the split tree (see module docstring)."""
    q = len(prob.qis)
    vals = []
    for i, col in enumerate(prob.qis):
        if prob.numeric[i]:
            s = other[col]
            if s.isna().any():
                raise DataError(f"column {col!r} has a missing value (row {s.index[s.isna()][0]!r})")
            vals.append(pd.to_numeric(s).to_numpy(dtype=float))
        else:
            h = prob.hierarchies[i]
            assert h is not None
            vals.append(h.encode(other[col]))
    out = [np.empty(len(other), dtype=object) for _ in range(q)]
    stack = [(root, np.arange(len(other)))]
    while stack:
        region, rows = stack.pop()
        if rows.size == 0:
            continue
        if region.split is None:
            for i in range(q):
                out[i][rows] = region.labels[i]
            continue
        i = region.split
        if prob.numeric[i]:
            v = vals[i][rows]
            left = v <= region.threshold if region.inclusive else v < region.threshold
            stack.append((region.children[0], rows[left]))
            stack.append((region.children[1], rows[~left]))
        else:
            h = prob.hierarchies[i]
            assert h is not None
            child = h.codes[vals[i][rows], region.level]
            known = np.isin(child, list(region.children))
            for c in np.unique(child[known]):
                stack.append((region.children[int(c)], rows[child == c]))
            for j in range(q):
                out[j][rows[~known]] = region.labels[j]
    return out


def _cell_ncp(prob: _Problem, i: int, rows: np.ndarray, width: float) -> float:
    """NCP of one class's cell in QI i: distinct input values covered, as for full-domain nodes."""
    if not prob.numeric[i]:
        return width  # categorical width is already (leaves under the node - 1) / (leaves - 1)
    sv = prob.sorted_values[i]
    assert sv is not None
    if len(sv) <= 1:
        return 0.0
    v = prob.x[i][rows]
    covered = np.searchsorted(sv, v.max(), side="right") - np.searchsorted(sv, v.min(), side="left")
    return float(covered - 1) / (len(sv) - 1)


def mondrian(
    df: pd.DataFrame,
    qis: list[str],
    hierarchies: Mapping[str, Hierarchy],
    model: PrivacyModel,
    sensitive: str | None,
    t0: float,
) -> AnonymizationResult:
    """Run Mondrian and package an AnonymizationResult (called by `anonymize`)."""
    prob = _build(df, qis, hierarchies, model, sensitive)
    n = len(df)
    if not prob.ok(np.arange(n), np.zeros(n, dtype=np.int64), 1):
        raise FedlabError(
            f"anonymize: the model ({model.describe()}) is not satisfied even by the whole table"
        )
    root, class_of, labels_of, ncp = _partition(prob, n)
    table = df.copy()
    for i, col in enumerate(qis):
        table[col] = pd.Series(labels_of[i], index=df.index, dtype=object)
    codes = [pd.factorize(lab)[0] for lab in labels_of]
    ids = combine_codes(codes, [int(c.max()) + 1 for c in codes])
    sizes = np.bincount(ids)
    n_classes = int(class_of.max()) + 1
    metrics = summarize(
        n=n,
        n_qis=len(qis),
        retained_ncp=ncp,
        class_sizes=sizes,
        suppressed=0,
        k=model.k,
        height=float("nan"),
        seconds=time.perf_counter() - t0,
        nodes_checked=n_classes,
    )

    def recode(other: pd.DataFrame) -> pd.DataFrame:
        out = other.copy()
        for i, lab in enumerate(_route(prob, root, other)):
            out[qis[i]] = pd.Series(lab, index=other.index, dtype=object)
        return out

    return AnonymizationResult(
        table=table,
        suppressed=df.index[:0],
        levels=None,
        metrics=metrics,
        model=model,
        algorithm="mondrian",
        qis=list(qis),
        _recode=recode,
    )
