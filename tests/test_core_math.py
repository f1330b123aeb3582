"""MMD, ramp, voting and Group Effect against closed-form / hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fedlab.learn.mmd import gaussian_kernel_matrix, mk_mmd, ramp
from fedlab.learn.voting import confidence_of, majority_vote, select_class_balanced
from fedlab.metrics.group_effect import group_effect, group_effect_interval, mean_std


def test_mmd_identical_samples_is_zero() -> None:
    x = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    assert mk_mmd(x, x.clone()).item() == pytest.approx(0.0, abs=1e-6)


def test_mmd_shifted_gaussians_positive_and_grows_with_shift() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(200, 4, generator=g)
    near = torch.randn(200, 4, generator=g) + 0.5
    far = torch.randn(200, 4, generator=g) + 3.0
    same = torch.randn(200, 4, generator=g)
    d_same, d_near, d_far = mk_mmd(x, same).item(), mk_mmd(x, near).item(), mk_mmd(x, far).item()
    assert d_near > d_same
    assert d_far > d_near > 0


def test_kernel_matrix_closed_form_two_points() -> None:
    # Two 1-D points at distance 1: mean pairwise squared distance over off-diagonal = 1.
    x, y = torch.tensor([[0.0]]), torch.tensor([[1.0]])
    k = gaussian_kernel_matrix(x, y, kernel_mul=2.0, kernel_num=5)
    bandwidths = [1.0 / 4 * 2**i for i in range(5)]  # base / mul^(num//2) * mul^i
    expected_off = sum(math.exp(-1.0 / bw) for bw in bandwidths)
    assert k[0, 1].item() == pytest.approx(expected_off, rel=1e-5)
    assert k[0, 0].item() == pytest.approx(5.0)
    # MMD² = k(x,x) + k(y,y) − 2k(x,y)
    assert mk_mmd(x, y).item() == pytest.approx(10.0 - 2 * expected_off, rel=1e-5)


def test_mmd_rejects_mismatched_widths() -> None:
    with pytest.raises(ValueError, match="equal width"):
        mk_mmd(torch.zeros(3, 2), torch.zeros(3, 4))


def test_ramp_endpoints_and_midpoint() -> None:
    assert ramp(0.0) == 0.0
    assert ramp(1.0) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert ramp(0.5) == pytest.approx(2 / (1 + math.exp(-2.5)) - 1)
    assert ramp(2.0) == ramp(1.0)  # clipped


def test_majority_vote_labels_adoption_and_ties() -> None:
    preds = np.array(
        [
            [1, 2, 0, 3],
            [1, 2, 1, 4],
            [1, 0, 2, 3],
            [2, 0, 1, 4],
        ]
    )
    res = majority_vote(preds, num_classes=5)
    # sample 0: three votes for 1 -> adopted; sample 1: 2 vs 2 tie -> smallest class (0), not adopted
    # sample 2: 1 has two votes, 0 and 2 one each -> label 1, not a strict majority
    # sample 3: 3 and 4 tie -> 3
    assert res.labels.tolist() == [1, 0, 1, 3]
    assert res.votes.tolist() == [3, 2, 2, 2]
    assert res.adopted.tolist() == [True, False, False, False]
    assert res.adoption_rate == 0.25
    y = np.array([1, 0, 1, 4])
    assert res.accuracy(y) == 1.0
    assert res.accuracy(y, adopted_only=False) == 0.75


def test_plurality_rule_adopts_every_sample_with_the_reference_tie_break() -> None:
    preds = np.array([[1, 2, 0, 3], [1, 2, 1, 4], [1, 0, 2, 3], [2, 0, 1, 4]])
    res = majority_vote(preds, num_classes=5, rule="plurality")
    assert res.labels.tolist() == [1, 0, 1, 3]
    assert res.adopted.tolist() == [True, True, True, True]
    # the notebook's `max(set(votes), key=votes.count)` picks the same winners, ties included
    reference = [max(set(column), key=list(column).count) for column in preds.T.tolist()]
    assert res.labels.tolist() == reference


def test_vote_rule_is_validated() -> None:
    with pytest.raises(ValueError, match="rule must be one of"):
        majority_vote(np.array([[0, 1]]), num_classes=2, rule="unanimous")


def test_majority_vote_single_voter_adopts_everything() -> None:
    res = majority_vote(np.array([[3, 1]]), num_classes=4)
    assert res.adopted.all() and res.labels.tolist() == [3, 1]


def test_majority_vote_no_adoption_gives_nan_accuracy() -> None:
    res = majority_vote(np.array([[0, 1], [1, 0]]), num_classes=2)
    assert not res.adopted.any()
    assert math.isnan(res.accuracy(np.array([0, 1])))


def test_group_effect_arithmetic() -> None:
    assert group_effect(0.80, [0.70, 0.60, 0.90]) == pytest.approx(0.80 - 0.7333333333)
    assert group_effect(0.5, [0.6, 0.7]) == pytest.approx(-0.15)  # negative transfer
    with pytest.raises(ValueError):
        group_effect(0.5, [])


def test_group_effect_interval_is_scipys_one_sample_t_interval_of_the_row_differences() -> None:
    from scipy.stats import ttest_1samp

    rng = np.random.default_rng(3)
    global_hits = rng.random(40) < 0.6
    clients = [rng.random(40) < p for p in (0.5, 0.7, 0.4)]
    lo, hi = group_effect_interval(global_hits, clients)
    d = global_hits.astype(float) - np.mean(np.stack(clients).astype(float), axis=0)
    ref = ttest_1samp(d, 0.0).confidence_interval(0.95)
    assert (lo, hi) == pytest.approx((ref.low, ref.high), abs=1e-12)
    ge = group_effect(global_hits.mean(), [c.mean() for c in clients])
    assert (lo + hi) / 2 == pytest.approx(ge)  # centred on the Group Effect the run records
    # hand-computed: d = (0, 0.5, -0.5, 0): mean 0, sd = sqrt(0.5 / 3), t(0.975, 3) = 3.1824
    lo, hi = group_effect_interval(np.array([1, 1, 0, 0]), [np.array([1, 0, 0, 0]), np.array([1, 1, 1, 0])])
    assert hi == pytest.approx(3.182446 * math.sqrt(0.5 / 3) / 2, abs=1e-5) and lo == pytest.approx(-hi)
    # identical predictions: no difference and no spread; too few rows or no clients: undefined
    assert group_effect_interval(np.array([1, 0, 1]), [np.array([1, 0, 1])]) == (0.0, 0.0)
    assert all(math.isnan(v) for v in group_effect_interval(np.array([1]), [np.array([0])]))
    assert all(math.isnan(v) for v in group_effect_interval(np.array([1, 0]), []))


def test_mean_std_ignores_nan() -> None:
    m, s = mean_std([0.5, float("nan"), 0.7])
    assert m == pytest.approx(0.6) and s == pytest.approx(np.std([0.5, 0.7], ddof=1))


def test_vote_agreement_threshold() -> None:
    preds = np.array([[1, 2], [1, 2], [1, 0], [1, 2]])
    assert majority_vote(preds, 3).adopted.tolist() == [True, True]
    assert majority_vote(preds, 3, min_agreement=1.0).adopted.tolist() == [True, False]
    with pytest.raises(ValueError):
        majority_vote(preds, 3, min_agreement=0.0)


def test_confidence_is_voters_mean_probability_of_the_voted_label() -> None:
    probs = np.array(
        [
            [[0.9, 0.1], [0.4, 0.6]],
            [[0.7, 0.3], [0.2, 0.8]],
        ]
    )
    conf = confidence_of(probs, np.array([0, 1]))
    assert conf.tolist() == pytest.approx([0.8, 0.7])


def test_class_balanced_selection_keeps_the_most_confident_share_of_each_class() -> None:
    # class 0 has 4 adopted samples, class 1 has 2, sample 6 (class 1) lacks a majority
    vote = majority_vote(np.array([[0, 0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 1, 1, 0], [0, 0, 0, 0, 1, 1, 2]]), 3)
    assert vote.adopted.tolist() == [True] * 6 + [False]
    conf = np.array([0.5, 0.9, 0.7, 0.6, 0.55, 0.95, 0.99])
    half = select_class_balanced(vote, conf, 0.5)
    # top half of class 0 by confidence: samples 1 and 2; of class 1: sample 5; never sample 6
    assert np.flatnonzero(half.adopted).tolist() == [1, 2, 5]
    assert half.labels.tolist() == vote.labels.tolist()
    # a tiny fraction still keeps the best sample of every voted class
    assert np.flatnonzero(select_class_balanced(vote, conf, 0.01).adopted).tolist() == [1, 5]
    assert select_class_balanced(vote, conf, 1.0) is vote
    with pytest.raises(ValueError):
        select_class_balanced(vote, conf, 0.0)


def test_a_clients_lead_over_the_global_model_is_a_paired_interval_over_the_rows() -> None:
    from scipy.stats import ttest_1samp

    from fedlab.metrics.group_effect import hit_difference_interval

    rng = np.random.default_rng(5)
    client, global_hits = rng.random(57) < 0.95, rng.random(57) < 0.88
    ref = ttest_1samp(client.astype(float) - global_hits.astype(float), 0.0).confidence_interval(0.95)
    assert hit_difference_interval(client, global_hits) == pytest.approx((ref.low, ref.high), abs=1e-12)
    assert all(math.isnan(v) for v in hit_difference_interval(np.array([1]), np.array([0])))
