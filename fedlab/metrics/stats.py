"""Paired statistics over seeds: what separates a gain from noise.

Every comparison fedlab prints pairs runs that share a seed (same data split, same client
order, same initial weights), so the per-seed difference removes the seed-to-seed variation
the two strategies have in common. Two interval methods, each named wherever it is shown:

* differences (accuracy, Group Effect): **paired t** 95% interval over seeds,
  mean ± t(0.975, n−1) · sd/√n. Exact given normal differences; with 5 seeds t = 2.776.
* ratio of two means (FedKA's Group Effect / FedAvg's): **paired percentile bootstrap** over
  seeds (seed indices resampled with replacement, both strategies together; 10,000 resamples,
  fixed generator seed, so the interval is reproducible). A ratio has no t interval, and a
  resample whose denominator mean is ≤ 0 gives ±∞ (the ratio is unbounded there).

The intervals describe run-to-run (training) variation on a FIXED target test set; they do
not include the sampling error of the test set itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

LEVEL = 0.95
TIE_TOL = 1e-12
N_BOOT = 10_000
BOOT_SEED = 20220322  # fixed: the bootstrap interval of a given table never changes
T_METHOD = "paired t over seeds"
BOOT_METHOD = f"paired percentile bootstrap over seeds ({N_BOOT:,} resamples)"


def t_critical(n: int, level: float = LEVEL) -> float:
    """Two-sided Student t quantile for n observations (n − 1 degrees of freedom)."""
    from scipy.stats import t

    return float(t.ppf(0.5 + level / 2, n - 1))


@dataclass(frozen=True)
class Interval:
    """Mean of per-seed values with a t interval; wins/losses count values > 0 / < 0."""

    n: int
    mean: float
    ci_low: float
    ci_high: float
    wins: int
    losses: int
    ties: int
    values: list[float] = field(default_factory=list)
    method: str = T_METHOD

    @property
    def half_width(self) -> float:
        """Half the interval's width: the '±' a table prints."""
        return (self.ci_high - self.ci_low) / 2

    @property
    def known(self) -> bool:
        """False when the interval cannot be computed (fewer than 2 seeds)."""
        return math.isfinite(self.ci_low) and math.isfinite(self.ci_high)

    @property
    def no_spread(self) -> bool:
        """True when ≥ 2 seeds gave the very same value: the t interval then has zero width, which
        is not precision — it leaves out the noise of the finite test set each seed is scored on
        (e.g. every seed ending at the same constant predictor). Texts say so instead of "CI a to a"."""
        return self.known and self.n >= 2 and self.ci_low == self.ci_high

    def excludes_zero(self) -> bool:
        """Whether the interval excludes 0: the only case a difference may be called a gain or a loss."""
        return self.known and (self.ci_low > 0 or self.ci_high < 0)

    def direction(self) -> int:
        """+1 / −1 when the interval lies above / below 0, else 0 (no detectable difference)."""
        if not self.excludes_zero():
            return 0
        return 1 if self.ci_low > 0 else -1

    def to_dict(self) -> dict:
        """The interval as JSON-ready numbers (NaN when undefined)."""
        return asdict(self)


def t_interval(values: Sequence[float], level: float = LEVEL) -> Interval:
    """Mean and t interval of `values` (NaNs dropped); with < 2 values the interval is NaN."""
    v = np.asarray([x for x in values if x is not None and not math.isnan(float(x))], dtype=float)
    n = len(v)
    if n == 0:
        nan = float("nan")
        return Interval(0, nan, nan, nan, 0, 0, 0, [])
    mean = float(v.mean())
    if n < 2:
        lo = hi = float("nan")
    else:
        half = t_critical(n, level) * float(v.std(ddof=1)) / math.sqrt(n)
        lo, hi = mean - half, mean + half
    wins = int((v > TIE_TOL).sum())
    losses = int((v < -TIE_TOL).sum())
    return Interval(n, mean, lo, hi, wins, losses, n - wins - losses, [float(x) for x in v])


def paired_difference(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Interval:
    """Per-pair differences a[i] − b[i] (pairs with a NaN on either side are dropped)."""
    if len(a) != len(b):
        raise ValueError(f"paired_difference needs equal lengths, got {len(a)} and {len(b)}")
    diffs = [float(x) - float(y) for x, y in zip(a, b, strict=True)]
    return t_interval(diffs, level)


@dataclass(frozen=True)
class Ratio:
    """Ratio of means with a paired bootstrap interval; `defined` is False when the
    denominator's mean is ≤ 0 (a gain from aggregation cannot be multiplied then)."""

    n: int
    ratio: float
    ci_low: float
    ci_high: float
    defined: bool
    method: str = BOOT_METHOD

    def to_dict(self) -> dict:
        """The ratio and its bootstrap interval as JSON-ready numbers ('inf' when unbounded)."""
        return asdict(self)


def _ratio_of_means(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Row-wise mean(num)/mean(den); a denominator ≤ 0 gives ±inf by the numerator's sign."""
    n_mean, d_mean = num.mean(axis=-1), den.mean(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = n_mean / d_mean
    bad = d_mean <= 0
    out = np.where(bad, np.where(n_mean >= 0, np.inf, -np.inf), out)
    return out


def bootstrap_ratio(
    num: Sequence[float],
    den: Sequence[float],
    level: float = LEVEL,
    n_boot: int = N_BOOT,
    seed: int = BOOT_SEED,
) -> Ratio:
    """mean(num)/mean(den) over paired seeds with a percentile bootstrap interval."""
    pairs = [
        (float(x), float(y))
        for x, y in zip(num, den, strict=True)
        if x is not None and y is not None and not (math.isnan(float(x)) or math.isnan(float(y)))
    ]
    n = len(pairs)
    nan = float("nan")
    if n == 0:
        return Ratio(0, nan, nan, nan, False)
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    if b.mean() <= 0:
        return Ratio(n, nan, nan, nan, False)
    ratio = float(a.mean() / b.mean())
    if n < 2:
        return Ratio(n, ratio, nan, nan, True)
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    alpha = 1 - level
    lo_i, hi_i = math.floor(alpha / 2 * n_boot), math.ceil((1 - alpha / 2) * n_boot) - 1
    # Like Fieller's interval: when the denominator's own interval reaches 0, resamples with
    # denominators near 0 send the ratio anywhere, so the interval is unbounded on both sides
    # (a finite bound such as 4e13 would only be an artefact of the resamples drawn).
    if np.sort(b[idx].mean(axis=1))[lo_i] <= 0:
        return Ratio(n, ratio, -math.inf, math.inf, True)
    boots = np.sort(_ratio_of_means(a[idx], b[idx]))
    return Ratio(n, ratio, float(boots[lo_i]), float(boots[hi_i]), True)


def format_ratio(r: Ratio) -> str:
    """ "2.10× [1.30, 3.70]", "0.83× [unbounded: FedAvg GE's CI reaches 0]", "n/a (FedAvg GE ≤ 0)"."""
    if not r.defined:
        return "n/a (FedAvg GE ≤ 0)" if r.n else "–"
    if r.n < 2 or math.isnan(r.ci_low):
        return f"{r.ratio:.2f}×"
    if math.isinf(r.ci_low) and math.isinf(r.ci_high):
        return f"{r.ratio:.2f}× [unbounded: FedAvg GE's CI reaches 0]"
    return f"{r.ratio:.2f}× [{r.ci_low:.2f}, {r.ci_high:.2f}]"


def describe(iv: Interval, unit: str = "pp", scale: float = 1.0, wins: bool = True) -> str:
    """ "+1.2 pp [−0.3, +2.7], 4/5 wins" (the interval is omitted when unknown)."""
    if iv.n == 0:
        return "–"
    text = f"{scale * iv.mean:+.1f} {unit}"
    if iv.known:
        text += f" [{scale * iv.ci_low:+.1f}, {scale * iv.ci_high:+.1f}]"
    return text + f", {iv.wins}/{iv.n} wins" if wins else text


NO_SPREAD = "no spread over seeds, so no interval; the test set's own noise is not in it"


def verdict(iv: Interval, scale: float = 100.0, unit: str = "pp") -> str:
    """Words for a difference: "gain", "negative transfer", or "no detectable difference (±x)".

    "gain"/"negative transfer" only when the 95% interval excludes 0."""
    if iv.n == 0:
        return "no data"
    if not iv.known:
        return f"one seed only: {scale * iv.mean:+.1f} {unit}, no interval"
    d = iv.direction()
    ci = f"(95% CI {scale * iv.ci_low:+.1f} to {scale * iv.ci_high:+.1f})"
    if iv.no_spread:
        ci = f"(the same in all {iv.n} seeds: {NO_SPREAD})"
    if d > 0:
        return f"gain {scale * iv.mean:+.1f} {unit} {ci}"
    if d < 0:
        return f"negative transfer {scale * iv.mean:+.1f} {unit} {ci}"
    return f"no detectable difference ({scale * iv.mean:+.1f} ± {scale * iv.half_width:.1f} {unit})"
