"""When may a report call a change an improvement? One rule for audits, runs and studies.

Why: a gap that shrank over two seeds, or because the model stopped predicting positives for
anyone, was badged GOOD. `judge_change` says "improvement" (or "worse") only when

* at least `MIN_SEEDS` (3) seeds pair a before and an after value (same seed = same split);
* the paired 95 % t interval of the per-seed improvement excludes 0;
* the mean improvement is at least `min_effect` (default 0.01 on the metric's scale);
* neither model is near-trivial (`audits.measures.utility.utility_context`): an
  "improvement" of a near-trivial model is reported as such, never as GOOD.

The per-seed improvement is oriented so that > 0 is better: ``|before| − |after|`` for signed
gaps ("abs"), ``|1 − before| − |1 − after|`` for ratios ("di"), ``after − before`` for "higher"
and ``before − after`` for "lower".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from fedlab.metrics.stats import Interval, paired_difference

MIN_SEEDS = 3
MIN_EFFECT = 0.01

IMPROVEMENT = "improvement"
WORSE = "worse"
NO_CHANGE = "no detectable change"
TOO_FEW = "too few seeds to judge"
TRIVIAL = "near-trivial model"


@dataclass(frozen=True)
class Judgement:
    """The verdict, its severity for a report badge, the paired interval and the reason in words."""

    verdict: str
    severity: str  # "good", "flag", "warn" or "info"
    interval: Interval | None
    reason: str

    @property
    def beyond_noise(self) -> bool:
        """Whether the change is real (interval excludes 0, effect large enough, >= 3 seeds)."""
        return self.verdict in (IMPROVEMENT, WORSE) or (
            self.verdict == TRIVIAL and self.interval is not None and self.interval.excludes_zero()
        )


def _score(value: float, kind: str) -> float:
    """The metric turned into "larger is better"."""
    if kind == "abs":
        return -abs(value)
    if kind == "di":
        return -abs(1 - value)
    if kind == "lower":
        return -value
    return value


def _paired(before: Mapping[int, float], after: Mapping[int, float], kind: str) -> Interval:
    seeds = [
        s
        for s in sorted(set(before) & set(after))
        if not (math.isnan(float(before[s])) or math.isnan(float(after[s])))
    ]
    a = [_score(float(after[s]), kind) for s in seeds]
    b = [_score(float(before[s]), kind) for s in seeds]
    return paired_difference(a, b)


def judge_change(
    before: Mapping[int, float],
    after: Mapping[int, float],
    kind: str = "abs",
    *,
    min_effect: float = MIN_EFFECT,
    near_trivial: str = "",
    bad_is: str = "flag",
) -> Judgement:
    """Judge the per-seed change before -> after (seed -> value; only shared seeds count).

    `near_trivial`: the reason a model of the pair is near-trivial ("" if none); `bad_is`: the
    severity of a real change for the worse ("flag" for fairness, "warn" for utility)."""
    iv = _paired(before, after, kind)
    if iv.n < MIN_SEEDS:
        return Judgement(TOO_FEW, "info", iv, f"{iv.n} paired seed(s); need >= {MIN_SEEDS}")
    ci = f"paired 95% CI of the improvement [{iv.ci_low:+.3f}, {iv.ci_high:+.3f}], {iv.n} seeds"
    real = iv.excludes_zero() and abs(iv.mean) >= min_effect
    if near_trivial:
        return Judgement(TRIVIAL, "warn", iv, f"{ci}; not judged: {near_trivial}")
    if not real:
        small = iv.excludes_zero() and abs(iv.mean) < min_effect
        why = f"effect {abs(iv.mean):.3f} < {min_effect:g}" if small else "the interval contains 0"
        return Judgement(NO_CHANGE, "info", iv, f"{ci}; {why}")
    if iv.mean > 0:
        return Judgement(IMPROVEMENT, "good", iv, ci)
    return Judgement(WORSE, bad_is, iv, ci)
