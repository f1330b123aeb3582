"""Preprocessing statistics from per-client aggregates: the server never sees a raw row.

Why: a federation's shared preprocessing (the tabular scaler and category vocabulary, the
``features`` transforms, the anonymized clients' encoder) used to be fitted on the concatenated
rows of the source clients — the one place raw rows left their owner. Here each client computes
aggregates of its OWN rows (`client_stats`: row count, per numeric column the count, sum, sum of
squares, min and max; per categorical column the count of each value; per feature the number of
non-zero rows) and the server only adds them up (`combine`) and derives the statistics (`mean`,
`std`, `vocabulary`, `nonzero`).

Exact where the pooled fit is exact: sums are kept as exact rationals (every float64 is one), so
the combined sums equal the sums over the pooled rows whatever the split into clients, and each
statistic is rounded to float64 once (correctly rounded). The fitted preprocessing is therefore
identical for any partition of the same rows, and equal to a pooled fit's (tests compare model
bytes).

Optional ε-DP (``[federation.preprocess_dp] epsilon``): each client adds Laplace noise to its
own aggregates before sending them (`add_laplace`), so the released aggregates are ε-DP per
client (row-level neighbours). Values are clipped to ±``clip`` (a public bound); the budget is
split evenly over the released quantities: per numeric column count, sum and sum of squares
(sensitivities 1, clip, clip²), per categorical column its histogram (sensitivity 1, a row adds
to one value), and the row count. The category names themselves are treated as public schema
metadata (like the generalization hierarchies).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import pandas as pd


def exact_sum(values: np.ndarray, power: int = 1) -> Fraction:
    """Σ values**power as an exact rational (integral values use exact integer arithmetic)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        return Fraction(0)
    if np.all(np.isfinite(v)) and np.all(v == np.round(v)) and np.abs(v).max() < 2**31:
        ints = v.astype(np.int64)
        if power == 1:
            return Fraction(int(ints.sum(dtype=object)))
        return Fraction(int((ints.astype(object) ** power).sum()))
    return sum((Fraction(x) ** power for x in v.tolist()), Fraction(0))


@dataclass
class NumericStats:
    """Count, exact sum and sum of squares, min and max of one numeric column."""

    count: Fraction = Fraction(0)
    total: Fraction = Fraction(0)
    squares: Fraction = Fraction(0)
    low: float = math.inf
    high: float = -math.inf

    def add(self, other: NumericStats) -> NumericStats:
        """The aggregate of both (what the server computes)."""
        return NumericStats(
            self.count + other.count,
            self.total + other.total,
            self.squares + other.squares,
            min(self.low, other.low),
            max(self.high, other.high),
        )

    def mean(self) -> float:
        """Mean, correctly rounded (0 without rows)."""
        return float(self.total / self.count) if self.count > 0 else 0.0

    def variance(self, ddof: int = 0) -> float:
        """Variance with `ddof` (exact, then rounded once); never negative (noise can make it so)."""
        if self.count - ddof <= 0:
            return 0.0
        var = (self.squares - self.total * self.total / self.count) / (self.count - ddof)
        return max(float(var), 0.0)


@dataclass
class ClientStats:
    """One client's aggregates (or the server's sum of them)."""

    rows: Fraction = Fraction(0)
    numeric: dict[str, NumericStats] = field(default_factory=dict)
    categories: dict[str, Counter] = field(default_factory=dict)
    epsilon: float | None = None  # the ε of the Laplace noise these aggregates carry (None = exact)

    def add(self, other: ClientStats) -> ClientStats:
        """The combined aggregate (column-wise sums; ε is the largest any client spent)."""
        numeric = dict(self.numeric)
        for col, s in other.numeric.items():
            numeric[col] = numeric[col].add(s) if col in numeric else s
        cats = {c: Counter(v) for c, v in self.categories.items()}
        for col, counts in other.categories.items():
            cats.setdefault(col, Counter()).update(counts)
        eps = [e for e in (self.epsilon, other.epsilon) if e is not None]
        return ClientStats(self.rows + other.rows, numeric, cats, max(eps) if eps else None)

    def mean(self, col: str) -> float:
        """Mean of a numeric column."""
        return self.numeric[col].mean()

    def std(self, col: str, ddof: int = 0) -> float:
        """Standard deviation of a numeric column (sqrt of the correctly rounded variance)."""
        return math.sqrt(self.numeric[col].variance(ddof))

    def vocabulary(self, col: str) -> list[str]:
        """Sorted values of a categorical column seen with a positive (noisy) count."""
        return sorted(v for v, n in self.categories.get(col, {}).items() if n > 0)


def client_stats(frame: pd.DataFrame, numeric: Sequence[str], categorical: Sequence[str]) -> ClientStats:
    """Aggregates of ONE client's rows (a DataFrame, or a 2-D array with integer column names)."""
    out = ClientStats(rows=Fraction(len(frame)))
    for col in numeric:
        v = np.asarray(frame[col], dtype=np.float64)
        out.numeric[col] = NumericStats(
            Fraction(len(v)),
            exact_sum(v),
            exact_sum(v, 2),
            float(v.min()) if len(v) else math.inf,
            float(v.max()) if len(v) else -math.inf,
        )
    for col in categorical:
        out.categories[col] = Counter(pd.Series(frame[col]).astype(str).tolist())
    return out


def array_stats(x: np.ndarray) -> ClientStats:
    """Aggregates of one client's feature matrix (N, D): per feature count, sums, non-zero rows.

    The non-zero count of feature j is stored as category ``"nonzero"`` of column ``j``."""
    x = np.asarray(x, dtype=np.float64)
    cols = range(x.shape[1])
    frame = pd.DataFrame(x)
    out = client_stats(frame, list(cols), [])
    nonzero = (x != 0).sum(axis=0)
    out.categories = {j: Counter({"nonzero": int(nonzero[j])}) for j in cols}
    return out


def combine(stats: Iterable[ClientStats]) -> ClientStats:
    """The server's combination: column-wise sums of the clients' aggregates."""
    total = ClientStats()
    for s in stats:
        total = total.add(s)
    return total


def add_laplace(stats: ClientStats, epsilon: float, clip: float, rng: np.random.Generator) -> ClientStats:
    """`stats` made ε-DP by the client before release (module docstring: budget split, clipping)."""
    parts = 1 + 3 * len(stats.numeric) + len(stats.categories)
    eps = epsilon / parts

    def noise(sensitivity: float) -> Fraction:
        return Fraction(float(rng.laplace(0.0, sensitivity / eps)))

    numeric = {}
    for col, s in stats.numeric.items():
        low, high = max(s.low, -clip), min(s.high, clip)
        numeric[col] = NumericStats(
            max(s.count + noise(1.0), Fraction(1)),
            s.total + noise(clip),
            max(s.squares + noise(clip * clip), Fraction(0)),
            low,
            high,
        )
    cats = {
        col: Counter({v: float(n + noise(1.0)) for v, n in c.items()}) for col, c in stats.categories.items()
    }
    return ClientStats(max(stats.rows + noise(1.0), Fraction(1)), numeric, cats, epsilon)


def clip_frame(frame: pd.DataFrame, numeric: Sequence[str], clip: float) -> pd.DataFrame:
    """Numeric columns clipped to ±clip (what a DP client aggregates)."""
    out = frame.copy()
    for col in numeric:
        out[col] = np.clip(np.asarray(out[col], dtype=np.float64), -clip, clip)
    return out
