"""Paired statistics (fedlab.metrics.stats, fedlab.metrics.comparison): exact values on known inputs."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from fedlab.metrics import comparison
from fedlab.metrics.stats import (
    bootstrap_ratio,
    format_ratio,
    paired_difference,
    t_critical,
    t_interval,
    verdict,
)


def test_t_interval_exact_on_known_values() -> None:
    iv = t_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    # mean 3, sd sqrt(2.5), se = sqrt(0.5), t(0.975, 4) = 2.776445...
    assert t_critical(5) == pytest.approx(2.7764451, abs=1e-6)
    half = 2.7764451052 * math.sqrt(0.5)
    assert iv.mean == 3.0
    assert (iv.ci_low, iv.ci_high) == pytest.approx((3 - half, 3 + half), abs=1e-9)
    assert (iv.wins, iv.losses, iv.ties, iv.n) == (5, 0, 0, 5)
    assert iv.excludes_zero() and iv.direction() == 1


def test_paired_difference_counts_wins_losses_ties() -> None:
    iv = paired_difference([0.5, 0.6, 0.7, 0.8], [0.4, 0.6, 0.9, 0.7])
    assert iv.values == pytest.approx([0.1, 0.0, -0.2, 0.1])
    assert (iv.wins, iv.losses, iv.ties) == (2, 1, 1)
    assert iv.mean == pytest.approx(0.0)
    assert not iv.excludes_zero()
    with pytest.raises(ValueError):
        paired_difference([1.0], [1.0, 2.0])


def test_one_seed_has_no_interval_and_never_claims() -> None:
    iv = paired_difference([0.9], [0.1])
    assert iv.n == 1 and not iv.known and not iv.excludes_zero()
    assert verdict(iv).startswith("one seed only")


def test_verdict_words_follow_the_interval() -> None:
    assert verdict(t_interval([0.010, 0.012, 0.011, 0.013, 0.009])).startswith("gain +1.1 pp")
    assert verdict(t_interval([-0.010, -0.012, -0.011, -0.013, -0.009])).startswith(
        "negative transfer -1.1 pp"
    )
    noisy = t_interval([-0.02, 0.015, -0.01, 0.01, -0.005])
    text = verdict(noisy)
    assert text.startswith("no detectable difference (-0.2 ± ") and text.endswith(" pp)")
    assert "gain" not in text and "negative" not in text


def test_bootstrap_ratio_is_reproducible_and_brackets_the_ratio() -> None:
    num, den = [0.04, 0.05, 0.06, 0.05, 0.04], [0.02, 0.025, 0.02, 0.03, 0.02]
    a, b = bootstrap_ratio(num, den), bootstrap_ratio(num, den)
    assert a == b
    assert a.ratio == pytest.approx(0.24 / 0.115)
    assert a.ci_low <= a.ratio <= a.ci_high and a.defined
    # constant ratio: every resample gives exactly 2
    c = bootstrap_ratio([0.02, 0.04, 0.06], [0.01, 0.02, 0.03])
    assert (c.ratio, c.ci_low, c.ci_high) == pytest.approx((2.0, 2.0, 2.0))


def test_bootstrap_ratio_undefined_when_baseline_group_effect_not_positive() -> None:
    r = bootstrap_ratio([0.01, 0.02], [-0.01, 0.005])
    assert not r.defined and math.isnan(r.ratio)
    # the denominator's interval reaches 0: the ratio's interval is unbounded, not a huge number
    r = bootstrap_ratio([0.02, 0.02, 0.02], [0.05, -0.04, 0.01])
    assert r.defined and (r.ci_low, r.ci_high) == (-math.inf, math.inf)
    assert "unbounded" in format_ratio(r)
    # a baseline clearly above 0 keeps finite bounds
    r = bootstrap_ratio([0.06, 0.08, 0.07, 0.09, 0.05], [0.02, 0.03, 0.025, 0.035, 0.02])
    assert math.isfinite(r.ci_low) and math.isfinite(r.ci_high) and r.ci_low <= r.ratio <= r.ci_high


def _runs() -> pd.DataFrame:
    rows = []
    for t_i, target in enumerate(["a", "b"]):
        for seed in range(5):
            base = 0.5 + 0.01 * seed + 0.1 * t_i
            rows.append(("fedavg", target, seed, base, base + 0.02, 0.01 + 0.001 * seed))
            rows.append(("fedka", target, seed, base + 0.03 + 0.001 * seed, base + 0.04, 0.03 + 0.002 * seed))
    return pd.DataFrame(
        rows,
        columns=["strategy", "target", "seed", "final_target_acc", "best_target_acc", "final_group_effect"],
    )


def test_compare_pairs_by_seed_in_percentage_points() -> None:
    cells = comparison.compare(_runs())
    assert [(c["target"], c["strategy"]) for c in cells] == [
        ("a", "fedka"),
        ("b", "fedka"),
        (comparison.ALL_TARGETS, "fedka"),
    ]
    a = cells[0]
    assert a["final"].values == pytest.approx([3.0, 3.1, 3.2, 3.3, 3.4])
    assert a["final"].wins == 5 and a["final"].excludes_zero()
    assert a["best"].values == pytest.approx([2.0] * 5)
    assert a["ge"].mean == pytest.approx(2.2 + 0.0)  # (3.4 - 1.2) pp on average
    assert a["ge_ratio"].ratio == pytest.approx(0.034 / 0.012)
    row = comparison.flat_row(a)
    assert row["final_acc_diff_pp_mean"] == pytest.approx(3.2)
    assert row["final_acc_diff_pp_wins"] == 5


def test_a_reference_without_group_effect_gets_its_mean_over_targets_and_no_ratio() -> None:
    """`central` has no clients, so no Group Effect (NaN): its accuracy is still averaged over the
    targets per seed and paired with FedAvg; a seed missing a target is left out, never averaged
    over the targets it has; the ratio column says why it is empty; a cell without pairs is said in
    words, not printed as "+nan pp"."""
    runs = _runs()
    ref = runs[runs["strategy"] == "fedavg"].assign(strategy="central", final_group_effect=math.nan)
    ref["final_target_acc"] += 0.01
    runs = pd.concat([runs, ref.drop(ref.index[-1])])  # central misses target b, seed 4
    mean = next(
        c
        for c in comparison.compare(runs)
        if c["target"] == comparison.ALL_TARGETS and c["strategy"] == "central"
    )
    assert mean["final"].n == 4 and mean["final"].values == pytest.approx([1.0] * 4)
    assert mean["seeds"] == 4 and math.isnan(mean["ge_strategy"].mean)
    assert comparison.interval_text(mean["final"]).startswith("+1.0 pp (the same in all 4 seeds")
    assert comparison.ratio_note(mean) == "n/a (a reference has no clients)"
    fedka = next(c for c in comparison.compare(runs) if c["strategy"] == "fedka")
    assert comparison.ratio_note(fedka) is None  # FedAvg's GE interval excludes 0 here
    assert comparison.interval_text(t_interval([])) == "not compared (no seed has both runs)"
    assert comparison.interval_text(t_interval([0.4])) == "+0.4 pp (one paired seed: no interval)"
    one_seed = {**mean, "final": t_interval([0.4])}  # no interval: not called level, above or below
    assert comparison.reference_position(one_seed).endswith(") vs fedavg")
    assert comparison.reference_position(mean).endswith(") is above fedavg")


def test_compare_without_baseline_is_empty() -> None:
    runs = _runs()
    assert comparison.compare(runs[runs["strategy"] == "fedka"]) == []


def test_describe_formats_interval_and_wins() -> None:
    from fedlab.metrics.stats import describe

    iv = t_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert describe(iv) == "+3.0 pp [+1.0, +5.0], 5/5 wins"
    assert describe(iv, wins=False) == "+3.0 pp [+1.0, +5.0]"
    assert describe(t_interval([0.4]), wins=False) == "+0.4 pp"


def test_sweep_summary_rows_are_strict_json_with_unbounded_ratios() -> None:
    from fedlab.core.rundir import dumps
    from fedlab.runs.sweep import json_records

    cells = comparison.compare(_runs())
    frame = comparison.comparison_frame(cells)
    frame.loc[0, "ge_ratio_ci_high"] = math.inf
    frame.loc[0, "ge_ratio_ci_low"] = -math.inf
    text = dumps({"table": json_records(frame), "paired": comparison.to_json(cells)})
    assert '"ge_ratio_ci_high": "inf"' in text and '"ge_ratio_ci_low": "-inf"' in text


def test_identical_seeds_are_not_reported_as_a_precise_interval() -> None:
    """Five seeds ending at the same constant predictor give a zero-width t interval: the texts say
    the value is the same in every seed instead of "95% CI −3.3 to −3.3" (spurious precision)."""
    from fedlab.metrics.comparison import interval_text
    from fedlab.metrics.stats import t_interval, verdict

    same = t_interval([-3.3] * 5)
    assert same.no_spread and not t_interval([-3.3, -3.2, -3.3]).no_spread and not t_interval([1.0]).no_spread
    assert interval_text(same) == (
        "-3.3 pp (the same in all 5 seeds: no spread over seeds, so no interval; the test set's own noise "
        "is not in it)"
    )
    assert "95% CI" not in verdict(same, 1.0) and "the same in all 5 seeds" in verdict(same, 1.0)
    assert "95% CI -0.5 to +0.5" not in interval_text(t_interval([-0.5, 0.5]))  # ordinary case untouched
    assert interval_text(t_interval([-1.0, 1.0])).startswith("+0.0 pp (95% CI")
