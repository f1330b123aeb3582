"""What every anonymization algorithm returns: the table, what it cost, and how to recode new rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from audits.anonymity.privacy_model import PrivacyModel
from fedlab.core.errors import DataError


@dataclass
class AnonymizationResult:
    """Anonymized table, what was removed, how it was generalized and what it cost."""

    table: pd.DataFrame
    suppressed: pd.Index
    levels: dict[str, int] | None
    metrics: dict[str, float]
    model: PrivacyModel
    algorithm: str
    qis: list[str]
    _recode: Callable[[pd.DataFrame], pd.DataFrame] = field(repr=False)

    def transform(self, other: pd.DataFrame) -> pd.DataFrame:
        """`other` with its QIs recoded exactly as the training table was (no rows suppressed)."""
        missing = [q for q in self.qis if q not in other.columns]
        if missing:
            raise DataError(f"transform: column {missing[0]!r} not in the table")
        return self._recode(other)
