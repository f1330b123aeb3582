"""k-anonymity, l-diversity and t-closeness: hand-computed cases and agreement with pycanon."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pycanon.anonymity as pc
import pytest

from audits.anonymity.hierarchy import Hierarchy
from audits.anonymity.verify import equivalence_classes, k_anonymity, l_diversity, t_closeness
from fedlab.core.errors import ConfigError, DataError


@pytest.fixture
def toy() -> pd.DataFrame:
    # class x: sensitive 1, 1, 2; class y: 1, 2, 3, 3 (index deliberately not 0..n-1)
    return pd.DataFrame(
        {"q": list("xxxyyyy"), "z": ["*"] * 7, "s": [1, 1, 2, 1, 2, 3, 3]},
        index=[10, 11, 12, 20, 21, 22, 23],
    )


def test_equivalence_classes(toy: pd.DataFrame) -> None:
    ids = equivalence_classes(toy, ["q", "z"])
    assert list(ids.index) == list(toy.index)
    assert ids.tolist() == [0, 0, 0, 1, 1, 1, 1]


def test_k(toy: pd.DataFrame) -> None:
    assert k_anonymity(toy, ["q"]) == 3
    assert k_anonymity(toy, ["z"]) == 7
    per = k_anonymity(toy, ["q"], per_class=True)
    assert per["size"].tolist() == [3, 4] and per["q"].tolist() == ["x", "y"]


def test_l_distinct_entropy_recursive(toy: pd.DataFrame) -> None:
    assert l_diversity(toy, ["q"], "s") == 2
    h_x = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))
    assert l_diversity(toy, ["q"], "s", kind="entropy") == pytest.approx(math.exp(h_x))
    per = l_diversity(toy, ["q"], "s", kind="entropy", per_class=True)
    assert per["l"].tolist() == pytest.approx([math.exp(h_x), math.exp(1.5 * math.log(2))])
    # c=2: x (2,1): 2<2*3 ok, 2<2*1 no -> 1; y (2,1,1): l=2 ok (2<4), l=3 no (2<2) -> 2
    assert l_diversity(toy, ["q"], "s", kind="recursive", c=2) == 1
    assert l_diversity(toy, ["q"], "s", kind="recursive", c=2, per_class=True)["l"].tolist() == [1, 2]
    assert l_diversity(toy, ["q"], "s", kind="recursive", c=3) == 2
    with pytest.raises(ConfigError, match="needs a constant c"):
        l_diversity(toy, ["q"], "s", kind="recursive")


def test_t_ordered_equal_hierarchical(toy: pd.DataFrame) -> None:
    # p = (3/7, 2/7, 2/7); x: q = (2/3, 1/3, 0), y: q = (1/4, 1/4, 1/2)
    assert t_closeness(toy, ["q"], "s", distance="ordered") == pytest.approx(11 / 42)
    per = t_closeness(toy, ["q"], "s", distance="ordered", per_class=True)
    assert per["t"].tolist() == pytest.approx([11 / 42, 11 / 56])
    assert t_closeness(toy, ["q"], "s", distance="equal") == pytest.approx(2 / 7)
    assert t_closeness(toy, ["q"], "s") == pytest.approx(11 / 42)  # numeric -> ordered by default
    # order reversed: same EMD (symmetric); custom order changes the ground distance
    assert t_closeness(toy, ["q"], "s", distance="ordered", order=[3, 2, 1]) == pytest.approx(11 / 42)
    # hierarchy {1, 2} -> low, {3} -> high: x moves 6/21 across the root -> 2/7; y 6/28 -> 3/14
    h = Hierarchy("s", [["1", "low", "*"], ["2", "low", "*"], ["3", "high", "*"]])
    assert t_closeness(toy, ["q"], "s", distance="hierarchical", hierarchy=h) == pytest.approx(2 / 7)
    with pytest.raises(ConfigError, match="needs its hierarchy"):
        t_closeness(toy, ["q"], "s", distance="hierarchical")
    assert t_closeness(toy, ["z"], "s") == 0.0


def test_hierarchical_differs_from_equal() -> None:
    df = pd.DataFrame({"q": ["x", "x", "y", "y"], "s": ["a", "b", "c", "d"]})
    h = Hierarchy("s", [["a", "X", "*"], ["b", "X", "*"], ["c", "Y", "*"], ["d", "Y", "*"]])
    assert t_closeness(df, ["q"], "s", distance="equal") == pytest.approx(0.5)
    assert t_closeness(df, ["q"], "s", distance="hierarchical", hierarchy=h) == pytest.approx(0.5)
    df2 = pd.DataFrame({"q": ["x", "x", "y", "y"], "s": ["a", "c", "b", "d"]})
    assert t_closeness(df2, ["q"], "s", distance="hierarchical", hierarchy=h) == pytest.approx(0.25)


def test_suppressed_rows() -> None:
    df = pd.DataFrame({"a": ["1", "1", "*", "*", "*"], "b": ["x", "x", "*", "*", "*"], "s": list("ababa")})
    assert k_anonymity(df, ["a", "b"]) == 2
    assert k_anonymity(df, ["a", "b"], ignore_suppressed=True) == 2
    assert k_anonymity(df.iloc[:3], ["a", "b"]) == 1
    assert k_anonymity(df.iloc[:3], ["a", "b"], ignore_suppressed=True) == 2


def test_errors() -> None:
    df = pd.DataFrame({"a": [1], "s": [1]})
    with pytest.raises(DataError, match="column 'b' not in the table"):
        k_anonymity(df, ["b"])
    with pytest.raises(DataError, match="empty"):
        k_anonymity(df.iloc[:0], ["a"])
    with pytest.raises(ConfigError, match="unknown l-diversity kind"):
        l_diversity(df, ["a"], "s", kind="nope")  # type: ignore[arg-type]
    with pytest.raises(DataError, match="not in the given order"):
        t_closeness(df, ["a"], "s", distance="ordered", order=[2, 3])


def _agree_with_pycanon(df: pd.DataFrame, qis: list[str], sens: str) -> None:
    df = df.reset_index(drop=True)  # pycanon mixes labels and positions otherwise
    assert k_anonymity(df, qis) == pc.k_anonymity(df, qis)
    assert l_diversity(df, qis, sens) == pc.l_diversity(df, qis, [sens])
    ent = l_diversity(df, qis, sens, kind="entropy")
    assert pc.entropy_l_diversity(df, qis, [sens]) in {math.floor(ent - 1e-9), math.floor(ent + 1e-9)}
    assert t_closeness(df, qis, sens) == pytest.approx(pc.t_closeness(df, qis, [sens]), abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_random_tables_agree_with_pycanon(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 300))
    df = pd.DataFrame(
        {
            "a": rng.integers(0, 4, n),
            "b": rng.choice(["u", "v", "w"], n),
            "num": rng.integers(0, 7, n),
            "cat": rng.choice(["p", "q", "r", "s"], n),
        },
        index=rng.permutation(n) + 100,
    )
    _agree_with_pycanon(df, ["a", "b"], "num")
    _agree_with_pycanon(df, ["a", "b"], "cat")
    _agree_with_pycanon(df, ["a"], "cat")


def test_adult_subsets_agree_with_pycanon(shared_data) -> None:  # type: ignore[no-untyped-def]
    from audits.datasets.load import load_dataset

    ds = load_dataset("adult")
    qis = ["age", "education", "sex", "race"]
    gen = ds.frame.copy()
    gen["age"] = ds.hierarchies["age"].generalize(gen["age"], 3)
    gen["education"] = ds.hierarchies["education"].generalize(gen["education"], 1)
    for seed in range(3):
        sub = gen.sample(1500, random_state=seed)
        _agree_with_pycanon(sub, qis, "salary-class")
        _agree_with_pycanon(sub, qis, "hours-per-week")


def test_full_adult_verification_is_fast() -> None:
    import time

    from audits.datasets.load import load_dataset

    ds = load_dataset("adult")
    qis = ds.schema.quasi_identifiers
    t0 = time.perf_counter()
    k_anonymity(ds.frame, qis)
    l_diversity(ds.frame, qis, "salary-class")
    t_closeness(ds.frame, qis, "salary-class")
    assert time.perf_counter() - t0 < 3.0  # generous: shared CI machines
