"""The arcolezi2025 protocol: schema additions, paper metrics, grid, compare, attribution, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audits.anonymity.hierarchy import Hierarchy
from audits.datasets.load import load_dataset
from audits.datasets.schema import load_schema
from audits.reproductions.arcolezi2025 import paper_metrics as pm
from audits.reproductions.arcolezi2025.attribution import attribution_table
from audits.reproductions.arcolezi2025.cells import ProtocolSettings, as_text, encode
from audits.reproductions.arcolezi2025.compare import compare, read_published
from audits.reproductions.arcolezi2025.grid_run import PaperGrid, prepare, run_grid
from fedlab.core.errors import DataError
from tests.conftest import shared_file

SCHEMA = Path(__file__).resolve().parents[1] / "audits" / "datasets" / "data" / "compas_arcolezi2025.toml"


def test_intervals_follow_the_paper_and_need_not_nest() -> None:
    h = Hierarchy.from_intervals("x", range(0, 20), [5, 10, 15], low=0, high=100)
    assert list(h.generalize(pd.Series([3, 11]), 1)) == ["[0, 5)", "[10, 15)"]
    assert list(h.generalize(pd.Series([3, 11]), 3)) == ["[0, 15)", "[0, 15)"]
    assert not h.nested and h.height == 4
    with pytest.raises(DataError, match="not in its hierarchy"):
        h.encode(pd.Series([20]))


def test_group_metrics_match_hand_computation() -> None:
    y = np.array([1, 1, 0, 0, 1, 0, 0, 1])
    pred = np.array([1, 0, 1, 0, 1, 1, 0, 0])
    g = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    m = pm.group_metrics(y, pred, g)
    assert m["SPD"] == pytest.approx(0.5 - 0.5)
    assert m["EOD"] == pytest.approx(0.5 - 0.5)
    assert m["PED"] == pytest.approx(0.5 - 0.5)
    assert m["MAD"] == pytest.approx(0.5 - 0.5)
    assert m["PRD"] == pytest.approx(0.5 - 0.5)


def test_individual_metrics_zero_for_constant_predictions() -> None:
    rng = np.random.default_rng(0)
    X = rng.integers(0, 5, size=(150, 3))
    out = pm.individual_metrics(np.full(150, 0.3), X, k=10)
    assert out == {"ASF": 0.0, "ALF": 0.0, "NCF": 0.0}
    varied = pm.individual_metrics(rng.random(150), X, k=10)
    assert varied["NCF"] > 0 and varied["ASF"] > 0 and varied["ALF"] > 0


def test_label_encoding_is_sorted_strings_over_train_and_test() -> None:
    tr = pd.DataFrame({"a": ["*", "*"], "b": [10, 9]})
    te = pd.DataFrame({"a": ["Male", "Female"], "b": [2, 10]})
    X_tr, X_te = encode(tr, te, "label")
    assert X_tr[:, 0].tolist() == [0, 0] and X_te[:, 0].tolist() == [2, 1]
    assert X_tr[:, 1].tolist() == [0, 2] and X_te[:, 1].tolist() == [1, 0]  # "10" < "2" < "9"


def test_label_encoding_per_distinct_value_equals_row_by_row_strings() -> None:
    # 5 and 5.0 (and 0.0 / -0.0) hash equal but print differently: they must stay distinct codes
    col = pd.Series([5, 5.0, "5", None, np.nan, -0.0, 0.0, "x"], dtype=object)
    expected = ["5", "5.0", "5", "nan", "nan", "-0.0", "0.0", "x"]
    assert as_text(col).tolist() == expected
    X, _ = encode(pd.DataFrame({"c": col}), pd.DataFrame({"c": col[:0]}), "label")
    assert X[:, 0].tolist() == np.unique(np.array(expected), return_inverse=True)[1].tolist()
    strings = pd.Series(["b", None, "a", "b"], dtype=object)
    assert as_text(strings).tolist() == ["b", "nan", "a", "b"]


def _tiny(tmp_path: Path, extra: str = "") -> tuple[Path, Path]:
    rng = np.random.default_rng(1)
    n = 300
    df = pd.DataFrame(
        {
            "sex": rng.choice(["Male", "Female"], n),
            "age": rng.integers(18, 70, n),
            "score": rng.integers(1, 11, n),
            "junk": [np.nan] * n,
        }
    )
    csv = tmp_path / "d.csv"
    df.to_csv(csv, index=False)
    (tmp_path / "sex.csv").write_text("Male,*\nFemale,*\n")
    schema = tmp_path / "s.toml"
    schema.write_text(
        'name = "tiny"\nuse_columns = ["sex", "age", "score"]\ntarget = "score"\nthreshold = "median"\n'
        'quasi_identifiers = ["sex", "age"]\nprotected = { sex = "Male" }\n' + extra + "[hierarchies]\n"
        'sex = { file = "sex.csv" }\nage = { intervals = { steps = [5, 10, 15], low = 0, high = 100 } }\n'
    )
    return csv, schema


def test_schema_threshold_use_columns_and_counts(tmp_path: Path) -> None:
    csv, schema = _tiny(tmp_path, 'filters = [{ column = "age", min = 20, max = 60 }]\n')
    ds = load_dataset(csv=csv, schema=load_schema(schema))
    assert set(ds.frame["score"].unique()) == {0, 1}
    assert ds.row_counts["filtered_out"] > 0 and ds.row_counts["missing_dropped"] == 0
    assert ds.frame["age"].between(20, 60).all()


def test_grid_runs_with_logreg_and_compare_finds_itself_exact(tmp_path: Path) -> None:
    csv, schema = _tiny(tmp_path)
    st = ProtocolSettings(classifier="logreg")
    data, _ = prepare(csv, schema, st)
    res = run_grid(data, PaperGrid(ks=[1, 5], families=["k", "t"], ts=[0.5], seeds=[0, 1]), st)
    assert (res["status"] == "ok").all() and len(res) == 2 * 4
    table = compare(res, res.drop(columns=["status"]))
    assert (table["verdict"] == "exact").all()
    attr = attribution_table(res)
    assert set(attr["qi"]) == {"sex", "age"}
    k5 = res[(res.k_parameter == 5) & (res.method == "k-anonymity")]
    assert all(json.loads(s)["age"] >= 0 for s in k5["levels"])


def test_value_outside_hierarchy_is_one_error_before_any_cell(tmp_path: Path) -> None:
    csv, schema = _tiny(tmp_path)
    text = schema.read_text().replace("low = 0, high = 100 }", 'low = 0, high = 100, leaves = "range" }')
    schema.write_text(text)
    with pytest.raises(DataError, match=r"column .age. value .69.*not in its hierarchy"):
        prepare(csv, schema, ProtocolSettings(classifier="logreg"))
    data, _ = prepare(csv, schema, ProtocolSettings(classifier="logreg", hierarchy_gaps="repair"))
    assert "69" in set(data.hierarchies["age"].leaves)


def test_absent_privileged_value_is_an_error(tmp_path: Path) -> None:
    csv, schema = _tiny(tmp_path)
    schema.write_text(schema.read_text().replace('sex = "Male" }', 'sex = "male" }'))
    with pytest.raises(DataError, match="privileged value 'male'"):
        prepare(csv, schema, ProtocolSettings(classifier="logreg"))


def test_compas_k1_equals_published_rows(shared_data: Path) -> None:
    pytest.importorskip("xgboost")
    csv = shared_file("compas", "compas-scores-two-years.csv")
    pub = read_published(shared_file("published", "arcolezi2025_compas_results.csv"))
    st = ProtocolSettings(hierarchy_gaps="paper")
    data, info = prepare(csv, SCHEMA, st)
    assert info["rows"]["rows"] == 5278 and info["rows"]["threshold"] == 3.0
    res = run_grid(data, PaperGrid(ks=[1, 2, 100], families=["k"], seeds=[0, 11]), st)
    table = compare(res, pub, metrics=["SPD", "EOD", "ACC", "NCF"])
    k1 = table[table.k_parameter == 1]
    assert (k1[k1.metric != "NCF"]["exact_share"] == 1.0).all()
    merged = res.merge(pub, on=["SEED", "protected_att", "method", "k_parameter"], suffixes=("", "_p"))
    assert (merged["NCF"] - merged["NCF_p"]).abs().max() < 1e-3
    s11 = merged[(merged.SEED == 11) & merged.k_parameter.isin([2, 100])]
    assert len(s11) == 4 and ((s11["SPD"] - s11["SPD_p"]).abs() <= 1e-6).all()
    assert ((s11["ACC"] - s11["ACC_p"]).abs() <= 1e-6).all()
    failed = res[(res.SEED == 0) & (res.k_parameter == 100)]
    assert failed["status"].str.contains("not in its hierarchy").all()  # the paper's KeyError


def test_switches_and_report_of_a_protocol_run(tmp_path: Path) -> None:
    from audits.reproductions.arcolezi2025.switches import run_switches, switch_table
    from fedlab.core.rundir import write_json_atomic
    from fedlab.report import write_report

    csv, schema = _tiny(tmp_path)
    st = ProtocolSettings(classifier="logreg")
    data, info = prepare(csv, schema, st)
    table = switch_table(run_switches(data, st, [5], [0, 1, 2], 1))
    assert set(table["verdict"]) <= {"paper setting", "protocol effect", "within seed noise", "too few seeds"}
    paper = table[table["verdict"] == "paper setting"]
    assert (paper["diff_vs_paper"].dropna().abs() < 1e-12).all() and paper["diff_vs_paper"].notna().any()
    run = tmp_path / "run"
    run.mkdir()
    res = run_grid(data, PaperGrid(ks=[1, 5], families=["k"], seeds=[0, 1]), st)
    res.to_csv(run / "results.csv", index=False)
    compare(res, res.drop(columns=["status"])).to_csv(run / "compare.csv", index=False)
    table.to_csv(run / "switches.csv", index=False)
    attribution_table(res).to_csv(run / "attribution.csv", index=False)
    write_json_atomic(run / "summary.json", {"protocol": "arcolezi2025", "data": info, "failed": []})
    out, _ = write_report(run, "md")
    text = out.read_text()
    assert "Reproduction: published vs fedlab" in text and "Protocol switches" in text
    assert "Attribution" in text


def test_chained_hierarchy_follows_each_nodes_first_leaf() -> None:
    h = Hierarchy.from_intervals("x", range(0, 40), [5, 10, 15])
    c = h.chained()
    assert c.nested and list(h.generalize(pd.Series([16]), 3)) == ["[15, 30)"]
    assert list(c.generalize(pd.Series([16, 20]), 3)) == ["[0, 15)", "[15, 30)"]  # via [10, 20) -> leaf 10


def test_anjana_l_step_generalizes_until_every_class_is_diverse() -> None:
    from audits.reproductions.arcolezi2025.anjana_steps import continue_greedy

    rng = np.random.default_rng(3)
    train = pd.DataFrame({"a": rng.integers(0, 40, 400), "b": rng.choice(["u", "v"], 400)})
    train["y"] = (train["a"] > 30).astype(int)
    hier = {
        "a": Hierarchy.from_intervals("a", range(0, 40), [5, 10, 20]),
        "b": Hierarchy("b", [["u", "*"], ["v", "*"]]),
    }
    kept, levels = continue_greedy(train, train.index, {"a": 0, "b": 0}, hier, ["a", "b"], "y", "l", 2, 0.2)
    part = train.loc[kept]
    labels = [hier[q].generalize(part[q], levels[q]).to_numpy() for q in ("a", "b")]
    assert part.groupby(labels)["y"].nunique().min() >= 2 and levels["a"] >= 1
