"""Private federations end to end: client DP-SGD on digits, local k-anonymity and fairness on Adult."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from fedlab.config import load_simulation_config
from fedlab.learn.privacy import epsilon, sample_rate
from fedlab.runs.simulate import simulate

SMALL_DIGITS = {
    "training.strategy": "fedavg",
    "training.target": "colour",
    "training.rounds": 3,
    "training.local_steps": 2,
    "training.batch_size": 16,
    "federation.max_per_domain": 40,
    "dp.enabled": True,
    "dp.noise_multiplier": 1.0,
}


@pytest.mark.slow
def test_dp_run_accumulates_epsilon_and_stops_exhausted_clients(tmp_path) -> None:
    from fedlab.federation.setup import setup_for

    cfg = load_simulation_config(None, SMALL_DIGITS)
    sizes = {len(c.y_train) for c in setup_for(cfg).clients}
    assert len(sizes) == 1  # same size -> same sampling rate, δ and ε for every client
    n_train = sizes.pop()
    two_rounds = epsilon([(1.0, sample_rate(n_train, 16), 4)], 1 / n_train)
    cfg.dp.epsilon_budget = two_rounds * 1.001
    run = simulate(cfg, out=tmp_path / "dp")
    rounds = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    eps = [r["client_epsilon"] for r in rounds]
    clients = set(eps[0])
    assert len(clients) == 4
    for c in clients:
        assert 0 < eps[0][c] < eps[1][c] == eps[2][c] <= two_rounds * 1.001
        assert eps[1][c] == pytest.approx(two_rounds)
    assert not any(rounds[1]["client_budget_exhausted"].values())
    assert all(rounds[2]["client_budget_exhausted"].values())
    assert rounds[2]["client_target_acc"] == {}  # nobody trained: the global model is unchanged
    assert rounds[2]["target_acc"] == rounds[1]["target_acc"]
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert summary["dp"]["epsilon"] == eps[2] and all(summary["dp"]["budget_exhausted"].values())
    state = torch.load(run.run_dir / "model.pt")
    assert not any("running_mean" in k for k in state)  # GroupNorm under DP


def test_private_anonymized_tabular_run_with_fairness_and_budget(tmp_path) -> None:
    """One short Adult run: local k=10, DP-SGD until the budget is spent, fairness every round."""
    from fedlab.runs.study import embedded_adult_csv

    sigma, delta = 1.0, 1e-3
    two_rounds = epsilon([(sigma, 1.0, 4)], delta)  # batch >= rows: every client samples at q = 1
    cfg = load_simulation_config(
        None,
        {
            "federation.name": "tabular",
            "federation.csv": str(embedded_adult_csv(tmp_path)),
            "federation.max_per_domain": 120,
            "anonymize.spec": "k=10",
            "training.strategy": "fedavg",
            "training.rounds": 3,
            "training.local_steps": 2,
            "training.batch_size": 512,
            "dp.enabled": True,
            "dp.noise_multiplier": sigma,
            "dp.delta": delta,
            "dp.epsilon_budget": two_rounds * 1.001,
        },
    )
    run = simulate(cfg, out=tmp_path / "run")
    rounds = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rounds] == [1, 2, 3]
    for r in rounds:  # fairness of the global model, per client, pooled and on the target, every round
        assert set(r["client_fairness"]) == set(r["client_own_acc"]) and len(r["client_own_acc"]) == 4
        assert {"sex", "race"} <= set(r["pooled_fairness"]) and "sex" in r["target_fairness"]
        assert {"spd", "eq_opp_diff"} <= set(r["pooled_fairness"]["sex"])
    eps = [r["client_epsilon"] for r in rounds]
    for c in eps[0]:
        assert 0 < eps[0][c] < eps[1][c] == eps[2][c] == pytest.approx(two_rounds)
    assert not any(rounds[1]["client_budget_exhausted"].values())
    assert all(rounds[2]["client_budget_exhausted"].values())
    assert rounds[2]["client_target_acc"] == {} and rounds[2]["target_acc"] == rounds[1]["target_acc"]
    summary = run.summary
    assert summary["dp"]["epsilon"] == eps[2] and len(summary["anonymization"]) == 4


def _adult_raw(tmp_path, max_rows: int = 300):
    from fedlab.data import load_federation
    from fedlab.runs.study import embedded_adult_csv

    csv = embedded_adult_csv(tmp_path)
    cfg = load_simulation_config(
        None,
        {
            "federation.name": "tabular",
            "federation.csv": str(csv),
            "federation.max_per_domain": max_rows,
            "anonymize.spec": "k=10",
        },
    )
    return cfg, load_federation(cfg.federation, cfg.seed)


def test_anonymizing_clients_are_k_anonymous_and_share_one_encoding(tmp_path) -> None:
    from audits.anonymity.verify import k_anonymity
    from fedlab.federation.anonymize import anonymize_federation, build_hierarchies

    cfg, raw = _adult_raw(tmp_path)
    anon = anonymize_federation(raw, "", cfg)
    hierarchies = build_hierarchies(raw, anon.qis)
    assert "race" not in anon.qis and "age" in anon.qis  # the domain column is constant per client
    for a, part in zip(anon.anonymized, anon.clients, strict=True):
        assert k_anonymity(a.table, anon.qis) >= 10
        assert len(part.y_train) == len(a.table) == a.report["kept"]
        assert len(part.y_test) == len(a.test_table)  # evaluation rows recoded, never suppressed
        for q, level in (a.report["levels"] or {}).items():
            assert set(a.test_table[q]) <= set(hierarchies[q].labels[level])  # same recoding
    dims = {p.x_train.shape[1] for p in anon.clients} | {
        anon.ready.domains[raw.default_target].x_test.shape[1]
    }
    assert len(dims) == 1
    assert all(np.isfinite(p.x_train).all() for p in anon.clients)


def test_generalized_values_encode_as_leaf_distributions(tmp_path) -> None:
    from fedlab.federation.anonymize import GeneralizedEncoder, build_hierarchies

    _, raw = _adult_raw(tmp_path)
    qis = ["age", "marital-status"]
    enc = GeneralizedEncoder(raw, qis, build_hierarchies(raw, qis))
    table = raw.frame(raw.domains[raw.default_target].x_train[:3])
    enc.fit([table])
    gen = table.copy()
    gen["marital-status"] = "*"
    gen["age"] = "[20, 40["
    x = enc.transform(gen)
    j = raw.feature_columns.index("marital-status")
    start = sum(1 if c in enc.numeric else len(enc._leaf_dist.get(c, {"": [0]})["*"]) if c in enc.qis
                else len(enc.categories[c]) for c in raw.feature_columns[:j])  # fmt: skip
    width = len(enc._leaf_dist["marital-status"]["*"])
    block = x[:, start : start + width]
    assert np.allclose(block.sum(axis=1), 1.0) and np.allclose(block, 1 / width)
    mid = (29.5 - enc.mean["age"]) / enc.std["age"]  # mean of the integer ages 20..39
    assert np.allclose(x[:, raw.feature_columns.index("age")], mid)


def test_pooled_fairness_from_counts_equals_fairlearn_on_pooled_rows() -> None:
    from audits.measures.fairness import group_fairness
    from fedlab.metrics.fairness import group_counts, pooled_fairness

    rng = np.random.default_rng(0)
    parts = []
    for n in (40, 70, 25):
        g = pd.DataFrame(
            {"sex": rng.choice(["Male", "Female"], n), "race": rng.choice(["White", "Black", "X"], n)}
        )
        parts.append((rng.integers(0, 2, n), rng.integers(0, 2, n), g))
    protected = {"sex": "Male", "race": "White"}
    counts = [row for y, p, g in parts for row in group_counts(y, p, g, protected)]
    pooled = pooled_fairness(counts, protected)
    y = np.concatenate([p[0] for p in parts])
    yhat = np.concatenate([p[1] for p in parts])
    groups = pd.concat([p[2] for p in parts], ignore_index=True)
    for attr, priv in protected.items():
        direct = group_fairness(y, yhat, groups[attr], priv)
        for k, v in direct.items():
            assert pooled[attr][k] == (None if v != v else pytest.approx(v)), (attr, k)


@pytest.mark.slow
def test_central_dp_reports_user_level_epsilon(tmp_path) -> None:
    from fedlab.learn.privacy import central_epsilon

    cfg = load_simulation_config(
        None,
        {**SMALL_DIGITS, "dp.mode": "central", "dp.noise_multiplier": 2.0, "training.rounds": 2},
    )
    run = simulate(cfg, out=tmp_path / "central")
    rounds = [json.loads(line) for line in (run.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["central_epsilon"] for r in rounds] == [
        pytest.approx(central_epsilon(2.0, r, 1 / 4)) for r in (1, 2)
    ]
    assert run.summary["dp"]["mode"] == "central"
