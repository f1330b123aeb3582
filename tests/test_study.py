"""`fedlab study`: grid parsing and a one-cell study on the embedded Adult federation."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from fedlab.cli.study import parse_anonymizations, parse_epsilons
from fedlab.config import load_simulation_config
from fedlab.core.errors import ConfigError
from fedlab.runs.study import COLUMNS, Cell, grid, run_study, with_embedded_adult

TINY = {
    "training.strategy": "fedavg",
    "training.rounds": 2,
    "training.local_steps": 3,
    "training.batch_size": 32,
    "federation.max_per_domain": 200,
}


def test_grid_parsing_and_errors() -> None:
    assert parse_epsilons("none,1,3,8") == [None, 1.0, 3.0, 8.0]
    assert parse_anonymizations("none,k=10,k=5;l=2") == ["", "k=10", "k=5,l=2"]
    with pytest.raises(ConfigError, match="--epsilons"):
        parse_epsilons("none,0")
    with pytest.raises(ConfigError, match="--anonymize"):
        parse_anonymizations("q=3")
    cells = grid(["fedavg", "fedka"], [None, 1.0, 3.0, 8.0], ["", "k=10", "k=50"], [0, 1])
    assert len(cells) == 48 and len({c.name for c in cells}) == 48


@pytest.mark.slow
def test_one_cell_study_writes_tidy_table_with_fairness_and_epsilon(tmp_path) -> None:
    base = with_embedded_adult(load_simulation_config(None, TINY), tmp_path / "cache")
    out, _, _ = run_study(base, [Cell("fedavg", 3.0, "k=10", 0)], tmp_path / "study")
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == [
        "study.csv",
        "study.parquet",
        "summary.json",
    ]
    table = pd.read_csv(out / "study.csv")
    assert list(table.columns) == COLUMNS and len(table) == 1
    assert pd.read_parquet(out / "study.parquet").shape == table.shape
    r = table.iloc[0]
    assert 0 < r["epsilon_spent"] <= 3.0 and r["anonymize"] == "k=10" and r["fairness_attribute"] == "sex"
    for col in ("accuracy", "group_effect", "spd", "eq_opp_diff", "target_spd"):
        assert pd.notna(r[col]), col
    rounds = [json.loads(x) for x in (out / r["run"] / "metrics.jsonl").read_text().splitlines()]
    assert [x["round"] for x in rounds] == [1, 2]
    for x in rounds:
        assert set(x["client_fairness"]) == set(x["client_own_acc"])
        assert {"sex", "race"} <= set(x["pooled_fairness"]) and "sex" in x["target_fairness"]
        assert "spd" in x["pooled_fairness"]["sex"] and "eq_opp_diff" in x["pooled_fairness"]["sex"]
    for client in rounds[0]["client_epsilon"]:
        assert rounds[0]["client_epsilon"][client] < rounds[1]["client_epsilon"][client] <= 3.0
    summary = json.loads((out / r["run"] / "summary.json").read_text())
    assert all(a["kept"] > 0 for a in summary["anonymization"])


def test_row_reads_a_run_summary(tmp_path) -> None:
    from fedlab.runs.study import aggregate, row

    summary = {
        "target": "Black",
        "final_target_acc": 0.8,
        "final_group_effect": 0.01,
        "final_client_own_acc": {"a": 0.7, "b": 0.9},
        "final_pooled_fairness": {"race": {"spd": 0.2}, "sex": {"spd": 0.1, "eq_opp_diff": -0.05}},
        "final_target_fairness": {"sex": {"spd": 0.3, "eq_opp_diff": 0.0}},
        "dp": {"enabled": True, "max_epsilon": 2.9, "delta": 0.001, "budget_exhausted": {"a": True}},
        "anonymization": [{"suppressed": 3}, {"suppressed": 4}],
        "seconds": 1.0,
    }
    r = row(Cell("fedavg", 3.0, "k=10", 0), summary, tmp_path / "run")
    assert r["fairness_attribute"] == "sex" and r["spd"] == 0.1 and r["target_spd"] == 0.3
    assert r["epsilon_spent"] == 2.9 and r["clients_exhausted"] == 1 and r["rows_suppressed"] == 7
    assert r["mean_client_own_acc"] == pytest.approx(0.8)
    runs = pd.DataFrame(
        [r, {**r, "seed": 1, "accuracy": 0.6}, {**r, "epsilon_target": None}], columns=COLUMNS
    )
    table = aggregate(runs)
    assert len(table) == 2 and table["accuracy_mean"].iloc[0] == pytest.approx(0.7)
    assert table["epsilon_target"].isna().iloc[1]


@pytest.mark.slow
def test_small_grid_study(tmp_path) -> None:
    base = with_embedded_adult(load_simulation_config(None, TINY), tmp_path / "cache")
    cells = grid(["fedavg", "fedka"], [None, 3.0], ["", "k=10"], [0, 1])
    _, runs, table = run_study(base, cells, tmp_path / "study")
    assert len(runs) == 16 and len(table) == 8 and (table["seeds"] == 2).all()
    assert runs.loc[runs["epsilon_target"].isna(), "epsilon_spent"].isna().all()
