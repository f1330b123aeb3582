"""The privacy model an anonymization must satisfy: k-anonymity plus optional l-diversity / t-closeness."""

from __future__ import annotations

from dataclasses import dataclass
from typing import get_args

import pandas as pd

from audits.anonymity.verify import LKind, TDistance
from fedlab.core.errors import ConfigError, DataError

L_KINDS = get_args(LKind)
T_DISTANCES = get_args(TDistance)
TOLERANCE = 1e-9  # slack for float ties (entropy l = 2 on a 50/50 class, EMD exactly t)


@dataclass(frozen=True)
class PrivacyModel:
    """k-anonymity (k=1: none), l-diversity of kind `l_kind` (c for recursive), t-closeness.

    `t_distance=None` picks "ordered" for a numeric sensitive column and "equal" otherwise,
    the same default as `audits.anonymity.verify.t_closeness`.
    """

    k: int = 1
    l: int | None = None  # noqa: E741 - the standard name of the parameter
    l_kind: LKind = "distinct"
    c: float | None = None
    t: float | None = None
    t_distance: TDistance | None = None

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ConfigError(f"privacy model: k must be an integer >= 1 (got {self.k!r})")
        if self.l is not None and (
            isinstance(self.l, bool) or not isinstance(self.l, int | float) or self.l < 1
        ):
            raise ConfigError(f"privacy model: l must be >= 1 (got {self.l!r})")
        if self.l_kind not in L_KINDS:
            raise ConfigError(
                f"privacy model: l_kind must be one of {', '.join(L_KINDS)} (got {self.l_kind!r})"
            )
        if self.l is not None and self.l_kind == "recursive" and (self.c is None or not self.c > 0):
            raise ConfigError(f"privacy model: recursive (c,l)-diversity needs c > 0 (got {self.c!r})")
        if self.t is not None and not (isinstance(self.t, int | float) and 0 < self.t <= 1):
            raise ConfigError(f"privacy model: t must be in (0, 1] (got {self.t!r})")
        if self.t_distance is not None and self.t_distance not in T_DISTANCES:
            raise ConfigError(
                f"privacy model: t_distance must be one of {', '.join(T_DISTANCES)} (got {self.t_distance!r})"
            )

    @property
    def needs_sensitive(self) -> bool:
        return self.l is not None or self.t is not None

    @property
    def monotone_l(self) -> bool:
        """Distinct l-diversity with suppression is monotone (generalizing never breaks it)."""
        return self.l is not None and self.l_kind == "distinct"

    def describe(self) -> str:
        parts = [f"k={self.k}"]
        if self.l is not None:
            parts.append(f"{self.l_kind} l={self.l}" + (f" c={self.c}" if self.l_kind == "recursive" else ""))
        if self.t is not None:
            parts.append(f"t={self.t} ({self.t_distance or 'auto'})")
        return ", ".join(parts)


def check_sensitive(df: pd.DataFrame, qis: list[str], sensitive: str | None, model: PrivacyModel) -> str:
    """Validate the sensitive column an l/t model needs; return the EMD ground distance to use.

    Numeric columns default to the ordered distance, others to the equal distance."""
    if sensitive is None:
        raise ConfigError(f"anonymize: the model ({model.describe()}) needs a sensitive column")
    if sensitive in qis:
        raise ConfigError(f"anonymize: sensitive column {sensitive!r} is also a quasi-identifier")
    if df[sensitive].isna().any():
        raise DataError(
            f"column {sensitive!r} has a missing value (row {df.index[df[sensitive].isna()][0]!r})"
        )
    if model.t_distance is not None:
        return model.t_distance
    return "ordered" if pd.api.types.is_numeric_dtype(df[sensitive]) else "equal"
