"""Schemas (TOML -> validated Schema) and dataset loading, built-in and user CSV."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from audits.datasets.load import load_dataset
from audits.datasets.schema import Schema, builtin_schema, load_schema
from fedlab.core.errors import ConfigError, DataError


def test_builtin_schemas_are_valid() -> None:
    adult = builtin_schema("adult")
    assert adult.target == "salary-class" and adult.sensitive == "salary-class"
    assert len(adult.quasi_identifiers) == 8
    assert set(adult.hierarchies) >= set(adult.quasi_identifiers)
    german = builtin_schema("german")
    assert german.protected == {"sex": "male", "age-group": ">25"}
    assert german.hierarchies["age"].widths == [5, 10, 20, 40]


def test_unknown_builtin() -> None:
    with pytest.raises(ConfigError, match="unknown built-in dataset 'nope'"):
        builtin_schema("nope")


def _write(tmp_path: Path, text: str, name: str = "s.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """
name = "toy"
target = "y"
positive_label = "yes"
quasi_identifiers = ["age", "city"]
sensitive = "disease"
protected = { sex = "F" }
numeric = ["age"]
categorical = ["city", "sex", "disease", "y"]
na_values = ["?"]
drop = ["id"]
[hierarchies]
age = { widths = [10, 20] }
city = { file = "h/city.csv" }
"""


def _toy(tmp_path: Path) -> Path:
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "city.csv").write_text(
        "Paris;France;*\nLyon;France;*\nRome;Italy;*\n", encoding="utf-8"
    )
    pd.DataFrame(
        {
            "id": range(6),
            "age": [23, 35, 41, 52, 38, 29],
            "city": ["Paris", "Lyon", "Rome", "?", "Paris", "Rome"],
            "sex": list("FMFMFM"),
            "disease": ["flu", "cold", "flu", "hiv", "cold", "flu"],
            "y": ["yes", "no", "yes", "no", "no", "yes"],
        }
    ).to_csv(tmp_path / "toy.csv", index=False)
    return _write(tmp_path, GOOD)


def test_user_csv_and_schema(tmp_path: Path) -> None:
    schema = load_schema(_toy(tmp_path))
    assert isinstance(schema, Schema) and schema.base_dir == tmp_path.resolve()
    ds = load_dataset(csv=tmp_path / "toy.csv", schema=schema)
    assert len(ds.frame) == 5  # the "?" row is dropped
    assert list(ds.frame.index) == list(range(5))
    assert "id" not in ds.frame.columns
    assert set(ds.hierarchies) == {"age", "city"}
    assert ds.hierarchies["city"].generalize(ds.frame["city"], 1).tolist() == [
        "France",
        "France",
        "Italy",
        "France",
        "Italy",
    ]
    assert ds.hierarchies["age"].generalize(ds.frame["age"], 1).iloc[0] == "[20, 30["


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    schema = load_schema(_toy(tmp_path))
    pd.read_csv(tmp_path / "toy.csv").drop(columns=["city"]).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError, match=r"bad\.csv.*'city'"):
        load_dataset(csv=tmp_path / "bad.csv", schema=schema)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda s: s + 'colour = "red"\n', "colour"),
        (
            lambda s: s.replace('quasi_identifiers = ["age", "city"]', "quasi_identifiers = []"),
            "quasi_identifiers",
        ),
        (lambda s: s.replace("widths = [10, 20]", 'widths = [10, 20], file = "x.csv"'), "hierarchies.age"),
        (lambda s: s.replace("widths = [10, 20]", "widths = [10, 25]"), "hierarchies.age"),
        (lambda s: s.replace('target = "y"\n', ""), "target"),
        (lambda s: s.replace('sensitive = "disease"', 'sensitive = "age"'), "sensitive"),
    ],
)
def test_malformed_schema_is_one_line(tmp_path: Path, edit, field: str) -> None:  # type: ignore[no-untyped-def]
    path = _write(tmp_path, edit(GOOD))
    with pytest.raises(ConfigError) as info:
        load_schema(path)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg
    assert field in msg or "(top level)" in msg


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_schema(_write(tmp_path, "name = "))
    with pytest.raises(ConfigError, match="not found"):
        load_schema(tmp_path / "absent.toml")


def test_adult_builtin() -> None:
    ds = load_dataset("adult")
    df = ds.frame
    assert 45_000 <= len(df) <= 45_300  # 45,222 complete rows
    assert isinstance(df.index, pd.RangeIndex)
    assert set(df["salary-class"]) == {"<=50K", ">50K"}
    assert not df.isna().any().any()
    for q in ds.schema.quasi_identifiers:
        ds.hierarchies[q].encode(df[q])  # every value is in its hierarchy


def test_german_builtin() -> None:
    ds = load_dataset("german")
    df = ds.frame
    assert len(df) == 1000
    assert set(df["sex"]) == {"male", "female"} and set(df["age-group"]) == {">25", "<=25"}
    assert set(df["credit"]) == {"good", "bad"}
    assert not df.select_dtypes("object").apply(lambda c: c.str.match(r"^A\d+$")).any().any()
    for q in ds.schema.quasi_identifiers:
        ds.hierarchies[q].encode(df[q])


def test_user_csv_needs_schema(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs a schema"):
        load_dataset(csv=tmp_path / "x.csv")
