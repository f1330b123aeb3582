"""ℓ-diversity and t-closeness the way the paper ran them: ANJANA's two-step greedy.

The paper calls ``k_anonymity`` and then ANJANA's ``l_diversity`` / ``t_closeness`` on its output.
Those keep generalizing, one level of the QI with the most distinct values at a time, on the
already k-anonymous (and already suppressed) table until *every* class satisfies the model:

- ℓ (distinct): suppression is only tried when no class at all reaches ℓ, and it counts the
  classes' distinct sensitive values (not their rows) against the 20 % budget — so with a binary
  target it practically never suppresses and generalizes much further than fedlab's combined
  (k, ℓ) search, which suppresses violating classes within the budget;
- t: no suppression at all; the distance is |P(y=1 | class) − P(y=1 | table)| (EMD of a binary
  attribute), the table's distribution taken after the k-step suppression.

When no QI can be generalized further the paper's call returns an empty table and the row is
skipped; here the cell fails with that reason. (When ANJANA's ℓ-step does suppress, its
``reset_index`` adds an ``index`` column that the paper then used as a feature; that branch is
not reproduced.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from audits.anonymity.verify import combine_codes
from fedlab.core.errors import DataError


def _nunique_per_class(ids: np.ndarray, yy: np.ndarray) -> np.ndarray:
    """Distinct `yy` values in each class (``groupby(ids).nunique()``, classes in id order)."""
    ycode, uniq = pd.factorize(yy)
    m = max(len(uniq), 1)
    pairs = np.unique(ids.astype(np.int64) * m + ycode)
    return np.bincount(pairs // m, minlength=int(ids.max()) + 1)


def continue_greedy(
    train: pd.DataFrame,
    kept: pd.Index,
    levels: dict[str, int],
    hierarchies: dict,
    qis: list[str],
    target: str,
    family: str,
    param: float,
    suppression_limit: float,
) -> tuple[pd.Index, dict[str, int]]:
    """(rows kept, levels) after ANJANA's ℓ / t step on top of a k-anonymous result."""
    levels = dict(levels)
    part = train.loc[kept]
    # node codes stand for the labels (one code per label at each level): same classes, no strings
    leaf = {q: hierarchies[q].encode(part[q]) for q in qis}
    cols = {q: hierarchies[q].codes[leaf[q], levels[q]] for q in qis}
    y = part[target].astype(int).to_numpy()
    n_train, supp_k = len(train), len(train) - len(kept)
    candidates = list(qis)

    def classes() -> np.ndarray:
        radices = [len(hierarchies[q].labels[levels[q]]) for q in qis]
        return combine_codes([cols[q] for q in qis], radices)

    def violation(ids: np.ndarray, yy: np.ndarray) -> tuple[bool, np.ndarray]:
        if family == "l":
            distinct = _nunique_per_class(ids, yy)
            return bool(distinct.min() >= param), distinct
        share = np.bincount(ids, weights=yy.astype(float)) / np.bincount(ids)
        return bool(np.abs(share - yy.mean()).max() <= param + 1e-12), share

    ids = classes()
    ok, stat = violation(ids, y)
    while not ok:
        if family == "l" and param > stat.max():
            bad = np.flatnonzero(stat < param)
            if (stat[bad].sum() + supp_k) <= suppression_limit * n_train:
                keep_rows = ~np.isin(ids, bad)
                rest_ok = (
                    bool(keep_rows.any())
                    and violation(pd.Series(ids[keep_rows]).factorize()[0], y[keep_rows])[0]
                )
                if rest_ok:
                    return kept[keep_rows], levels
        if not candidates:
            raise DataError(f"{'l-diversity' if family == 'l' else 't-closeness'} cannot be achieved "
                            f"for {family}={param:g} (ANJANA returned an empty table)")  # fmt: skip
        q = candidates[int(np.argmax([len(np.unique(cols[c])) for c in candidates]))]
        if levels[q] + 1 > hierarchies[q].height:
            candidates.remove(q)
            continue
        levels[q] += 1
        cols[q] = hierarchies[q].codes[leaf[q], levels[q]]
        ids = classes()
        ok, stat = violation(ids, y)
    return kept, levels
