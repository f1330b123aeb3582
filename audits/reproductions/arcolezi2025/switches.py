"""Protocol switches: how much of a fairness change comes from the evaluation protocol itself.

The paper leaves the evaluated protected attribute raw in the test split while the model was
trained on its generalized values, and label-encodes features. This reruns k-anonymity cells with
``protected_in_test`` ∈ {raw, generalized} × ``encoding`` ∈ {label, onehot} on the same seeds and
reports, per cell, attribute and metric: the mean under each setting, the paired difference from
the paper's setting (raw, label) with a 95 % t-interval and the number of seeds where it is
positive, and the change vs the same setting's k = 1 value. A difference is called a protocol
effect only when its interval excludes zero.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from audits.reproductions.arcolezi2025.cells import PaperData, ProtocolSettings

VARIANTS = (("raw", "label"), ("generalized", "label"), ("raw", "onehot"), ("generalized", "onehot"))
METRICS = ("SPD", "EOD", "ACC", "NCF")


def run_switches(
    data: PaperData, settings: ProtocolSettings, ks: list[int], seeds: list[int], jobs: int
) -> pd.DataFrame:
    """Per-seed rows of every variant (k-anonymity cells only; k = 1 always included)."""
    from audits.reproductions.arcolezi2025.grid_run import PaperGrid, run_grid

    grid = PaperGrid(ks=sorted({1, *ks}), families=["k"], seeds=list(seeds), jobs=jobs)
    parts = []
    for pit, enc in VARIANTS:
        st = dataclasses.replace(settings, protected_in_test=pit, encoding=enc)
        parts.append(run_grid(data, grid, st))
    return pd.concat(parts, ignore_index=True)


def _ci(d: np.ndarray) -> tuple[float, float, float]:
    from scipy.stats import t

    n = len(d)
    m = float(d.mean()) if n else math.nan
    if n < 2:
        return m, math.nan, math.nan
    half = float(t.ppf(0.975, n - 1) * d.std(ddof=1) / math.sqrt(n))
    return m, m - half, m + half


def switch_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Paired comparison of every variant with the paper's setting (see module docstring)."""
    ok = rows[rows["status"] == "ok"]
    key = ["SEED", "protected_att", "k_parameter"]
    paper = ok[(ok["protected_in_test"] == "raw") & (ok["encoding"] == "label")].set_index(key)
    out = []
    for (pit, enc), part in ok.groupby(["protected_in_test", "encoding"], sort=False):
        part = part.set_index(key)
        base = part.xs(1, level="k_parameter")
        for (attr, k), cell in part.groupby(level=["protected_att", "k_parameter"]):
            for m in METRICS:
                joined = cell[[m]].join(paper[[m]], rsuffix="_paper", how="inner").dropna()
                diff, lo, hi = _ci((joined[m] - joined[f"{m}_paper"]).to_numpy())
                b = cell[m].droplevel("k_parameter").sub(base[m]).dropna()
                out.append(
                    {
                        "k_parameter": k, "protected_att": attr, "metric": m,
                        "protected_in_test": pit, "encoding": enc,
                        "mean": float(cell[m].mean()), "n": len(cell),
                        "diff_vs_paper": diff, "ci_low": lo, "ci_high": hi,
                        "seeds_positive": int(((joined[m] - joined[f"{m}_paper"]) > 1e-12).sum()),
                        "change_vs_k1": float(b.mean()) if len(b) else math.nan,
                        "verdict": _verdict(pit, enc, lo, hi),
                    }
                )  # fmt: skip
    return pd.DataFrame(out).sort_values(["metric", "protected_att", "k_parameter"], kind="stable")


def _verdict(pit: str, enc: str, lo: float, hi: float) -> str:
    if (pit, enc) == ("raw", "label"):
        return "paper setting"
    if math.isnan(lo):
        return "too few seeds"
    return "protocol effect" if lo > 0 or hi < 0 else "within seed noise"
