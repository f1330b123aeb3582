"""Hierarchies: ARX CSVs, generated intervals, vectorized recoding, hierarchical EMD."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import shared_file

from audits.anonymity.hierarchy import Hierarchy
from fedlab.core.errors import DataError


def test_real_adult_age_csv() -> None:
    h = Hierarchy.from_csv(shared_file("adult", "hierarchies", "age.csv"), "age")
    assert h.height == 6
    assert "[15, 20[" in set(h.labels[1])  # quoted intervals with a comma survive
    assert list(h.labels[h.height]) == ["*"]
    out = h.generalize(pd.Series([17, 20, 44]), 1)
    assert out.tolist() == ["[15, 20[", "[20, 25[", "[40, 45["]


@pytest.mark.parametrize(
    "name", ["country", "education", "marital", "occupation", "race", "sex", "workclass"]
)
def test_real_adult_csvs_load(name: str) -> None:
    h = Hierarchy.from_csv(shared_file("adult", "hierarchies", f"{name}.csv"), name)
    assert list(h.labels[-1]) == ["*"] and h.height >= 1


def test_semicolon_csv_and_missing_top(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("a;X\nb;X\nc;Y\n", encoding="utf-8")
    h = Hierarchy.from_csv(path, "col")
    assert h.height == 2  # a "*" level is appended when the last level is not a single root
    assert h.generalize(pd.Series(["c", "a"]), 1).tolist() == ["Y", "X"]
    assert h.generalize(pd.Series(["c", "a"]), 2).tolist() == ["*", "*"]


def test_from_widths() -> None:
    h = Hierarchy.from_widths("age", [17, 23, 38, 61], [5, 10, 20])
    assert h.height == 4
    s = pd.Series([17, 23, 38, 61], index=[10, 11, 12, 13])
    assert h.generalize(s, 0).tolist() == ["17", "23", "38", "61"]
    assert h.generalize(s, 1).tolist() == ["[15, 20[", "[20, 25[", "[35, 40[", "[60, 65["]
    assert h.generalize(s, 3).tolist() == ["[0, 20[", "[20, 40[", "[20, 40[", "[60, 80["]
    assert h.generalize(s, 4).tolist() == ["*"] * 4
    assert list(h.generalize(s, 2).index) == [10, 11, 12, 13]
    with pytest.raises(DataError, match="divide"):
        Hierarchy.from_widths("age", [1, 2], [5, 7])


def test_numeric_keys_match() -> None:
    h = Hierarchy("n", [["1", "low", "*"], ["2", "low", "*"]])
    assert h.generalize(pd.Series([1.0, 2.0]), 1).tolist() == ["low", "low"]
    assert h.generalize(pd.Series(["1", "2"]), 1).tolist() == ["low", "low"]


def test_unknown_and_missing_values() -> None:
    h = Hierarchy("city", [["Paris", "France"], ["Rome", "Italy"]])
    with pytest.raises(DataError, match=r"column 'city': value 'Oslo' is not in its hierarchy"):
        h.generalize(pd.Series(["Paris", "Oslo"]), 1)
    with pytest.raises(DataError, match="missing value"):
        h.generalize(pd.Series(["Paris", None]), 1)
    with pytest.raises(DataError, match="outside"):
        h.generalize(pd.Series(["Paris"]), 5)


def test_malformed_hierarchies(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="two parents"):
        Hierarchy("c", [["a", "X", "P"], ["b", "X", "Q"]])
    with pytest.raises(DataError, match="listed twice"):
        Hierarchy("c", [["a", "X"], ["a", "Y"]])
    with pytest.raises(DataError, match="not found"):
        Hierarchy.from_csv(tmp_path / "none.csv", "c")


def test_generalize_is_fast_on_big_series() -> None:
    h = Hierarchy.from_widths("v", range(100), [5, 10, 20, 40])
    s = pd.Series(np.random.default_rng(0).integers(0, 100, 200_000))
    out = h.generalize(s, 2)
    assert len(out) == 200_000 and out.iloc[0].startswith("[")


def _tree() -> Hierarchy:
    return Hierarchy("s", [["a", "X", "*"], ["b", "X", "*"], ["c", "Y", "*"], ["d", "Y", "*"]])


def test_ground_distance() -> None:
    h = _tree()
    assert h.ground_distance("a", "a") == 0.0
    assert h.ground_distance("a", "b") == 0.5
    assert h.ground_distance("a", "d") == 1.0


def test_hierarchical_emd_hand_computed() -> None:
    h = _tree()
    p = np.full(4, 0.25)
    # move 0.5 of mass from {c, d} to {a, b}: distance 1 -> 0.5
    assert h.emd(np.array([0.5, 0.5, 0, 0]) - p)[0] == pytest.approx(0.5)
    # move 0.25 within X and 0.25 within Y: distance 1/2 each -> 0.25
    assert h.emd(np.array([0.5, 0, 0.5, 0]) - p)[0] == pytest.approx(0.25)
    assert h.emd(np.zeros(4))[0] == 0.0
