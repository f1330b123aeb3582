"""Anonymize a table to k-anonymity / l-diversity / t-closeness (re-verifiable with `verify`).

`anonymize` takes any DataFrame, the QI columns, one `Hierarchy` per QI and a `PrivacyModel`:

* ``optimal``  - full-domain generalization with the least information loss (lattice search),
* ``greedy``   - the audit paper's / ANJANA's greedy full-domain algorithm,
* ``mondrian`` - multidimensional median partitioning (LeFevre et al. 2006).

Rows of classes that still violate the model are suppressed (removed from ``table``) when their
number stays within ``suppression_limit * n``. The output keeps the input's index and its non-QI
columns untouched; generalized QI values are strings. ``result.transform(other)`` applies the
same recoding to unseen rows (e.g. a test split) without suppressing any of them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Literal

import pandas as pd

from audits.anonymity.encoding import Encoded, NodeEval, encode
from audits.anonymity.greedy import greedy
from audits.anonymity.hierarchy import Hierarchy
from audits.anonymity.lattice import optimal
from audits.anonymity.loss import summarize
from audits.anonymity.mondrian import mondrian
from audits.anonymity.privacy_model import PrivacyModel
from audits.anonymity.result import AnonymizationResult
from fedlab.core.errors import ConfigError

__all__ = ["ALGORITHMS", "AnonymizationResult", "PrivacyModel", "anonymize"]

Algorithm = Literal["optimal", "mondrian", "greedy"]
ALGORITHMS: tuple[str, ...] = ("optimal", "mondrian", "greedy")


def apply_levels(
    df: pd.DataFrame, qis: Sequence[str], hierarchies: Mapping[str, Hierarchy], levels: Mapping[str, int]
) -> pd.DataFrame:
    """Copy of `df` with each QI generalized to its level (full-domain recoding)."""
    out = df.copy()
    for q in qis:
        out[q] = hierarchies[q].generalize(df[q], levels[q])
    return out


def _full_domain_result(
    df: pd.DataFrame,
    enc: Encoded,
    best: NodeEval,
    checked: int,
    algorithm: str,
    hierarchies: Mapping[str, Hierarchy],
    seconds: float,
) -> AnonymizationResult:
    detail = enc.evaluate(best.levels, detail=True)
    assert detail.bad_tuples is not None and detail.class_sizes is not None
    bad_rows = detail.bad_tuples[enc.row_tuple]
    levels = {q: int(L) for q, L in zip(enc.qis, best.levels, strict=True)}
    kept = df.loc[~bad_rows]
    table = kept.copy()
    for i, q in enumerate(enc.qis):
        h = enc.hierarchies[i]
        L = levels[q]
        table[q] = pd.Series(
            h.labels[L][enc.level_codes[i][L][enc.row_tuple[~bad_rows]]], index=kept.index, dtype=object
        )
    retained_ncp = float(
        sum((enc.level_ncp[i][L] * enc.weights)[~detail.bad_tuples].sum() for i, L in enumerate(best.levels))
    )
    metrics = summarize(
        n=enc.n,
        n_qis=len(enc.qis),
        retained_ncp=retained_ncp,
        class_sizes=detail.class_sizes,
        suppressed=detail.suppressed,
        k=enc.model.k,
        height=sum(best.levels),
        seconds=seconds,
        nodes_checked=checked,
    )
    qis = list(enc.qis)
    hier = {q: hierarchies[q] for q in qis}
    return AnonymizationResult(
        table=table,
        suppressed=df.index[bad_rows],
        levels=levels,
        metrics=metrics,
        model=enc.model,
        algorithm=algorithm,
        qis=qis,
        _recode=lambda other: apply_levels(other, qis, hier, levels),
    )


def anonymize(
    df: pd.DataFrame,
    qis: Sequence[str],
    hierarchies: Mapping[str, Hierarchy],
    model: PrivacyModel,
    algorithm: Algorithm = "optimal",
    suppression_limit: float = 0.0,
    sensitive: str | None = None,
) -> AnonymizationResult:
    """Anonymize `df` so that it satisfies `model` (see module docstring)."""
    if algorithm not in ALGORITHMS:
        raise ConfigError(
            f"anonymize: unknown algorithm {algorithm!r}: expected one of {', '.join(ALGORITHMS)}"
        )
    if not isinstance(model, PrivacyModel):
        raise ConfigError(f"anonymize: model must be a PrivacyModel (got {type(model).__name__})")
    t0 = time.perf_counter()
    if algorithm == "mondrian":
        return mondrian(df, list(qis), hierarchies, model, sensitive, t0)
    enc = encode(df, qis, hierarchies, model, sensitive, suppression_limit)
    best, checked = optimal(enc) if algorithm == "optimal" else greedy(enc)
    seconds = time.perf_counter() - t0
    result = _full_domain_result(df, enc, best, checked, algorithm, hierarchies, seconds)
    result.metrics["seconds"] = time.perf_counter() - t0
    return result
