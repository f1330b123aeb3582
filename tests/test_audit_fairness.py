"""Group fairness metrics against hand-computed values on an 8-person toy case."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from audits.measures.fairness import FAIRNESS_KEYS, group_fairness

# Privileged "M": y = 1 0 1 0, ŷ = 1 1 1 0  -> SR 3/4, TPR 2/2, FPR 1/2, PPV 2/3, ACC 3/4
# Unprivileged F,F,W,W: y = 1 1 0 0, ŷ = 0 1 0 0 -> SR 1/4, TPR 1/2, FPR 0/2, PPV 1/1, ACC 3/4
Y_TRUE = [1, 0, 1, 0, 1, 1, 0, 0]
Y_PRED = [1, 1, 1, 0, 0, 1, 0, 0]
GROUPS = pd.Series(["M", "M", "M", "M", "F", "F", "W", "W"])


@pytest.fixture
def toy() -> dict[str, float]:
    return group_fairness(Y_TRUE, Y_PRED, GROUPS, "M")


def test_all_keys_present(toy: dict[str, float]) -> None:
    assert set(toy) == set(FAIRNESS_KEYS)


def test_privileged_vs_rest_signed_differences(toy: dict[str, float]) -> None:
    assert toy["sr_priv"] == pytest.approx(0.75)
    assert toy["sr_unpriv"] == pytest.approx(0.25)
    assert toy["spd"] == pytest.approx(0.5)  # privileged − unprivileged: men favoured -> positive
    assert toy["disparate_impact"] == pytest.approx(0.25 / 0.75)  # unprivileged / privileged
    assert toy["eq_opp_diff"] == pytest.approx(1.0 - 0.5)
    assert toy["fpr_diff"] == pytest.approx(0.5 - 0.0)
    assert toy["avg_odds_diff"] == pytest.approx((0.5 + 0.5) / 2)
    assert toy["eq_odds_diff"] == pytest.approx(max(0.5, 0.5))
    assert toy["ppv_diff"] == pytest.approx(2 / 3 - 1.0)  # negative: the unprivileged PPV is higher
    assert toy["acc_diff"] == pytest.approx(0.0)
    assert (toy["n_priv"], toy["n_unpriv"]) == (4, 4)


def test_between_group_numbers_use_every_original_group(toy: dict[str, float]) -> None:
    # SR: M 3/4, F 1/2, W 0  -> max−min 3/4, min/max 0
    assert toy["dp_diff_groups"] == pytest.approx(0.75)
    assert toy["dp_ratio_groups"] == pytest.approx(0.0)
    # fairlearn's TPR of W (no positives) is 0 -> max−min over M 1, F 1/2, W 0 = 1
    assert toy["eq_opp_diff_groups"] == pytest.approx(1.0)
    assert toy["eq_odds_diff_groups"] == pytest.approx(1.0)


def test_swapping_privileged_flips_signs_and_inverts_ratio() -> None:
    a = group_fairness(Y_TRUE, Y_PRED, GROUPS.replace({"F": "X", "W": "X"}), "M")
    b = group_fairness(Y_TRUE, Y_PRED, GROUPS.replace({"F": "X", "W": "X"}), "X")
    for key in ("spd", "eq_opp_diff", "fpr_diff", "ppv_diff", "acc_diff", "avg_odds_diff"):
        assert b[key] == pytest.approx(-a[key])
    assert b["disparate_impact"] == pytest.approx(1 / a["disparate_impact"])
    assert b["eq_odds_diff"] == pytest.approx(a["eq_odds_diff"])  # unsigned


def test_parity_gives_zero_and_ratio_one() -> None:
    out = group_fairness([1, 0, 1, 0], [1, 0, 1, 0], pd.Series(["a", "a", "b", "b"]), "a")
    assert out["spd"] == 0 and out["disparate_impact"] == 1 and out["eq_odds_diff"] == 0


def test_privileged_value_matched_as_text() -> None:
    out = group_fairness([1, 0, 1, 0], [1, 1, 0, 0], pd.Series([1, 1, 0, 0]), "1")
    assert out["spd"] == pytest.approx(1.0)


def test_missing_group_or_empty_denominator_is_nan_not_zero() -> None:
    only_priv = group_fairness([1, 0], [1, 0], pd.Series(["M", "M"]), "M")
    assert math.isnan(only_priv["spd"]) and only_priv["n_unpriv"] == 0
    # unprivileged group has no positives -> its TPR (and the TPR gap) is undefined
    no_pos = group_fairness([1, 0, 0, 0], [1, 0, 1, 0], pd.Series(["M", "M", "F", "F"]), "M")
    assert math.isnan(no_pos["eq_opp_diff"])
    assert no_pos["fpr_diff"] == pytest.approx(0.0 - 0.5)


def test_rejects_non_binary_labels() -> None:
    with pytest.raises(ValueError, match="0/1"):
        group_fairness([0, 2], [0, 1], pd.Series(["a", "b"]), "a")


def test_collapsed_counts_match_fairlearn_on_raw_rows() -> None:
    """The (group, y, ŷ) weighting shortcut must reproduce fairlearn's per-row numbers exactly."""
    from fairlearn.metrics import (
        demographic_parity_difference,
        demographic_parity_ratio,
        equal_opportunity_difference,
        equalized_odds_difference,
    )

    rng = np.random.default_rng(7)
    n = 3000
    y = rng.integers(0, 2, n)
    p = (rng.uniform(size=n) < 0.3 + 0.4 * y).astype(int)
    g = pd.Series(rng.choice(["White", "Black", "Asian", "Other"], n, p=[0.7, 0.15, 0.1, 0.05]))
    out = group_fairness(y, p, g, "White")
    kw = {"sensitive_features": g}
    assert out["dp_diff_groups"] == pytest.approx(demographic_parity_difference(y, p, **kw))
    assert out["dp_ratio_groups"] == pytest.approx(demographic_parity_ratio(y, p, **kw))
    assert out["eq_odds_diff_groups"] == pytest.approx(equalized_odds_difference(y, p, **kw))
    assert out["eq_opp_diff_groups"] == pytest.approx(equal_opportunity_difference(y, p, **kw))
    priv = (g == "White").to_numpy()
    assert out["spd"] == pytest.approx(p[priv].mean() - p[~priv].mean())
    assert out["eq_opp_diff"] == pytest.approx(p[priv & (y == 1)].mean() - p[~priv & (y == 1)].mean())
    assert out["ppv_diff"] == pytest.approx(y[priv & (p == 1)].mean() - y[~priv & (p == 1)].mean())
    assert out["n_priv"] == priv.sum()
