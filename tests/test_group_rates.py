"""The count-based fairness fast path gives exactly fairlearn's numbers (`audits.measures.fairness`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from audits.measures.fairness import group_fairness
from fedlab.metrics import fairness as fairness_eval
from fedlab.metrics.group_rates import group_fairness_fast


def _same(a: float | None, b: float | None) -> bool:
    a = float("nan") if a is None else float(a)
    b = float("nan") if b is None else float(b)
    return a == b or (a != a and b != b)


def _assert_equal(ref: dict, fast: dict) -> None:
    assert set(ref) == set(fast)
    bad = {k: (ref[k], fast[k]) for k in ref if not _same(ref[k], fast[k])}
    assert not bad, bad


def test_random_cases_bit_for_bit_including_empty_groups() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 50))
        values = np.array(["White", "Black", "Asian", "Other", "1"])[: int(rng.integers(1, 6))]
        groups = pd.Series(rng.choice(values, n))
        # a fifth of the cases: one label / one prediction only (empty TPR/FPR/PPV denominators)
        y = rng.integers(0, 2, n) if rng.random() > 0.2 else np.full(n, int(rng.integers(0, 2)))
        p = rng.integers(0, 2, n) if rng.random() > 0.2 else np.full(n, int(rng.integers(0, 2)))
        privileged = str(rng.choice(["White", "1", "absent"]))
        _assert_equal(group_fairness(y, p, groups, privileged), group_fairness_fast(y, p, groups, privileged))


def _reference_client(y, p, groups, protected):
    """The previous implementation: fairlearn per attribute, pandas group-by for the counts."""
    metrics = {
        a: group_fairness(y, p, groups[a].astype(str).reset_index(drop=True), priv)
        for a, priv in protected.items()
    }
    counts = []
    for attr in protected:
        frame = pd.DataFrame({"v": groups[attr].astype(str).to_numpy(), "y": y, "p": p})
        for (v, yy, pp), n in frame.groupby(["v", "y", "p"]).size().items():
            counts.append((attr, str(v), int(yy), int(pp), int(n)))
    return metrics, counts


@pytest.mark.slow
def test_adult_clients_same_numbers_as_fairlearn(tmp_path) -> None:
    """Real Adult partitions (100 clients) and a model's predictions: per client and pooled."""
    from fedlab.config import load_simulation_config
    from fedlab.federation.setup import setup_for
    from fedlab.runs.study import with_embedded_adult

    cfg = with_embedded_adult(
        load_simulation_config(None, {"federation.clients_per_domain": 25}), tmp_path / "cache"
    )
    setup = setup_for(cfg)
    protected = dict(setup.fed.protected)
    rng = np.random.default_rng(1)
    all_counts, ref_counts = [], []
    for part in setup.clients:
        # a deliberately group-dependent predictor so the disparities are not all zero
        p = (rng.random(len(part.y_test)) < 0.3 + 0.4 * part.y_test).astype(int)
        ref_metrics, ref_rows = _reference_client(part.y_test, p, part.groups_test, protected)
        fast = fairness_eval.fairness_by_attribute(part.y_test, p, part.groups_test, protected)
        for attr in protected:
            _assert_equal(fairness_eval._clean(ref_metrics[attr]), fast[attr])
        rows = fairness_eval.group_counts(part.y_test, p, part.groups_test, protected)
        assert rows == ref_rows
        all_counts += rows
        ref_counts += ref_rows
    pooled = fairness_eval.pooled_fairness(all_counts, protected)
    for attr, priv in protected.items():
        y, p, g = fairness_eval.expand_counts(ref_counts, attr)
        _assert_equal(fairness_eval._clean(group_fairness(y, p, g, priv)), pooled[attr])


def test_client_counts_and_pooled_match_fairlearn_small() -> None:
    rng = np.random.default_rng(2)
    protected = {"sex": "Male", "race": "White"}
    parts, all_rows = [], []
    for _ in range(6):
        n = int(rng.integers(3, 40))
        groups = pd.DataFrame(
            {"sex": rng.choice(["Male", "Female"], n), "race": rng.choice(["White", "Black", "Other"], n)}
        )
        y, p = rng.integers(0, 2, n), rng.integers(0, 2, n)
        ref_metrics, ref_rows = _reference_client(y, p, groups, protected)
        fast = fairness_eval.fairness_by_attribute(y, p, groups, protected)
        for attr in protected:
            _assert_equal(fairness_eval._clean(ref_metrics[attr]), fast[attr])
        assert fairness_eval.group_counts(y, p, groups, protected) == ref_rows
        parts.append((y, p, groups))
        all_rows += ref_rows
    pooled = fairness_eval.pooled_fairness(all_rows, protected)
    for attr, priv in protected.items():
        y = np.concatenate([a for a, _, _ in parts])
        p = np.concatenate([b for _, b, _ in parts])
        g = pd.concat([c[attr] for _, _, c in parts]).reset_index(drop=True)
        _assert_equal(fairness_eval._clean(group_fairness(y, p, g, priv)), pooled[attr])
