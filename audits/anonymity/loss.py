"""Information-loss metrics of an anonymized table, comparable across algorithms.

loss (= ncp): normalized certainty penalty, GCP-style. A generalized cell costs
(distinct input values it covers - 1) / (distinct input values of the column - 1), so raw values
cost 0 and "*" costs 1; a suppressed row costs 1 in every QI. The mean over all rows (suppressed
included) and QIs is in [0, 1]. Hierarchy nodes and Mondrian ranges are measured the same way
(number of distinct input values inside), so full-domain and Mondrian results compare directly.

discernibility: sum of squared class sizes + n per suppressed row (Bayardo & Agrawal 2005).
avg_class_size: retained rows / classes; c_avg: that divided by k (LeFevre et al. 2006).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from audits.anonymity.hierarchy import Hierarchy


def hierarchy_ncp(h: Hierarchy, leaf_codes: np.ndarray) -> list[np.ndarray]:
    """Per level, the NCP of each leaf's ancestor, counting only leaves present in `leaf_codes`."""
    present = np.zeros(len(h.leaves), dtype=bool)
    present[np.unique(leaf_codes)] = True
    total = int(present.sum())
    out = []
    for level in range(h.height + 1):
        under = h.leaves_under(level, present)
        node = (under - 1) / (total - 1) if total > 1 else np.zeros_like(under)
        out.append(np.clip(node, 0.0, 1.0)[h.codes[:, level]])
    return out


def summarize(
    n: int,
    n_qis: int,
    retained_ncp: float,
    class_sizes: np.ndarray,
    suppressed: int,
    k: int,
    height: float,
    seconds: float,
    nodes_checked: int,
) -> dict[str, float]:
    """The metrics dict every AnonymizationResult carries."""
    sizes = np.asarray(class_sizes, dtype=float)
    sizes = sizes[sizes > 0]
    retained = float(sizes.sum())
    loss = (retained_ncp + suppressed * n_qis) / (n * n_qis) if n and n_qis else 0.0
    avg = retained / len(sizes) if len(sizes) else 0.0
    return {
        "height": float(height),
        "loss": float(loss),
        "ncp": float(loss),
        "discernibility": float((sizes**2).sum() + suppressed * n),
        "avg_class_size": float(avg),
        "c_avg": float(avg / k),
        "classes": float(len(sizes)),
        "suppressed_rows": float(suppressed),
        "suppressed_fraction": float(suppressed / n) if n else 0.0,
        "seconds": float(seconds),
        "nodes_checked": float(nodes_checked),
    }


def full_domain_loss(
    frame: pd.DataFrame,
    qis: Sequence[str],
    hierarchies: Mapping[str, Hierarchy],
    levels: Mapping[str, int],
    retained: pd.Index | None = None,
) -> float:
    """Loss of `levels` on `frame` when only `retained` rows are published (e.g. another tool's output)."""
    keep = np.ones(len(frame), dtype=bool) if retained is None else frame.index.isin(retained)
    total = 0.0
    for q in qis:
        h = hierarchies[q]
        leaf = h.encode(frame[q])
        total += float(hierarchy_ncp(h, leaf)[levels[q]][leaf][keep].sum())
    suppressed = int((~keep).sum())
    return (total + suppressed * len(qis)) / (len(frame) * len(qis))
