"""Individual fairness scores against hand-computed values on tiny 1-D data."""

from __future__ import annotations

import numpy as np
import pytest

from audits.measures.individual import INDIVIDUAL_KEYS, consistency, individual_fairness, ncf, neighbours

# Points on a line: 0, 1, 2, 10, 11. With k=1 the nearest neighbours are
# 0->1, 1->0 or 2 (tie, both distance 1), 2->1, 10->11, 11->10.
X = np.array([[0.0], [1.0], [2.0], [10.0], [11.0]])


def test_neighbours_exclude_self() -> None:
    dist, idx = neighbours(X, np.arange(5), 2)
    assert not (idx == np.arange(5)[:, None]).any()
    assert idx[0].tolist() == [1, 2] and dist[0].tolist() == [1.0, 2.0]


def test_neighbours_exclude_self_among_duplicates() -> None:
    dup = np.zeros((3, 1))
    _, idx = neighbours(dup, np.arange(3), 2)
    for i in range(3):
        assert sorted(idx[i].tolist()) == sorted(set(range(3)) - {i})


def test_consistency_hand_computed() -> None:
    y = np.array([1, 1, 0, 0, 1])
    # k=2 neighbours and |ŷ_i − mean ŷ_N|: 0:{1,2} mean .5 -> .5 ; 1:{0,2} .5 -> .5 ;
    # 2:{1,0} (d 1, 2 < 8) mean 1 -> 1 ; 3:{4,2} mean .5 -> .5 ; 4:{3,2} mean 0 -> 1
    expected = 1 - np.mean([0.5, 0.5, 1.0, 0.5, 1.0])
    assert consistency(X, y, k=2) == pytest.approx(expected)


def test_consistency_is_one_when_neighbours_agree() -> None:
    assert consistency(X, np.array([0, 0, 0, 1, 1]), k=1) == pytest.approx(1.0)


def test_ncf_hand_computed() -> None:
    p = np.array([0.1, 0.3, 0.6, 0.9, 0.8])
    # k=2: 0:{1,2} (.2+.5)/2=.35 ; 1:{0,2} (.2+.3)/2=.25 ; 2:{1,0} (.3+.5)/2=.4 ;
    #      3:{4,2} (.1+.3)/2=.2 ; 4:{3,2} (.1+.2)/2=.15
    assert ncf(X, p, k=2) == pytest.approx(np.mean([0.35, 0.25, 0.4, 0.2, 0.15]))


def test_asf_alf_hand_computed() -> None:
    Xs = np.array([[0.0], [1.0], [3.0]])
    p = np.array([0.0, 0.5, 1.0])
    # k=1 pairs: 0->1 (d=1, gap .5), 1->0 (d=1, gap .5), 2->1 (d=2, gap .5)
    out = individual_fairness(Xs, p, k_consistency=1, k_ncf=1)
    s = np.array([1 / 2, 1 / 2, 1 / 3])
    assert out["ncf"] == pytest.approx(0.5)
    assert out["asf"] == pytest.approx((s * 0.5).sum() / s.sum())
    assert out["alf"] == pytest.approx(np.mean([0.5 / 1, 0.5 / 1, 0.5 / 2]))
    assert out["zero_distance_pairs"] == 0.0
    assert out["consistency"] == pytest.approx(1 - np.mean([1, 1, 0]))  # ŷ = 0, 1, 1


def test_identical_rows_drop_out_of_alf_only() -> None:
    Xs = np.array([[0.0], [0.0], [5.0], [5.0]])
    p = np.array([0.2, 0.2, 0.7, 0.7])
    out = individual_fairness(Xs, p, k_ncf=1, k_consistency=1)
    assert out["ncf"] == 0.0 and out["asf"] == 0.0
    assert np.isnan(out["alf"]) and out["zero_distance_pairs"] == 1.0


def test_sampling_is_seeded_and_bounded() -> None:
    rng = np.random.default_rng(0)
    Xb, pb = rng.normal(size=(500, 3)), rng.uniform(size=500)
    a = individual_fairness(Xb, pb, k_ncf=10, max_rows=50, seed=3)
    b = individual_fairness(Xb, pb, k_ncf=10, max_rows=50, seed=3)
    c = individual_fairness(Xb, pb, k_ncf=10, max_rows=50, seed=4)
    assert a == b and a != c
    assert set(a) == set(INDIVIDUAL_KEYS)
