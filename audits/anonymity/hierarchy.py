"""Generalization hierarchies (value -> coarser value, level by level, up to "*").

A hierarchy is stored as integer codes: for every raw value (leaf) the code of its ancestor at each
level, plus the label of every node. All recoding is then a NumPy gather, which keeps full-domain
search and verification fast on tables with tens of thousands of rows.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from fedlab.core.errors import DataError

TOP = "*"


def value_key(value: object) -> str:
    """Canonical string of a raw value, so 17, 17.0 and "17" all match the CSV leaf "17"."""
    if isinstance(value, bool | np.bool_):
        return str(value)
    if isinstance(value, float | np.floating):
        if math.isfinite(value) and float(value).is_integer():
            return str(int(value))
        return repr(float(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    return str(value).strip()


def _format_bound(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


class Hierarchy:
    """One QI's hierarchy: level 0 = raw value, level `height` = "*" (single root)."""

    def __init__(
        self, column: str, rows: Sequence[Sequence[str]], source: str = "", nested: bool = True
    ) -> None:
        where = f"{source}: " if source else ""
        if not rows:
            raise DataError(f"{where}hierarchy for column {column!r} is empty")
        width = len(rows[0])
        table = np.array([[str(c).strip() for c in r] for r in rows], dtype=object)
        if table.ndim != 2 or any(len(r) != width for r in rows):
            raise DataError(f"{where}hierarchy for column {column!r}: rows have different numbers of levels")
        if (table == "").any():
            r = int(np.argwhere(table == "")[0][0])
            raise DataError(f"{where}hierarchy for column {column!r}: empty cell in row {r + 1}")
        if len(set(table[:, -1])) != 1:
            table = np.column_stack([table, np.full(len(table), TOP, dtype=object)])
        leaves = pd.Index(table[:, 0])
        if leaves.has_duplicates:
            dup = leaves[leaves.duplicated()][0]
            raise DataError(f"{where}hierarchy for column {column!r}: value {dup!r} listed twice")
        self.column = column
        self.leaves = leaves
        self.height = table.shape[1] - 1
        self.labels: list[np.ndarray] = []
        codes = np.empty(table.shape, dtype=np.int64)
        for j in range(table.shape[1]):
            c, uniq = pd.factorize(table[:, j])
            codes[:, j] = c
            self.labels.append(np.asarray(uniq, dtype=object))
        self.codes = codes  # (n_leaves, height + 1): ancestor code of each leaf at each level
        self.parents: list[np.ndarray] = []  # parents[j][node at level j] -> node at level j + 1
        for j in range(self.height):
            parent = np.full(len(self.labels[j]), -1, dtype=np.int64)
            parent[codes[:, j]] = codes[:, j + 1]
            check = parent[codes[:, j]] != codes[:, j + 1]
            if check.any() and nested:
                bad = self.labels[j][codes[int(np.argmax(check)), j]]
                raise DataError(
                    f"{where}hierarchy for column {column!r}: node {bad!r} at level {j} has two parents"
                )
            self.parents.append(parent)
        # False for paper-style interval levels that do not nest: every level is then applied to the
        # raw value (full-domain recoding needs no tree), and roll-ups / Mondrian must not be used
        self.nested = nested or not any(
            (p[self.codes[:, j]] != self.codes[:, j + 1]).any() for j, p in enumerate(self.parents)
        )
        self._lookup = pd.Series(np.arange(len(leaves)), index=leaves)

    def __repr__(self) -> str:
        return f"Hierarchy({self.column!r}, leaves={len(self.leaves)}, height={self.height})"

    @classmethod
    def from_csv(cls, path: str | Path, column: str) -> Hierarchy:
        """ARX-style CSV: one row per raw value, one column per level; `;` or `,` separated."""
        p = Path(path)
        if not p.is_file():
            raise DataError(f"hierarchy file {p} for column {column!r} not found")
        first = p.read_text(encoding="utf-8").split("\n", 1)[0]
        sep = ";" if ";" in first else ","
        try:
            frame = pd.read_csv(p, sep=sep, header=None, dtype=str, keep_default_na=False, quotechar='"')
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise DataError(f"{p}: cannot read hierarchy for column {column!r}: {exc}") from exc
        return cls(column, frame.to_numpy().tolist(), source=str(p))

    @classmethod
    def from_widths(
        cls, column: str, values: Iterable[float], widths: Sequence[int] = (5, 10, 20, 40)
    ) -> Hierarchy:
        """Intervals `[a, b[` of growing width for a numeric QI; widths must nest (each divides the next)."""
        try:
            arr = np.unique(np.asarray(pd.Series(list(values)).dropna(), dtype=float))
        except (TypeError, ValueError) as exc:
            raise DataError(f"column {column!r}: interval hierarchy needs numeric values ({exc})") from exc
        if arr.size == 0:
            raise DataError(f"column {column!r}: no values to build an interval hierarchy from")
        if any(b % a for a, b in itertools.pairwise(widths)):
            raise DataError(f"column {column!r}: hierarchy widths {list(widths)} must each divide the next")
        cols = [[value_key(v) for v in arr]]
        for w in widths:
            lo = np.floor(arr / w) * w
            cols.append([f"[{_format_bound(a)}, {_format_bound(a + w)}[" for a in lo])
        cols.append([TOP] * arr.size)
        return cls(column, [list(r) for r in zip(*cols, strict=True)], source="generated")

    @classmethod
    def from_intervals(
        cls,
        column: str,
        leaves: Iterable[float],
        steps: Sequence[int],
        low: float = 0,
        high: float = 100,
    ) -> Hierarchy:
        """Levels ``[a, a+step)`` on the grid low, low+step, ... for each step (the audit paper's
        ``generate_intervals``): the levels need not nest. A value below `low` gets the paper's
        wrapped label ``[last, low)``; the grid grows past `high` to cover every leaf."""
        vals = list(dict.fromkeys(leaves))
        if not vals:
            raise DataError(f"column {column!r}: no values to build an interval hierarchy from")
        cols = [[value_key(v) for v in vals]]
        top = max(float(high), max(float(v) for v in vals))
        for step in steps:
            grid = np.arange(low, high + step, step)
            while grid[-1] <= top:
                grid = np.append(grid, grid[-1] + step)
            idx = np.searchsorted(grid, np.asarray(vals, dtype=float), side="right") - 1
            cols.append([f"[{_format_bound(grid[i])}, {_format_bound(grid[i + 1])})" for i in idx])
        cols.append([TOP] * len(vals))
        return cls(column, [list(r) for r in zip(*cols, strict=True)], source="intervals", nested=False)

    def chained(self) -> Hierarchy:
        """The hierarchy as ANJANA applies it, one level at a time: a value at level j-1 becomes the
        level-j label of the *first* row whose level-(j-1) label it is. For nesting hierarchies
        this changes nothing; for non-nesting interval levels every leaf of a node follows the
        node's first leaf (the result always nests)."""
        rows = np.empty((len(self.leaves), self.height + 1), dtype=object)
        first_row = [pd.Series(lab[self.codes[:, j]]).drop_duplicates() for j, lab in enumerate(self.labels)]
        rows[:, 0] = self.labels[0][self.codes[:, 0]]
        for j in range(1, self.height + 1):
            pos = pd.Series(first_row[j - 1].index, index=first_row[j - 1].to_numpy())
            rows[:, j] = self.labels[j][self.codes[pos[rows[:, j - 1]].to_numpy(), j]]
        return Hierarchy(self.column, rows.tolist(), source="chained", nested=True)

    def encode(self, series: pd.Series) -> np.ndarray:
        """Leaf index of every value; unknown or missing values raise a one-line DataError."""
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        if (codes < 0).any():
            raise DataError(
                f"column {self.column!r} has a missing value (row {series.index[codes < 0][0]!r})"
            )
        keys = [value_key(u) for u in uniques]
        lut = self._lookup.reindex(keys)
        if lut.isna().any():
            bad = keys[int(np.flatnonzero(lut.isna().to_numpy())[0])]
            raise DataError(f"column {self.column!r}: value {bad!r} is not in its hierarchy")
        return lut.to_numpy(dtype=np.int64)[codes]

    def generalize(self, series: pd.Series, level: int) -> pd.Series:
        """The series recoded to `level` (0 = raw values as strings), vectorized."""
        if not 0 <= level <= self.height:
            raise DataError(f"column {self.column!r}: level {level} outside 0..{self.height}")
        leaf = self.encode(series)
        out = self.labels[level][self.codes[leaf, level]]
        return pd.Series(out, index=series.index, name=series.name, dtype=object)

    def level_of(self, values: Iterable[str]) -> int | None:
        """Lowest level whose labels contain all `values` (to read back another tool's output)."""
        vals = {str(v) for v in values}
        for j in range(self.height + 1):
            if vals <= set(self.labels[j]):
                return j
        return None

    def leaves_under(self, level: int, present: np.ndarray | None = None) -> np.ndarray:
        """Number of leaves below each node of `level` (only leaves flagged in `present`, if given)."""
        w = None if present is None else present.astype(float)
        return np.bincount(self.codes[:, level], weights=w, minlength=len(self.labels[level]))

    def ground_distance(self, a: object, b: object) -> float:
        """Li et al. 2007 hierarchical ground distance: level of the lowest common ancestor / height."""
        ia, ib = (int(self._lookup[value_key(v)]) for v in (a, b))
        for j in range(self.height + 1):
            if self.codes[ia, j] == self.codes[ib, j]:
                return j / self.height if self.height else 0.0
        return 1.0

    def emd(self, r: np.ndarray) -> np.ndarray:
        """Hierarchical EMD for each row of `r` = q - p over the leaves (Li et al. 2007, Sec. 4.2).

        Extras are pushed up the tree; at each internal node of level j the cost is
        (j / height) * min(positive extra, negative extra) summed over its children.
        """
        r = np.atleast_2d(np.asarray(r, dtype=float))
        if self.height == 0:
            return np.zeros(r.shape[0])
        total = np.zeros(r.shape[0])
        # extras of level-0 nodes: leaves may share a level-0 label only if identical, so use codes
        extra = np.zeros((r.shape[0], len(self.labels[0])))
        np.add.at(extra.T, self.codes[:, 0], r.T)
        for j in range(1, self.height + 1):
            parent = self.parents[j - 1]
            n_nodes = len(self.labels[j])
            onehot = np.zeros((len(parent), n_nodes))
            onehot[np.arange(len(parent)), parent] = 1.0
            pos = np.clip(extra, 0, None) @ onehot
            neg = np.clip(-extra, 0, None) @ onehot
            total += (j / self.height) * np.minimum(pos, neg).sum(axis=1)
            extra = pos - neg
        return total
