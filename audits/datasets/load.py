"""Load a tabular data set (built-in Adult/German or the user's CSV) with its schema and hierarchies.

Rows with a missing value are dropped (as in the usual Adult preprocessing) and the result gets a
fresh RangeIndex, so row identity is stable across anonymization, audits and train/test splits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from audits.anonymity.hierarchy import Hierarchy
from audits.datasets.protected import as_text, resolve_mapping
from audits.datasets.schema import BUILTIN, Schema, builtin_schema, load_schema
from fedlab.core.errors import ConfigError, DataError
from fedlab.core.tables import (
    check_finite,
    check_two_classes,
    check_unique_columns,
    check_unique_header,
    no_complete_rows,
)


@dataclass
class Dataset:
    """A cleaned table, its schema and one hierarchy per QI (and for the sensitive column if given)."""

    frame: pd.DataFrame
    schema: Schema
    hierarchies: dict[str, Hierarchy] = field(default_factory=dict)
    source: str = ""
    # rows read, removed by filters, removed for a missing value (reported, never silent)
    row_counts: dict[str, int] = field(default_factory=dict)


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
        if schema.columns:
            check_unique_columns(schema.columns, f"schema {schema.name!r} columns")
        elif path.suffix.lower() not in (".gz", ".bz2", ".zip", ".xz"):
            check_unique_header(path, schema.sep, used=schema.use_columns or None)
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
                    usecols=schema.use_columns or None,
                )
            )
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
            reason = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
            raise DataError(f"{path}: cannot read as CSV: {reason}") from exc
        check_finite(frames[-1], str(path))
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


def _interval_leaves(values: pd.Series, how: str, repair: bool) -> list[float]:
    """Level-0 values of a paper-style interval hierarchy, built as the paper's code builds them."""
    lo, hi = int(values.min()), int(values.max())
    if how == "range":  # the paper's range(min, max): the maximum itself is left out
        leaves: list[float] = list(range(lo, hi))
    elif how == "zero_to_max":  # the paper's range(max + 1)
        leaves = list(range(0, hi + 1))
    else:
        leaves = sorted(values.unique().tolist())
    if repair:
        leaves += [v for v in sorted(values.unique().tolist()) if v not in set(leaves)]
    return leaves


def build_hierarchies(frame: pd.DataFrame, schema: Schema, repair: bool = False) -> dict[str, Hierarchy]:
    """One Hierarchy per schema entry: read from CSV or generated from the column's values.

    ``repair=True`` adds every data value missing from a generated interval hierarchy's level 0
    (the paper's ``range(min, max)`` leaves the maximum out); CSV hierarchies are never changed.
    """
    out: dict[str, Hierarchy] = {}
    for col, spec in schema.hierarchies.items():
        if spec.file is not None:
            out[col] = Hierarchy.from_csv(schema.resolve(spec.file), col)
        elif spec.intervals is not None:
            iv = spec.intervals
            if not pd.api.types.is_numeric_dtype(frame[col]):
                raise ConfigError(
                    f"schema {schema.name!r}: hierarchies.{col}.intervals needs a numeric column"
                )
            leaves = _interval_leaves(frame[col], iv.leaves, repair)
            out[col] = Hierarchy.from_intervals(col, leaves, iv.steps, iv.low, iv.high)
        else:
            if not pd.api.types.is_numeric_dtype(frame[col]):
                raise ConfigError(f"schema {schema.name!r}: hierarchies.{col}.widths needs a numeric column")
            out[col] = Hierarchy.from_widths(col, frame[col].unique(), spec.widths or [])
    return out


def _filter_rename(frame: pd.DataFrame, schema: Schema, source: str) -> pd.DataFrame:
    """Apply the schema's row filters, then its value renames."""
    for f in schema.filters:
        if f.column not in frame.columns:
            raise DataError(f"{source}: filter column {f.column!r} not found")
        col = frame[f.column]
        keep = pd.Series(True, index=frame.index)
        if f.min is not None or f.max is not None:
            num = pd.to_numeric(col, errors="coerce")
            lo = -float("inf") if f.min is None else f.min
            keep &= num.between(lo, float("inf") if f.max is None else f.max)
        if f.values is not None:
            keep &= col.astype(str).isin([str(v) for v in f.values])
        frame = frame[keep]
    for col, mapping in schema.rename.items():
        if col not in frame.columns:
            raise DataError(f"{source}: rename column {col!r} not found")
        frame = frame.assign(**{col: frame[col].map(lambda v, m=mapping: m.get(str(v), v))})
    return frame


def _binarize_target(frame: pd.DataFrame, schema: Schema, threshold: float, source: str) -> pd.DataFrame:
    target = pd.to_numeric(frame[schema.target], errors="coerce")
    return frame.assign(**{schema.target: (target > threshold).astype(int)})


def _threshold(frame: pd.DataFrame, schema: Schema, source: str) -> float | None:
    """The target threshold; "median" is taken over the rows as read, as the paper's code does."""
    if schema.threshold is None:
        return None
    if schema.target not in frame.columns:
        raise DataError(f"{source}: target column {schema.target!r} not found")
    values = pd.to_numeric(frame[schema.target], errors="coerce")
    if values.notna().sum() == 0:
        raise DataError(f"{source}: target {schema.target!r} has no numeric value to threshold")
    return float(values.median()) if schema.threshold == "median" else float(schema.threshold)


def _no_rows_error(frame: pd.DataFrame, source: str) -> DataError:
    always_empty = any(frame[c].isna().all() for c in frame.columns)
    hint = "; list always-empty columns under drop" if always_empty else ""
    return no_complete_rows(frame, source, hint)


def load_dataset(
    name: str = "adult",
    csv: str | Path | None = None,
    schema: Schema | None = None,
    repair_hierarchies: bool = False,
) -> Dataset:
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
    counts = {"read": len(frame)}
    if frame.empty:
        raise no_complete_rows(frame, source)
    threshold = _threshold(frame, schema, source)
    frame = _filter_rename(frame, schema, source)
    counts["filtered_out"] = counts["read"] - len(frame)
    _check_columns(frame, schema, source)
    frame = frame.drop(columns=[c for c in schema.drop if c in frame.columns])
    complete = frame.dropna()
    if complete.empty:
        raise _no_rows_error(frame, source)
    counts["missing_dropped"] = len(frame) - len(complete)
    frame = complete.reset_index(drop=True).infer_objects()
    if threshold is not None:
        frame = _binarize_target(frame, schema, threshold, source)
        counts["threshold"] = threshold  # type: ignore[assignment]
    check_two_classes(frame[schema.target], source, schema.target)
    counts["rows"] = len(frame)
    hierarchies = build_hierarchies(frame, schema, repair_hierarchies)
    check_inputs(frame, schema, hierarchies, source)
    return Dataset(frame=frame, schema=schema, hierarchies=hierarchies, source=source, row_counts=counts)


def check_inputs(frame: pd.DataFrame, schema: Schema, hierarchies: dict[str, Hierarchy], source: str) -> None:
    """Before any cell runs: every QI value is in its hierarchy, every privileged value occurs.

    One error line names the file, the column, the value and how many rows hold it.
    """
    from audits.anonymity.hierarchy import value_key

    for col, h in hierarchies.items():
        if col not in frame.columns:
            continue
        keys = frame[col].map(value_key)
        outside = ~keys.isin(set(h.leaves))
        if outside.any():
            first = keys[outside].iloc[0]
            spec = schema.hierarchies[col]
            where = schema.resolve(spec.file) if spec.file else f"hierarchies.{col}"
            raise DataError(
                f"{source}: column {col!r} value {first!r} ({int((keys == first).sum())} rows; "
                f"{int(outside.sum())} rows outside in all) is not in its hierarchy ({where})"
            )
    schema.protected = resolve_mapping(schema.protected, frame, source)
    _check_target(frame, schema, source)
    _check_finite(frame, source)


def _check_target(frame: pd.DataFrame, schema: Schema, source: str) -> None:
    """Two classes (or an explicit ``multiclass = "positive_vs_rest"``); a favourable label that occurs.

    Why: a 3-valued target silently binarized as "positive vs rest" changes what is measured."""
    if schema.target not in frame.columns:
        return
    values = sorted(frame[schema.target].map(as_text).unique())
    positive = as_text(schema.positive_label)
    if len(values) > 2 and schema.multiclass == "error":
        raise DataError(
            f"{source}: target {schema.target!r} has {len(values)} values ({', '.join(values[:8])}); "
            f"expected two, or set multiclass = \"positive_vs_rest\" in the schema to audit "
            f"{positive!r} against every other value"
        )
    if not schema.favourable_is_positive and schema.favourable not in values:
        raise DataError(
            f"{source}: favourable_label {schema.favourable!r} is not a value of target "
            f"{schema.target!r} (values: {', '.join(values[:8])})"
        )
    if not schema.favourable_is_positive and len(values) > 2:
        raise DataError(
            f"{source}: favourable_label {schema.favourable!r} differs from positive_label {positive!r} "
            f"but target {schema.target!r} has {len(values)} values; with positive_vs_rest the "
            "favourable outcome must be the positive label"
        )


def _check_finite(frame: pd.DataFrame, source: str) -> None:
    """Infinite numbers are an input error (one line), not a traceback deep in a classifier."""
    for col in frame.select_dtypes(include="number").columns:
        bad = ~np.isfinite(frame[col].to_numpy(dtype=float))
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{source}: column {col!r} holds {int(bad.sum())} infinite value(s) (first at data row "
                f"{first + 1}: {frame[col].iloc[first]!r}); expected finite numbers"
            )
