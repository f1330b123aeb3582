"""Audit conclusions an auditor can trust (issue 24): the favourable outcome, near-trivial models,
small groups, judged changes, the shared protected syntax, exported predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from audits.datasets.protected import normalize, resolve_mapping
from audits.measures.fairness import group_fairness
from audits.measures.utility import utility_context
from fedlab.core.errors import ConfigError, DataError
from fedlab.metrics.group_rates import group_fairness_fast
from fedlab.metrics.judge import IMPROVEMENT, TOO_FEW, TRIVIAL, judge_change
from fedlab.report.build import build_report
from tests.conftest import shared_file

SCHEMA = Path(__file__).resolve().parents[1] / "audits" / "datasets" / "data" / "compas_recid.toml"


# ----------------------------------------------------------------------------- protected syntax
@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"race": "Caucasian"}, {"race": "Caucasian"}),
        ({"race": ["Caucasian", "Asian"]}, {"race": ["Caucasian", "Asian"]}),
        (["race:Caucasian"], {"race": "Caucasian"}),
        (["race:Caucasian|Asian", "sex"], {"race": ["Caucasian", "Asian"], "sex": []}),
        ({"grade": 1}, {"grade": "1"}),
        ({"grade": 1.0}, {"grade": "1"}),
    ],
)
def test_one_protected_syntax(spec, expected) -> None:
    assert normalize(spec) == expected


def test_multi_valued_without_privileged_is_one_line_error() -> None:
    frame = pd.DataFrame({"race": ["a", "b", "c", "a"], "sex": ["M", "F", "M", "M"]})
    assert resolve_mapping({"sex": []}, frame, "t.csv") == {"sex": "M"}  # two values: most frequent
    with pytest.raises(DataError, match=r"t.csv: protected column 'race' has 3 values .*race:a"):
        resolve_mapping({"race": []}, frame, "t.csv")
    with pytest.raises(ConfigError):
        normalize("race")


def test_federation_config_accepts_the_schema_forms(tmp_path: Path) -> None:
    from fedlab.config import FederationConfig
    from fedlab.data.tabular import _privileged

    frame = pd.DataFrame({"race": ["Caucasian", "Asian", "Other"], "y": [1, 0, 1]})
    for form in ({"race": "Caucasian"}, ["race:Caucasian|Asian"], {"race": ["Caucasian", "Asian"]}):
        cfg = FederationConfig(name="tabular", csv="x.csv", protected=form, positive_label=1)
        assert _privileged(frame, cfg.protected, tmp_path / "x.csv")["race"] in (
            "Caucasian",
            ["Caucasian", "Asian"],
        )
    with pytest.raises(DataError, match="has 3 values"):
        _privileged(frame, ["race"], tmp_path / "x.csv")


# ----------------------------------------------------------------------------- favourable outcome
def _rates(df: pd.DataFrame, mask: np.ndarray, fav: int) -> tuple[float, float]:
    """Selection rate and TPR of the favourable outcome in one group, plain pandas."""
    g = df[mask]
    sr = (g["y_pred"] == fav).mean()
    tpr = (g.loc[g["y_true"] == fav, "y_pred"] == fav).mean()
    return float(sr), float(tpr)


def test_favourable_zero_flips_every_rate_and_fast_path_agrees() -> None:
    rng = np.random.default_rng(3)
    n = 500
    groups = pd.Series(rng.choice(["Caucasian", "Black", "Asian", "Hispanic"], n, p=[0.4, 0.4, 0.05, 0.15]))
    y = rng.integers(0, 2, n)
    p = np.where(rng.random(n) < 0.7, y, 1 - y)
    privileged = ["Caucasian", "Asian"]
    out = group_fairness(y, p, groups, privileged, favourable=0, min_group_size=30)
    df = pd.DataFrame({"y_true": y, "y_pred": p})
    priv = groups.isin(privileged).to_numpy()
    sr_p, tpr_p = _rates(df, priv, 0)
    sr_u, tpr_u = _rates(df, ~priv, 0)
    assert out["spd"] == pytest.approx(sr_p - sr_u, abs=1e-12)
    assert out["disparate_impact"] == pytest.approx(sr_u / sr_p, abs=1e-12)
    assert out["eq_opp_diff"] == pytest.approx(tpr_p - tpr_u, abs=1e-12)
    assert out["n_small_groups"] == 1 and out["n_groups"] == 4  # Asian (~25 rows) left out
    fast = group_fairness_fast(y, p, groups, privileged, favourable=0, min_group_size=30)
    for key, value in out.items():
        assert fast[key] == pytest.approx(value, abs=1e-12, nan_ok=True), key


# ----------------------------------------------------------------------------- near-trivial models
def test_constant_predictor_is_flagged_and_never_judged_good() -> None:
    y = np.array([0] * 79 + [1] * 21)
    ctx = utility_context(y, np.zeros_like(y))
    assert ctx["degenerate"] and "predicts class 0 for 100.0 % of rows" in ctx["degenerate_reason"]
    assert ctx["majority_rate"] == pytest.approx(0.79)
    # a gap that "shrinks" to 0 over 5 seeds: real, but the model is constant -> never GOOD
    before = {s: 0.20 + 0.01 * s for s in range(5)}
    after = dict.fromkeys(range(5), 0.0)
    j = judge_change(before, after, "abs", near_trivial=ctx["degenerate_reason"])
    assert j.verdict == TRIVIAL and j.severity != "good"
    assert judge_change(before, after, "abs").verdict == IMPROVEMENT
    assert judge_change({0: 0.2, 1: 0.3}, {0: 0.0, 1: 0.0}, "abs").verdict == TOO_FEW


def _fake_audit(path: Path, constant: bool) -> Path:
    """A 3-seed audit whose k=10 model predicts 0 for everyone: its EOD gap shrinks to 0."""
    path.mkdir(parents=True)
    rows = []
    for label, family, k in (("baseline", "baseline", 1), ("k=10", "k", 10)):
        for seed in range(3):
            anon = family != "baseline"
            rows.append(
                {
                    "cell_id": f"all__{label}__s{seed}", "client": "all", "privacy_model": label,
                    "family": family, "k": k, "l": None, "t": None,
                    "algorithm": "optimal" if anon else "none", "classifier": "hgb", "seed": seed,
                    "status": "ok", "anon_levels": "{}",
                    "accuracy": 0.789 if anon and constant else 0.83 + 0.001 * seed,
                    "balanced_accuracy": 0.5 if anon and constant else 0.70 + 0.002 * seed,
                    "f1": 0.0 if anon and constant else 0.45 + 0.01 * seed,
                    "positive_rate": 0.0 if anon and constant else 0.18,
                    "majority_rate": 0.789, "prevalence": 0.211,
                    "near_trivial": 1.0 if anon and constant else 0.0,
                    "near_trivial_reason": "predicts class 0 for 100.0 % of rows" if anon and constant
                    else "",
                    "sex_spd": 0.0 if anon else 0.10 + 0.01 * seed,
                    "sex_eq_opp_diff": 0.0 if anon else 0.20 + 0.01 * seed,
                    "sex_disparate_impact": 1.0 if anon else 0.7, "sex_avg_odds_diff": 0.0 if anon else 0.1,
                    "sex_sr_priv": 0.5, "sex_sr_unpriv": 0.5 if anon else 0.35,
                    "sex_n_priv": 200.0, "sex_n_unpriv": 100.0,
                }
            )  # fmt: skip
    pd.DataFrame(rows).to_csv(path / "results.csv", index=False)
    summary = {"dataset": {"name": "toy", "rows": 1000, "positive_rate": 0.211, "target": "recid",
                           "positive_label": "1", "favourable_label": "0", "favourable_is_positive": False,
                           "protected": {"sex": "Male"}},
               "schema": {"positive_label": 1, "favourable_label": 0}}  # fmt: skip
    (path / "summary.json").write_text(json.dumps(summary))
    return path


def test_near_trivial_cell_never_gets_a_good_fairness_finding(tmp_path: Path) -> None:
    report = build_report(_fake_audit(tmp_path / "a", constant=True))
    fair = [f for s in report.sections for f in s.findings if f.topic.startswith("fairness")]
    assert fair and all(f.severity != "good" for f in fair)
    assert any("near-trivial" in f.text for f in fair)
    trivial = [f for f in report.key_findings if f.topic == "near-trivial"]
    assert trivial and "majority-class rate 0.789" in trivial[0].text
    assert "favourable outcome: recid = 0" in fair[0].text and "privileged: sex = Male" in fair[0].text
    # the same numbers from a working model are an improvement (GOOD): the flag is what changed
    good = build_report(_fake_audit(tmp_path / "b", constant=False))
    assert any(f.severity == "good" for s in good.sections for f in s.findings if f.topic.startswith("fair"))


# ----------------------------------------------------------------------------- COMPAS, recomputed
def test_compas_recid_report_equals_plain_pandas_from_exported_predictions(tmp_path: Path) -> None:
    """two_year_recid = 1 is unfavourable: DI, equal opportunity and SPD recomputed from --export."""
    from audits.experiment.grid import AuditGrid
    from audits.experiment.run import run_audit

    csv = shared_file("compas", "compas-scores-two-years.csv")
    grid = AuditGrid(csv=str(csv), schema_path=str(SCHEMA), models=["k"], ks=[1, 10],
                     algorithms=["optimal"], classifiers=["logreg"], seeds=[0], individual_rows=100,
                     k_neighbors=10, export=True)  # fmt: skip
    run = run_audit(grid, tmp_path / "run", progress=False, command=["test"])
    results = pd.read_csv(run / "results.csv")
    summary = json.loads((run / "summary.json").read_text())
    assert summary["dataset"]["favourable_label"] == "0"
    assert summary["dataset"]["protected"] == {"sex": "Male", "race": "Caucasian"}
    config = (run / "config.toml").read_text()
    assert str(csv.resolve()) in config and str(SCHEMA.resolve()) in config  # runs from anywhere
    for row in results.to_dict("records"):
        pred = pd.read_csv(run / "exports" / f"{row['cell_id']}__predictions.csv")
        fav = (pred["y_pred"] == 0).astype(int)  # favourable = predicted no re-offence
        real_fav = pred["y_true"] == 0
        for attr, privileged in (("sex", "Male"), ("race", "Caucasian")):
            priv = pred[attr] == privileged
            sr_p, sr_u = fav[priv].mean(), fav[~priv].mean()
            tpr_p, tpr_u = fav[priv & real_fav].mean(), fav[~priv & real_fav].mean()
            assert abs(row[f"{attr}_spd"] - (sr_p - sr_u)) < 1e-9
            assert abs(row[f"{attr}_disparate_impact"] - sr_u / sr_p) < 1e-9
            assert abs(row[f"{attr}_eq_opp_diff"] - (tpr_p - tpr_u)) < 1e-9
        assert (run / "exports" / f"{row['cell_id'].rsplit('__', 2)[0]}__s0__train.csv").is_file()
    sizes = json.loads(results["race_group_sizes"].iloc[0])
    assert sizes["Native American"] < 30 and results["race_n_small_groups"].iloc[0] >= 1


# ----------------------------------------------------------------------------- bad input: one line
def _schema(tmp_path: Path, protected: str, extra: str = "") -> Path:
    path = tmp_path / "s.toml"
    path.write_text(
        'name = "toy"\ntarget = "y"\npositive_label = 1\nquasi_identifiers = ["age"]\n'
        f"protected = {protected}\n{extra}\n[hierarchies]\nage = {{ widths = [10, 20] }}\n"
    )
    return path


def _csv(tmp_path: Path, y: list, age: list | None = None) -> Path:
    n = len(y)
    frame = pd.DataFrame({"age": age or [20 + i % 40 for i in range(n)], "y": y,
                          "race": [["a", "b", "c"][i % 3] for i in range(n)]})  # fmt: skip
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    return path


def test_schema_input_errors_are_one_line(tmp_path: Path) -> None:
    from audits.datasets.load import load_dataset

    ys = [i % 2 for i in range(60)]
    with pytest.raises(DataError, match=r"protected column 'race' has 3 values \(a, b, c\)"):
        load_dataset(csv=_csv(tmp_path, ys), schema=_schema(tmp_path, '["race"]'))
    ds = load_dataset(csv=_csv(tmp_path, ys), schema=_schema(tmp_path, '["race:a|b"]'))
    assert ds.schema.protected == {"race": ["a", "b"]}
    with pytest.raises(DataError, match=r"target 'y' has 3 values .*multiclass"):
        load_dataset(csv=_csv(tmp_path, [i % 3 for i in range(60)]), schema=_schema(tmp_path, '{race = "a"}'))
    ok = load_dataset(
        csv=_csv(tmp_path, [i % 3 for i in range(60)]),
        schema=_schema(tmp_path, '{race = "a"}', 'multiclass = "positive_vs_rest"'),
    )
    assert sorted(ok.frame["y"].unique()) == [0, 1, 2]  # kept; the audit binarizes 1 vs rest
    ages = [20.0 + i for i in range(59)] + [float("inf")]
    with pytest.raises(DataError, match=r"column 'age' row 60 holds inf .*expected finite"):
        load_dataset(csv=_csv(tmp_path, ys, ages), schema=_schema(tmp_path, '{race = "a"}'))
    with pytest.raises(DataError, match="favourable_label '7' is not a value of target 'y'"):
        load_dataset(csv=_csv(tmp_path, ys), schema=_schema(tmp_path, '{race = "a"}', "favourable_label = 7"))
