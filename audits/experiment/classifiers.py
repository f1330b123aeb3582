"""The audited classifiers: seeded scikit-learn pipelines over raw or generalized tables.

Encoding choice: a column that is still numeric (raw numeric attributes, and every
numeric QI in the baseline) is standardised; every other column — categorical
attributes and *all generalized QIs* ("[20, 40[", "*", "Married", ...) — is one-hot
encoded with ``handle_unknown="ignore"``. One-hot instead of interval midpoints because
it treats every hierarchy level the same way (categorical QIs, "*" suppression tokens,
open intervals have no midpoint) and lets the model see exactly the information the
anonymized release contains, nothing more.
"""

from __future__ import annotations

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

CLASSIFIERS = ("logreg", "rf", "hgb")


def _estimator(name: str, seed: int):
    if name == "logreg":
        return LogisticRegression(max_iter=2000, random_state=seed)
    if name == "rf":
        return RandomForestClassifier(n_estimators=100, min_samples_leaf=2, n_jobs=1, random_state=seed)
    if name == "hgb":
        return HistGradientBoostingClassifier(random_state=seed)  # early stopping split is seeded too
    raise ValueError(f"unknown classifier {name!r}; expected one of {', '.join(CLASSIFIERS)}")


def split_columns(X: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(numeric, categorical) columns by dtype: generalized QIs are strings, hence categorical."""
    types = pd.api.types
    numeric = [c for c in X.columns if types.is_numeric_dtype(X[c]) and not types.is_bool_dtype(X[c])]
    return numeric, [c for c in X.columns if c not in numeric]


def make_classifier(name: str, X: pd.DataFrame, seed: int = 0) -> Pipeline:
    """Unfitted pipeline ``prep`` (scaler + one-hot) → ``clf`` for the columns of `X`."""
    numeric, categorical = split_columns(X)
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
        ],
        sparse_threshold=0.0,
    )
    return Pipeline([("prep", prep), ("clf", _estimator(name, seed))])


def as_model_input(X: pd.DataFrame) -> pd.DataFrame:
    """Categorical columns as plain strings so one-hot sees one consistent type (no NaN/str mix)."""
    _, categorical = split_columns(X)
    out = X.copy()
    for c in categorical:
        out[c] = out[c].astype(str)
    return out
