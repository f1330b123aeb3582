"""Anonymization: every algorithm's output re-verifies, keeps row identity, and fails clearly."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audits.anonymity import ALGORITHMS, AnonymizationResult, PrivacyModel, anonymize
from audits.anonymity.encoding import encode
from audits.anonymity.hierarchy import Hierarchy
from audits.anonymity.verify import k_anonymity, l_diversity, t_closeness
from fedlab.core.errors import ConfigError, DataError, FedlabError

QIS = ["age", "city", "sex"]
HIER = {
    "age": Hierarchy.from_widths("age", range(0, 40), [5, 10, 20]),
    "city": Hierarchy(
        "city",
        [
            ["Paris", "FR", "EU"],
            ["Lyon", "FR", "EU"],
            ["Rome", "IT", "EU"],
            ["Milan", "IT", "EU"],
            ["Oslo", "NO", "EU"],
        ],
    ),
    "sex": Hierarchy("sex", [["F", "*"], ["M", "*"]]),
}
TOL = 1e-9


def _table(seed: int, n: int, sens_kind: str = "cat") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sens = rng.choice(["flu", "cold", "hiv", "none"], n) if sens_kind == "cat" else rng.integers(0, 5, n)
    return pd.DataFrame(
        {
            "age": rng.integers(0, 40, n),
            "city": rng.choice(list(HIER["city"].leaves), n),
            "sex": rng.choice(["F", "M"], n),
            "disease": sens,
            "payload": rng.normal(size=n),
        },
        index=pd.Index(rng.permutation(n) * 3 + 7, name="row"),
    )


def _check(df: pd.DataFrame, res: AnonymizationResult, model: PrivacyModel, limit: float) -> None:
    out = res.table
    assert out.index.is_unique and out.index.isin(df.index).all()
    assert res.suppressed.isin(df.index).all() and not out.index.isin(res.suppressed).any()
    assert len(out) + len(res.suppressed) == len(df)
    assert len(res.suppressed) <= limit * len(df) + 1e-9
    assert res.metrics["suppressed_rows"] == len(res.suppressed)
    pd.testing.assert_frame_equal(out[["disease", "payload"]], df.loc[out.index, ["disease", "payload"]])
    assert k_anonymity(out, QIS) >= model.k
    if model.l is not None:
        assert l_diversity(out, QIS, "disease", kind=model.l_kind, c=model.c) >= model.l - TOL
    if model.t is not None:
        assert t_closeness(out, QIS, "disease", distance=model.t_distance) <= model.t + TOL
    assert 0.0 <= res.metrics["loss"] <= 1.0


models = st.builds(
    PrivacyModel,
    k=st.integers(1, 6),
    l=st.one_of(st.none(), st.integers(1, 3)),
    l_kind=st.sampled_from(["distinct", "entropy", "recursive"]),
    c=st.just(2.0),
    t=st.one_of(st.none(), st.floats(0.15, 1.0)),
    t_distance=st.sampled_from([None, "equal", "ordered"]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(8, 120),
    model=models,
    limit=st.sampled_from([0.0, 0.1, 0.3]),
    algorithm=st.sampled_from(ALGORITHMS),
    sens_kind=st.sampled_from(["cat", "num"]),
)
def test_outputs_satisfy_model(
    seed: int, n: int, model: PrivacyModel, limit: float, algorithm: str, sens_kind: str
) -> None:
    df = _table(seed, n, sens_kind)
    try:
        res = anonymize(df, QIS, HIER, model, algorithm, limit, "disease")  # type: ignore[arg-type]
    except FedlabError as exc:
        assert "\n" not in str(exc)
        # only legitimately impossible requests may fail: check the fully generalized table
        top = df.assign(age="*", city="EU", sex="*")
        l_ok = (
            model.l is None or l_diversity(top, QIS, "disease", kind=model.l_kind, c=model.c) >= model.l - TOL
        )
        assert model.k > n or not l_ok
        return
    _check(df, res, model, limit)


def _brute_force_best(df: pd.DataFrame, model: PrivacyModel, limit: float) -> float:
    enc = encode(df, QIS, HIER, model, "disease", limit)
    best = np.inf
    for levels in itertools.product(*[range(h + 1) for h in enc.heights]):
        ev = enc.evaluate(levels)
        if ev.ok:
            best = min(best, ev.loss)
    return best


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize(
    "model",
    [
        PrivacyModel(k=3),
        PrivacyModel(k=2, l=2),
        PrivacyModel(k=2, t=0.3),
        PrivacyModel(k=2, l=2, l_kind="entropy"),
    ],
)
def test_optimal_is_optimal(seed: int, model: PrivacyModel) -> None:
    df = _table(seed, 80)
    for limit in (0.0, 0.15):
        res = anonymize(df, QIS, HIER, model, "optimal", limit, "disease")
        assert res.metrics["loss"] == pytest.approx(_brute_force_best(df, model, limit), abs=1e-12)
        greedy = anonymize(df, QIS, HIER, model, "greedy", limit, "disease")
        assert res.metrics["loss"] <= greedy.metrics["loss"] + 1e-12
        _check(df, res, model, limit)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_transform_on_test_split(algorithm: str) -> None:
    df = _table(1, 400)
    train, test = df.iloc[:300], df.iloc[300:]
    res = anonymize(train, QIS, HIER, PrivacyModel(k=5), algorithm, 0.05, "disease")
    moved = res.transform(test)
    assert list(moved.index) == list(test.index) and len(moved) == len(test)
    pd.testing.assert_frame_equal(moved[["disease", "payload"]], test[["disease", "payload"]])
    again = res.transform(train.loc[res.table.index])
    pd.testing.assert_frame_equal(again[QIS], res.table[QIS])  # the same recoding as the table
    published = set(map(tuple, res.table[QIS].to_numpy()))
    if res.levels is not None:
        for q in QIS:
            assert set(moved[q]) <= set(HIER[q].labels[res.levels[q]])
    else:  # Mondrian: rows land in training regions (or coarser ones at unseen branches)
        assert len(set(map(tuple, moved[QIS].to_numpy())) & published) > 0


def test_adult_optimal_end_to_end() -> None:
    from audits.datasets.load import load_dataset

    ds = load_dataset("adult")
    qis = ds.schema.quasi_identifiers
    res = anonymize(ds.frame, qis, ds.hierarchies, PrivacyModel(k=10, l=2), "optimal", 0.2, "salary-class")
    assert k_anonymity(res.table, qis) >= 10 and l_diversity(res.table, qis, "salary-class") >= 2
    assert res.metrics["suppressed_fraction"] <= 0.2
    assert res.levels is not None and set(res.levels) == set(qis)


def test_impossible_requests_fail_fast() -> None:
    df = _table(0, 50)
    with pytest.raises(FedlabError, match="l=5 is impossible"):
        anonymize(df, QIS, HIER, PrivacyModel(k=2, l=5), "optimal", 0.0, "disease")
    with pytest.raises(FedlabError, match="l=5 is impossible"):
        anonymize(df, QIS, HIER, PrivacyModel(k=2, l=5), "mondrian", 0.0, "disease")
    with pytest.raises(FedlabError, match="k=51 is larger"):
        anonymize(df, QIS, HIER, PrivacyModel(k=51), "greedy")
    skew = df.assign(disease=["flu"] * 45 + ["cold"] * 5)
    with pytest.raises(FedlabError, match="not reachable"):
        anonymize(skew, QIS, HIER, PrivacyModel(l=2, l_kind="entropy"), "optimal", 0.0, "disease")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"k": 0},
        {"l": 0},
        {"t": 0.0},
        {"t": 1.5},
        {"l": 2, "l_kind": "recursive"},
        {"l_kind": "x"},
        {"t_distance": "x"},
    ],
)
def test_model_validation(kwargs: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError):
        PrivacyModel(**kwargs)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_bad_inputs_are_one_line_errors(algorithm: str) -> None:
    df = _table(0, 30)
    cases = [
        (df.iloc[:0], DataError, "empty"),
        (df.assign(city=df["city"].where(df.index != df.index[3])), DataError, "missing value"),
        (
            df.assign(city=["Atlantis", *list(df["city"].iloc[1:])]),
            DataError,
            "'Atlantis' is not in its hierarchy",
        ),
        (df.drop(columns=["sex"]), DataError, "column 'sex' not in the table"),
    ]
    for frame, err, text in cases:
        with pytest.raises(err, match=text) as info:
            anonymize(frame, QIS, HIER, PrivacyModel(k=2), algorithm)
        assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="needs a sensitive column"):
        anonymize(df, QIS, HIER, PrivacyModel(k=2, l=2), algorithm)
    with pytest.raises(ConfigError, match="no hierarchy"):
        anonymize(df, QIS, {"age": HIER["age"]}, PrivacyModel(k=2), algorithm)
    with pytest.raises(ConfigError, match="unknown algorithm"):
        anonymize(df, QIS, HIER, PrivacyModel(k=2), "magic")  # type: ignore[arg-type]


def test_result_fields() -> None:
    df = _table(3, 200)
    res = anonymize(df, QIS, HIER, PrivacyModel(k=4), "optimal", 0.1)
    for key in (
        "height",
        "loss",
        "ncp",
        "discernibility",
        "avg_class_size",
        "suppressed_rows",
        "suppressed_fraction",
        "seconds",
        "nodes_checked",
    ):
        assert key in res.metrics
    assert res.table[QIS].map(type).eq(str).all().all()
    assert isinstance(res.suppressed, pd.Index)
