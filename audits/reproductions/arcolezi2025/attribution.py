"""Attribution: which QIs each privacy cell generalized, to which level, in how many seeds.

From a protocol run's ``levels`` column (one JSON object per row), per (method, k, ℓ/t): for every
QI the mean level and the share of seeds with level > 0, plus whether a protected attribute was
generalized. A fairness change in a cell where only, say, age moved can then be told apart from
one where the protected attribute itself was recoded.
"""

from __future__ import annotations

import json

import pandas as pd

CELL = ["method", "k_parameter", "anon_parameter"]


def attribution_table(results: pd.DataFrame) -> pd.DataFrame:
    """One row per cell and QI: seeds, mean level, share generalized, level counts."""
    ok = results[results["status"] == "ok"].drop_duplicates(subset=["SEED", *CELL])
    rows = []
    for key, part in ok.groupby(CELL, sort=False):
        levels = [json.loads(s) if isinstance(s, str) else {} for s in part["levels"]]
        qis = sorted(
            {q for lv in levels for q in lv}, key=lambda q: list(levels[0]).index(q) if levels[0] else 0
        )
        for q in qis:
            vals = pd.Series([lv.get(q, 0) for lv in levels])
            rows.append(
                {
                    **dict(zip(CELL, key, strict=True)),
                    "qi": q,
                    "seeds": len(vals),
                    "mean_level": float(vals.mean()),
                    "share_generalized": float((vals > 0).mean()),
                    "level_counts": json.dumps(
                        {int(k): int(v) for k, v in vals.value_counts().sort_index().items()}
                    ),
                }
            )
    return pd.DataFrame(
        rows, columns=[*CELL, "qi", "seeds", "mean_level", "share_generalized", "level_counts"]
    )
