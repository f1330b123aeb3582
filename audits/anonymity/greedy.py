"""The audit paper's greedy full-domain algorithm (as in ANJANA): fast, not optimal.

Start from the raw data and, while the model fails within the suppression limit, raise by one
level the QI that currently has the most distinct values. It stops at the latest when every QI
is fully generalized, which `encode` has already checked to satisfy the model.
"""

from __future__ import annotations

import numpy as np

from audits.anonymity.encoding import Encoded, NodeEval


def greedy(enc: Encoded) -> tuple[NodeEval, int]:
    """The first satisfying node on the greedy path, and the number of nodes checked."""
    start = enc.checked
    levels = np.zeros(len(enc.qis), dtype=int)
    while True:
        ev = enc.evaluate(levels)
        if ev.ok:
            return ev, enc.checked - start
        distinct = np.array(
            [
                -1 if levels[i] >= enc.heights[i] else np.unique(enc.level_codes[i][levels[i]]).size
                for i in range(len(enc.qis))
            ]
        )
        levels[int(np.argmax(distinct))] += 1
