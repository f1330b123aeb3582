"""Load a tabular data set (built-in Adult/German or the user's CSV) with its schema and hierarchies.

Rows with a missing value are dropped (as in the usual Adult preprocessing) and the result gets a
fresh RangeIndex, so row identity is stable across anonymization, audits and train/test splits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from audits.hierarchy import Hierarchy
from audits.schema import BUILTIN, Schema, builtin_schema, load_schema
from fedlab.errors import ConfigError, DataError


@dataclass
class Dataset:
    """A cleaned table, its schema and one hierarchy per QI (and for the sensitive column if given)."""

    frame: pd.DataFrame
    schema: Schema
    hierarchies: dict[str, Hierarchy] = field(default_factory=dict)
    source: str = ""


# --- dataset-specific clean-up, keyed by schema name ---------------------------------------------

_GERMAN_CODES: dict[str, dict[str, str]] = {
    "checking-status": {"A11": "<0 DM", "A12": "0-200 DM", "A13": ">=200 DM", "A14": "no checking account"},
    "credit-history": {
        "A30": "no credits/all paid duly",
        "A31": "all paid duly at this bank",
        "A32": "existing paid duly",
        "A33": "delay in paying",
        "A34": "critical account",
    },
    "purpose": {
        "A40": "car (new)",
        "A41": "car (used)",
        "A42": "furniture/equipment",
        "A43": "radio/television",
        "A44": "domestic appliances",
        "A45": "repairs",
        "A46": "education",
        "A47": "vacation",
        "A48": "retraining",
        "A49": "business",
        "A410": "others",
    },
    "savings": {
        "A61": "<100 DM",
        "A62": "100-500 DM",
        "A63": "500-1000 DM",
        "A64": ">=1000 DM",
        "A65": "unknown/none",
    },
    "employment-since": {
        "A71": "unemployed",
        "A72": "<1 year",
        "A73": "1-4 years",
        "A74": "4-7 years",
        "A75": ">=7 years",
    },
    "personal-status": {
        "A91": "male: divorced/separated",
        "A92": "female: divorced/separated/married",
        "A93": "male: single",
        "A94": "male: married/widowed",
        "A95": "female: single",
    },
    "other-debtors": {"A101": "none", "A102": "co-applicant", "A103": "guarantor"},
    "property": {
        "A121": "real estate",
        "A122": "savings/life insurance",
        "A123": "car or other",
        "A124": "unknown/none",
    },
    "other-installment-plans": {"A141": "bank", "A142": "stores", "A143": "none"},
    "housing": {"A151": "rent", "A152": "own", "A153": "for free"},
    "job": {
        "A171": "unemployed/unskilled non-resident",
        "A172": "unskilled resident",
        "A173": "skilled employee/official",
        "A174": "management/self-employed/highly qualified",
    },
    "telephone": {"A191": "none", "A192": "yes"},
    "foreign-worker": {"A201": "yes", "A202": "no"},
}


def _fix_adult(frame: pd.DataFrame) -> pd.DataFrame:
    # adult.test labels end in "." (">50K."): make them match the training labels.
    if "salary-class" not in frame:
        return frame
    frame["salary-class"] = frame["salary-class"].astype(str).str.rstrip(".")
    return frame


def _fix_german(frame: pd.DataFrame) -> pd.DataFrame:
    if not {"personal-status", "credit", "age"} <= set(frame.columns):
        return frame
    raw_status = frame["personal-status"].copy()
    for col, codes in _GERMAN_CODES.items():
        if col in frame:
            frame[col] = frame[col].map(codes).fillna(frame[col])
    frame["credit"] = frame["credit"].map({1: "good", 2: "bad"}).fillna(frame["credit"].astype(str))
    frame["sex"] = raw_status.map(
        {"A91": "male", "A92": "female", "A93": "male", "A94": "male", "A95": "female"}
    )
    frame["age-group"] = (frame["age"] > 25).map({True: ">25", False: "<=25"})
    return frame


_FIXUPS: dict[str, Callable[[pd.DataFrame], pd.DataFrame]] = {"adult": _fix_adult, "german": _fix_german}


# --- loading --------------------------------------------------------------------------------------


def _read_files(paths: list[Path], schema: Schema) -> pd.DataFrame:
    frames = []
    for path in paths:
        if not path.is_file():
            raise DataError(f"data file {path} not found")
        try:
            frames.append(
                pd.read_csv(
                    path,
                    sep=r"\s+" if schema.sep == " " else schema.sep,
                    header=None if schema.columns else "infer",
                    names=schema.columns or None,
                    skipinitialspace=True,
                    na_values=schema.na_values,
                    comment=schema.comment,
                    compression="infer",
                )
            )
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
            raise DataError(f"{path}: cannot read as CSV: {exc}") from exc
    return pd.concat(frames, ignore_index=True)


def _check_columns(frame: pd.DataFrame, schema: Schema, source: str) -> None:
    needed = [
        schema.target,
        *schema.quasi_identifiers,
        *schema.protected,
        *schema.numeric,
        *schema.categorical,
    ]
    if schema.sensitive:
        needed.append(schema.sensitive)
    for col in dict.fromkeys(needed):
        if col not in frame.columns:
            raise DataError(f"{source}: column {col!r} named in schema {schema.name!r} is missing")


def build_hierarchies(frame: pd.DataFrame, schema: Schema) -> dict[str, Hierarchy]:
    """One Hierarchy per schema entry: read from CSV or generated from the column's values."""
    out: dict[str, Hierarchy] = {}
    for col, spec in schema.hierarchies.items():
        if spec.file is not None:
            out[col] = Hierarchy.from_csv(schema.resolve(spec.file), col)
        else:
            if not pd.api.types.is_numeric_dtype(frame[col]):
                raise ConfigError(f"schema {schema.name!r}: hierarchies.{col}.widths needs a numeric column")
            out[col] = Hierarchy.from_widths(col, frame[col].unique(), spec.widths or [])
    return out


def load_dataset(name: str = "adult", csv: str | Path | None = None, schema: Schema | None = None) -> Dataset:
    """The built-in data set `name`, or the user's `csv` described by `schema` (a Schema or TOML path).

    Whitespace is stripped, `na_values` become missing, rows with any missing value are dropped,
    `drop` columns are removed, and the index is reset to 0..n-1.
    """
    if isinstance(schema, str | Path):
        schema = load_schema(schema)
    if schema is None:
        if csv is not None:
            raise ConfigError(f"{csv}: a user CSV needs a schema (TOML) describing its columns")
        if name not in BUILTIN:
            raise ConfigError(
                f"unknown dataset {name!r}: expected one of {', '.join(BUILTIN)} or csv + schema"
            )
        schema = builtin_schema(name)
    if csv is not None:
        paths = [Path(csv)]
    elif schema.files:
        paths = [schema.resolve(f) for f in schema.files]
    else:
        raise ConfigError(f"schema {schema.name!r} names no data files and no csv was given")
    source = ", ".join(str(p) for p in paths)
    frame = _read_files(paths, schema)
    for col in frame.select_dtypes(include="object").columns:
        frame[col] = frame[col].str.strip()
    if schema.na_values:
        frame = frame.replace(schema.na_values, pd.NA)
    fix = _FIXUPS.get(schema.name)
    if fix is not None:
        frame = fix(frame)
    _check_columns(frame, schema, source)
    frame = frame.drop(columns=[c for c in schema.drop if c in frame.columns])
    frame = frame.dropna().reset_index(drop=True)
    frame = frame.infer_objects()
    if frame.empty:
        raise DataError(f"{source}: no complete rows left after dropping missing values")
    return Dataset(frame=frame, schema=schema, hierarchies=build_hierarchies(frame, schema), source=source)
