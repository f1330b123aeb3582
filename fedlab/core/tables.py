"""Checks every table fedlab reads must pass, shared by the simulation and the audit loaders.

Why one module: a CSV reaches fedlab through `fedlab simulate` (tabular, features) and through
`fedlab audit`, and each path used to check a different subset. What is checked here turns a
silent wrong result into one error line naming the file, the column and the value:

- duplicated column names (pandas would silently rename the second ``age`` to ``age.1``);
- non-finite numbers (``inf``, ``-inf``) and numbers too large to train on: magnitudes above
  `MAX_ABS_VALUE` overflow the float32 arithmetic of training (a scaler's variance of 1e308 is
  ``inf``, and every weight of the model becomes NaN);
- a table with no complete row (header-only, or a missing value in every row);
- a label column with a single class (a model then scores 100 % by predicting it).

Messages never quote the file's content beyond the offending cell and the column names, so an
error about a file someone else chose does not echo what the file holds.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from fedlab.core.errors import DataError

# Largest magnitude a numeric cell may have: squares and sums of 1e30 stay finite in float64, and
# the value itself stays finite in float32 (max 3.4e38), which is what models train on.
MAX_ABS_VALUE = 1e30


def _short(value: Any, width: int = 40) -> str:
    text = str(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _out_of_range(values: np.ndarray) -> np.ndarray:
    """True where a value is +-inf or larger in magnitude than MAX_ABS_VALUE (NaN: False)."""
    with np.errstate(invalid="ignore"):
        return np.isinf(values) | (np.abs(np.nan_to_num(values, nan=0.0)) > MAX_ABS_VALUE)


def check_unique_header(path: Path, sep: str = ",", skip: int = 0, used: Any = None) -> None:
    """The header line (after `skip` lines) names every column once — or, where a name repeats,
    its copies hold the same values (real files do this: COMPAS repeats ``priors_count``), so
    whichever copy pandas keeps is the data. `used`: only these names matter (None: all)."""
    try:
        with Path(path).open(encoding="utf-8", errors="replace", newline="") as fh:
            for _ in range(skip):
                fh.readline()
            first = fh.readline()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or type(exc).__name__})") from exc
    if sep in (" ", r"\s+"):
        names = first.split()
    else:
        names = next(csv.reader(io.StringIO(first), delimiter=sep), [])
    names = [n.strip() for n in names]
    wanted = None if used is None else {str(u) for u in used}
    repeated = sorted({n for n in names if n and names.count(n) > 1 and (wanted is None or n in wanted)})
    if repeated:
        _check_copies_equal(path, sep, skip, names, repeated)


def _check_copies_equal(path: Path, sep: str, skip: int, names: list[str], repeated: list[str]) -> None:
    import pandas as pd

    frame = pd.read_csv(path, sep=r"\s+" if sep == " " else sep, skiprows=skip, header=None,
                        skipinitialspace=True, dtype=str, keep_default_na=False)  # fmt: skip
    frame = frame.iloc[1:]  # the header row
    for name in repeated:
        positions = [i for i, n in enumerate(names) if n == name]
        first = frame.iloc[:, positions[0]].str.strip()
        if any(not first.equals(frame.iloc[:, i].str.strip()) for i in positions[1:]):
            raise DataError(
                f"{path}: column name {_short(name)!r} appears {len(positions)} times in the header with "
                "different values; expected unique column names"
            )


def check_unique_columns(columns: Any, source: str) -> None:
    """Column names (as given, e.g. a schema's list) are unique."""
    seen: set[str] = set()
    for name in (str(c) for c in columns):
        if name in seen:
            raise DataError(
                f"{source}: column name {_short(name)!r} appears more than once; expected unique names"
            )
        seen.add(name)


def check_finite(frame: Any, source: str, columns: Any = None) -> None:
    """Every numeric cell of `frame` (a DataFrame; `columns`: a subset) is finite and at most
    `MAX_ABS_VALUE` in magnitude; missing values are not this check's business."""
    import pandas as pd

    cols = list(frame.columns) if columns is None else [c for c in columns if c in frame.columns]
    for col in cols:
        series = frame[col]
        if isinstance(series, pd.DataFrame):  # duplicated name: checked elsewhere
            continue
        if not pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series):
            continue
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = _out_of_range(values)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{source}: column {_short(col)!r} row {row + 1} holds {float(values[row])!r} "
                f"({int(bad.sum())} row(s) in all); expected finite numbers of magnitude <= {MAX_ABS_VALUE:g}"
            )


def check_finite_array(x: Any, source: str, what: str = "features") -> None:
    """The array version of `check_finite` (feature matrices read from .npz/.mat/svmlight)."""
    arr = np.asarray(x, dtype=np.float64) if not hasattr(x, "toarray") else np.asarray(x.data, np.float64)
    if arr.size == 0:
        return
    bad = _out_of_range(arr)
    if bad.any():
        flat = int(np.flatnonzero(bad.ravel())[0])
        value = arr.ravel()[flat]
        raise DataError(
            f"{source}: {what} hold {float(value)!r} ({int(bad.sum())} value(s) in all); "
            f"expected finite numbers of magnitude at most {MAX_ABS_VALUE:g}"
        )


def no_complete_rows(frame: Any, source: str, hint: str = "") -> DataError:
    """The error for a table without one complete row (header-only, or a gap in every row)."""
    if len(frame) == 0:
        return DataError(f"{source}: no complete rows: the file has a header but no data rows")
    empty = [str(c) for c in frame.columns if frame[c].isna().all()]
    where = f"; columns {', '.join(map(_short, empty[:5]))} are empty in every row" if empty else ""
    return DataError(
        f"{source}: no complete rows: each of the {len(frame)} rows has a missing value{where}{hint}"
    )


def check_two_classes(labels: Any, source: str, column: str) -> None:
    """A label column holds at least two classes (one class: any model is '100 % accurate')."""
    import pandas as pd

    values = pd.Series(labels).dropna().astype(str).unique()
    if len(values) < 2:
        found = f"only {_short(values[0])!r}" if len(values) else "no value"
        raise DataError(
            f"{source}: label column {_short(column)!r} holds {found}; expected at least two classes"
        )
