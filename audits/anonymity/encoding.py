"""The table encoded for full-domain generalization, and the check of one lattice node.

The table is encoded once: each QI becomes leaf codes, identical rows collapse into weighted
tuples, and every (QI, level) gets a precomputed code and NCP array. Checking a node is then a
few gathers, one hash-factorize and some bincounts. Both searches (audits.anonymity.lattice,
audits.anonymity.greedy) walk the lattice of per-QI levels through `Encoded.evaluate`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from audits.anonymity.hierarchy import Hierarchy
from audits.anonymity.loss import hierarchy_ncp
from audits.anonymity.privacy_model import TOLERANCE, PrivacyModel, check_sensitive
from audits.anonymity.verify import TDistance, combine_codes, sensitive_codes
from fedlab.core.errors import ConfigError, DataError, FedlabError


@dataclass
class NodeEval:
    """Outcome of checking one level vector."""

    levels: tuple[int, ...]
    monotone_ok: bool
    ok: bool
    suppressed: int
    loss: float
    penalty: float = 0.0  # loss added by rows the monotone part suppresses (bounds predecessors)
    bad_tuples: np.ndarray | None = None
    class_ids: np.ndarray | None = None
    class_sizes: np.ndarray | None = None


@dataclass
class ClassTable:
    """Equivalence classes of one node: node code per QI, size and sensitive counts per class."""

    codes: np.ndarray  # (q, G): node code of each class, one contiguous row per QI
    sizes: np.ndarray  # (G,)
    counts: np.ndarray | None  # (G, m) sensitive value counts, if the model needs them


def _first_occurrence(ids: np.ndarray) -> np.ndarray:
    """Positions where each id first appears; ids come from factorize, i.e. in order of appearance."""
    if len(ids) == 0:
        return ids
    run_max = np.maximum.accumulate(ids)
    return np.flatnonzero(np.r_[True, ids[1:] > run_max[:-1]])


def l_values_dense(counts: np.ndarray, kind: str, c: float | None) -> np.ndarray:
    """l of each class from its (G, m) sensitive counts (definitions as in `verify`)."""
    if kind == "distinct":
        return (counts > 0).sum(axis=1).astype(float)
    sizes = counts.sum(axis=1, keepdims=True)
    if kind == "entropy":
        with np.errstate(divide="ignore", invalid="ignore"):
            p = counts / sizes
            ent = -np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0).sum(axis=1)
        return np.exp(ent)
    r = -np.sort(-counts, axis=1)
    tail = np.cumsum(r[:, ::-1], axis=1)[:, ::-1]  # tail[:, j] = r_{j+1} + ... + r_m
    assert c is not None
    return ((r[:, :1] < c * tail) & (r > 0)).sum(axis=1).astype(float)


def emd_dense(
    counts: np.ndarray, p: np.ndarray, distance: TDistance, hierarchy: Hierarchy | None
) -> np.ndarray:
    """EMD of each class's distribution (rows of `counts`) to `p` (definitions as in `verify`)."""
    q = counts / counts.sum(axis=1, keepdims=True)
    r = q - p[None, :]
    if distance == "equal":
        return 0.5 * np.abs(r).sum(axis=1)
    if distance == "ordered":
        m = counts.shape[1]
        return np.abs(np.cumsum(r, axis=1)).sum(axis=1) / (m - 1) if m > 1 else np.zeros(len(counts))
    assert hierarchy is not None
    return hierarchy.emd(r)


@dataclass
class Encoded:
    """The input table reduced to weighted distinct tuples of leaf codes (plus sensitive code)."""

    qis: list[str]
    hierarchies: list[Hierarchy]
    model: PrivacyModel
    n: int
    limit: int  # rows that may be suppressed
    tleaf: np.ndarray  # (T, q)
    tsens: np.ndarray | None  # (T,)
    m: int
    distance: TDistance | None
    s_hierarchy: Hierarchy | None
    weights: np.ndarray  # (T,) rows per tuple
    row_tuple: np.ndarray  # (n,) tuple of every row
    heights: np.ndarray
    level_codes: list[list[np.ndarray]] = field(default_factory=list)  # [qi][level] -> (T,) node code
    level_sizes: list[list[int]] = field(default_factory=list)
    level_ncp: list[list[np.ndarray]] = field(default_factory=list)  # [qi][level] -> (T,) NCP
    node_ncp: list[list[np.ndarray]] = field(default_factory=list)  # [qi][level] -> (nodes,) NCP
    mean_ncp: list[np.ndarray] = field(default_factory=list)  # [qi] -> (levels,) mean NCP over rows
    checked: int = 0
    cache: dict[tuple[int, ...], ClassTable] = field(default_factory=dict)
    cache_cells: int = 0
    cache_limit: int = 30_000_000  # class-table cells kept for roll-up
    up: list[list[list[np.ndarray]]] = field(default_factory=list)  # [qi][from][to] node-code maps
    _cache_levels: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), dtype=np.int16))
    _cache_sizes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def _from_tuples(self, lv: tuple[int, ...]) -> tuple[ClassTable, np.ndarray]:
        cols = [self.level_codes[i][L] for i, L in enumerate(lv)]
        ids = combine_codes(cols, [self.level_sizes[i][L] for i, L in enumerate(lv)])
        g = int(ids.max()) + 1
        first = _first_occurrence(ids)
        codes = np.stack([c[first] for c in cols])
        sizes = np.bincount(ids, weights=self.weights, minlength=g)
        counts = None
        if self.tsens is not None:
            counts = np.bincount(
                ids * self.m + self.tsens, weights=self.weights, minlength=g * self.m
            ).reshape(g, self.m)
        return ClassTable(codes, sizes, counts), ids

    def _rollup(self, lv: tuple[int, ...]) -> ClassTable | None:
        """Classes of `lv` merged from the smallest cached class table of a predecessor node."""
        if not self.cache or not all(h.nested for h in self.hierarchies):
            return None  # non-nesting levels: a coarser class is not a union of finer ones
        keys = self._cache_levels[: len(self.cache)]
        below = np.flatnonzero(np.all(keys <= np.asarray(lv), axis=1))
        if below.size == 0:
            return None
        src = int(below[np.argmin(self._cache_sizes[below])])
        prev = self.cache[tuple(int(x) for x in keys[src])]
        cols = []
        for i, L in enumerate(lv):
            a = int(keys[src, i])
            cols.append(prev.codes[i] if a == L else self.up[i][a][L][prev.codes[i]])
        ids = combine_codes(cols, [self.level_sizes[j][L] for j, L in enumerate(lv)])
        g = int(ids.max()) + 1
        if g == len(prev.sizes):
            return ClassTable(np.stack(cols), prev.sizes, prev.counts)
        first = _first_occurrence(ids)
        sizes = np.bincount(ids, weights=prev.sizes, minlength=g)
        counts = None
        if prev.counts is not None:
            counts = np.stack(
                [np.bincount(ids, weights=prev.counts[:, v], minlength=g) for v in range(self.m)], axis=1
            )
        return ClassTable(np.stack([c[first] for c in cols]), sizes, counts)

    def classes(self, lv: tuple[int, ...]) -> ClassTable:
        table = self._rollup(lv)
        if table is None:
            table, _ = self._from_tuples(lv)
        cells = table.codes.size + (0 if table.counts is None else table.counts.size)
        if self.cache_cells + cells <= self.cache_limit and lv not in self.cache:
            pos = len(self.cache)
            if pos >= len(self._cache_levels):
                grow = max(64, pos)
                self._cache_levels = np.vstack(
                    [self._cache_levels, np.zeros((grow, len(lv)), dtype=np.int16)]
                )
                self._cache_sizes = np.r_[self._cache_sizes, np.zeros(grow, dtype=np.int64)]
            self._cache_levels[pos] = lv
            self._cache_sizes[pos] = len(table.sizes)
            self.cache[lv] = table
            self.cache_cells += cells
        return table

    def judge(self, table: ClassTable) -> tuple[bool, np.ndarray, np.ndarray]:
        """(monotone part holds, its bad-class mask, full bad-class mask), suppression included."""
        model = self.model
        sizes, counts = table.sizes, table.counts
        bad = sizes < model.k
        if model.monotone_l:
            assert counts is not None and model.l is not None
            bad |= l_values_dense(counts, "distinct", None) < model.l - TOLERANCE
        monotone_ok = sizes[bad].sum() <= self.limit
        bad_m = bad
        if not monotone_ok:
            return False, bad_m, bad
        if model.l is not None and not model.monotone_l:
            assert counts is not None
            bad |= l_values_dense(counts, model.l_kind, model.c) < model.l - TOLERANCE
        if model.t is not None:
            bad = self._t_fixed_point(table, bad)
        return True, bad_m, bad

    def _t_fixed_point(self, table: ClassTable, bad: np.ndarray) -> np.ndarray:
        """Suppress classes too far from the distribution of the rows that remain, until stable.

        verify.t_closeness on the output compares against the published rows, so the reference
        distribution must be recomputed after each round of suppression.
        """
        assert table.counts is not None and self.model.t is not None and self.distance is not None
        t = self.model.t + TOLERANCE
        while True:
            keep = ~bad
            if not keep.any() or table.sizes[bad].sum() > self.limit:
                return bad
            counts = table.counts[keep]
            total = counts.sum(axis=0)
            if self.distance == "ordered":  # verify ranks only the values still present
                counts = counts[:, total > 0]
                total = total[total > 0]
            emd = emd_dense(counts, total / total.sum(), self.distance, self.s_hierarchy)
            newly = np.flatnonzero(keep)[emd > t]
            if newly.size == 0:
                return bad
            bad = bad.copy()
            bad[newly] = True

    def evaluate(self, levels: Sequence[int], detail: bool = False) -> NodeEval:
        """Check the model at `levels`, suppressing violating classes within the limit."""
        self.checked += 1
        lv = tuple(int(x) for x in levels)
        if detail:
            table, ids = self._from_tuples(lv)
        else:
            table, ids = self.classes(lv), None
        monotone_ok, bad_m, bad = self.judge(table)
        supp = round(float(table.sizes[bad].sum()))
        ok = monotone_ok and supp <= self.limit and supp < self.n
        loss, penalty = np.inf, 0.0
        if monotone_ok or detail:
            q = len(lv)
            class_ncp = sum(self.node_ncp[i][L][table.codes[i]] for i, L in enumerate(lv))
            loss = float(((class_ncp * table.sizes)[~bad].sum() + supp * q) / (self.n * q))
            penalty = float(((q - class_ncp) * table.sizes)[bad_m].sum() / (self.n * q))
        ev = NodeEval(lv, monotone_ok, ok, supp, loss if ok or detail else np.inf, penalty=penalty)
        if detail:
            assert ids is not None
            ev.bad_tuples, ev.class_ids, ev.class_sizes = bad[ids], ids, np.where(bad, 0, table.sizes)
        return ev

    def lower_bound(self, levels: Sequence[int]) -> float:
        """Loss ignoring suppression: additive over QIs and monotone in every level."""
        return float(sum(self.mean_ncp[i][L] for i, L in enumerate(levels)) / len(levels))


def encode(
    df: pd.DataFrame,
    qis: Sequence[str],
    hierarchies: Mapping[str, Hierarchy],
    model: PrivacyModel,
    sensitive: str | None,
    suppression_limit: float,
) -> Encoded:
    """Validate the inputs and build the encoded problem (raises one-line FedlabErrors)."""
    qis = list(qis)
    if not qis:
        raise ConfigError("anonymize: give at least one quasi-identifier")
    if len(set(qis)) != len(qis):
        raise ConfigError(f"anonymize: quasi-identifiers listed twice in {qis}")
    for col in [*qis, *([sensitive] if sensitive else [])]:
        if col not in df.columns:
            raise DataError(f"anonymize: column {col!r} not in the table")
    if df.empty:
        raise DataError("anonymize: the table is empty")
    if not 0.0 <= suppression_limit <= 1.0:
        raise ConfigError(f"anonymize: suppression_limit must be in [0, 1] (got {suppression_limit!r})")
    for q in qis:
        if q not in hierarchies:
            raise ConfigError(f"anonymize: no hierarchy for quasi-identifier {q!r}")
    n = len(df)
    if model.k > n:
        raise FedlabError(f"anonymize: k={model.k} is larger than the table ({n} rows)")
    hs = [hierarchies[q] for q in qis]
    leaf = np.column_stack([h.encode(df[q]) for h, q in zip(hs, qis, strict=True)])
    m, distance, s_hier = 0, None, None
    if model.needs_sensitive:
        distance = check_sensitive(df, qis, sensitive, model)
        if model.t is None and model.t_distance is None:
            distance = None  # l-diversity only: sensitive values are compared for equality
        s_hier = hierarchies.get(sensitive) if distance == "hierarchical" else None
        scodes, m = sensitive_codes(df[sensitive], distance or "equal", s_hier, None)
        leaf = np.column_stack([leaf, scodes])
    # collapse identical rows into weighted tuples
    ids = combine_codes(
        [leaf[:, j] for j in range(leaf.shape[1])], [int(leaf[:, j].max()) + 1 for j in range(leaf.shape[1])]
    )
    t_count = int(ids.max()) + 1
    first = np.full(t_count, n, dtype=np.int64)
    np.minimum.at(first, ids, np.arange(n))
    tuples = leaf[first]
    enc = Encoded(
        qis=qis,
        hierarchies=hs,
        model=model,
        n=n,
        limit=int(np.floor(suppression_limit * n + 1e-9)),
        tleaf=tuples[:, : len(qis)],
        tsens=tuples[:, len(qis)] if model.needs_sensitive else None,
        m=m,
        distance=distance,
        s_hierarchy=s_hier,
        weights=np.bincount(ids, minlength=t_count).astype(float),
        row_tuple=ids,
        heights=np.array([h.height for h in hs]),
    )
    for i, h in enumerate(hs):
        ncp_levels = hierarchy_ncp(h, leaf[:, i])
        tl = enc.tleaf[:, i]
        enc.level_codes.append([np.ascontiguousarray(h.codes[tl, L]) for L in range(h.height + 1)])
        enc.level_sizes.append([len(h.labels[L]) for L in range(h.height + 1)])
        enc.level_ncp.append([nc[tl] for nc in ncp_levels])
        node_ncp = []
        for L, nc in enumerate(ncp_levels):
            per_node = np.zeros(len(h.labels[L]))
            per_node[h.codes[:, L]] = nc
            node_ncp.append(per_node)
        enc.node_ncp.append(node_ncp)
        up: list[list[np.ndarray]] = []
        for a in range(h.height + 1):
            maps = [np.zeros(0, dtype=np.int64)] * (h.height + 1)
            cur = np.arange(len(h.labels[a]))
            maps[a] = cur
            for b in range(a + 1, h.height + 1):
                cur = h.parents[b - 1][cur]
                maps[b] = cur
            up.append(maps)
        enc.up.append(up)
        enc.mean_ncp.append(np.array([float(nc[leaf[:, i]].mean()) for nc in ncp_levels]))
    enc._cache_levels = np.zeros((0, len(qis)), dtype=np.int16)
    _check_feasible(enc)
    return enc


def _check_feasible(enc: Encoded) -> None:
    """Fail up front when even full generalization cannot satisfy the model."""
    model = enc.model
    if model.l is not None and enc.tsens is not None:
        distinct = int((np.bincount(enc.tsens, weights=enc.weights, minlength=enc.m) > 0).sum())
        if model.l > distinct + TOLERANCE:
            raise FedlabError(
                f"anonymize: l={model.l} is impossible: the sensitive column has {distinct} distinct values"
            )
    top = enc.evaluate(enc.heights)
    if not top.ok:
        raise FedlabError(
            f"anonymize: the model ({model.describe()}) is not reachable even with every QI fully generalized"
        )
