"""How the audit cuts its table: the row subsample and each client's train/test split, in ONE place.

Why a module: the risk report (`fedlab.report.audit.risk`) re-makes the audit's training split to
measure the re-identification risk of exactly the table that was released; a copy of the split
with its defaults written out again had to be kept in step by hand. Both now call these.
"""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import train_test_split

SUBSAMPLE_SEED = 0  # `max_rows`: the same rows for every seed of a run


def positives(frame: pd.DataFrame, target: str, positive_label: object) -> pd.Series:
    """Rows whose target is the positive label (compared as text: the table is read as text)."""
    return frame[target].astype(str) == str(positive_label)


def subsample(frame: pd.DataFrame, target: str, max_rows: int) -> pd.DataFrame:
    """At most `max_rows` rows (0 = all), stratified on the target's values, in the table's order."""
    if not max_rows or len(frame) <= max_rows:
        return frame
    y = frame[target].astype(str)
    kept, _ = train_test_split(frame, train_size=max_rows, stratify=y, random_state=SUBSAMPLE_SEED)
    return kept.sort_index()


def train_test(
    part: pd.DataFrame, y: pd.Series, test_size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One client's stratified train/test split for one seed (only the train split is anonymized)."""
    train, test = train_test_split(part, test_size=test_size, stratify=y, random_state=seed)
    return train, test
