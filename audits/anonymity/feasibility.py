"""Reject privacy parameters that no generalization can satisfy, before any cell runs.

Only what provably cannot be met is rejected:

- **ℓ-diversity** (distinct and entropy): every released equivalence class needs at least ℓ
  distinct sensitive values, so a table (or a ``--split-by`` partition) with fewer than ℓ
  distinct values cannot be made ℓ-diverse — the training split is a subset of it, and
  suppressing rows only removes values. (A binarized target has 2 values: ℓ ≥ 3 is impossible.)
  For distinct ℓ-diversity the converse holds too, as long as the training split keeps ℓ distinct
  values: every hierarchy ends in the single root ``*``, and that one class holds every distinct value.
- **t-closeness**: nothing to reject for t in (0, 1), the range the option validators accept.
  Fully generalizing every QI to its single root ``*`` gives one class whose sensitive
  distribution *is* the table's, so its EMD is 0 ≤ t, whatever the suppression limit. Only
  t < 0 is impossible (EMD ≥ 0); it is checked here as well so the guarantee does not depend on
  the validators upstream.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from fedlab.core.errors import DataError


def check_privacy_feasible(
    frame: pd.DataFrame,
    sensitive: Iterable[str],
    ls: Iterable[int],
    ts: Iterable[float],
    source: str,
    partitions: Mapping[str, pd.Index] | None = None,
) -> None:
    """Raise one DataError naming file, column, value and rows if some ℓ or t can never be met."""
    bad_t = [t for t in ts if t < 0]
    if bad_t:
        raise DataError(f"{source}: t = {bad_t[0]} can never be met: the EMD of any class is >= 0")
    l_max = max(ls, default=0)
    if l_max < 2:
        return
    parts = dict(partitions) if partitions else {"": frame.index}
    for column in sensitive:
        for name, idx in parts.items():
            values = frame.loc[idx, column].astype(str)
            distinct = sorted(values.unique())
            if len(distinct) < l_max:
                where = f" in partition {name!r}" if name and len(parts) > 1 else ""
                shown = ", ".join(f"{v!r} ({int((values == v).sum())} rows)" for v in distinct[:6])
                raise DataError(
                    f"{source}: l = {l_max} can never be met: sensitive column {column!r} has only "
                    f"{len(distinct)} distinct value(s){where} ({shown}); l-diversity needs at least "
                    f"l distinct values in every equivalence class"
                )
