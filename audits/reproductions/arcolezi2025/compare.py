"""Compare a protocol run with the paper's published per-seed results (``--compare PUBLISHED.csv``).

Per cell (method, k, ℓ/t, protected attribute) and metric: published mean ± std and fedlab's, the
share of seeds where fedlab equals the published row exactly (|Δ| ≤ 1e-6), the share of seeds in
which the metric moved up vs the same seed's baseline (k = 1) in each, and a verdict:
"exact" (every common seed equal), "same trend" (both move the same way in most seeds, or neither
moves), "trend differs" (opposite directions), "trend unclear" (one side moves either way in under
half the seeds), or "baseline".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fedlab.core.errors import DataError

KEYS = ["method", "k_parameter", "anon_parameter", "protected_att"]
METRICS = ["SPD", "EOD", "MAD", "PED", "PRD", "ACC", "ASF", "ALF", "NCF"]
NEEDED = ["SEED", "protected_att", "method", "k_parameter", "anon_parameter"]
EXACT = 1e-6


def read_published(path: str | Path) -> pd.DataFrame:
    """The paper's per-seed CSV (its CM field spans two lines; pandas' quoting handles it)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"--compare file {p} not found")
    try:
        df = pd.read_csv(p)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{p}: cannot read as CSV: {exc}") from exc
    missing = [c for c in NEEDED if c not in df.columns]
    if missing:
        raise DataError(f"{p}: column {missing[0]!r} missing (expected the paper's per-seed layout)")
    df["anon_parameter"] = df["anon_parameter"].astype(float)
    return df


def _trend(df: pd.DataFrame, metric: str) -> pd.Series:
    """Per row: metric − the same seed's k = 1 k-anonymity value for the same attribute."""
    base = df[(df["method"] == "k-anonymity") & (df["k_parameter"] == 1)]
    base = base.set_index(["SEED", "protected_att"])[metric]
    idx = pd.MultiIndex.from_frame(df[["SEED", "protected_att"]])
    return df[metric].to_numpy() - base.reindex(idx).to_numpy()


def compare(ours: pd.DataFrame, published: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """One row per cell and metric (see module docstring)."""
    metrics = [m for m in (metrics or METRICS) if m in published.columns and m in ours.columns]
    ours = ours[ours["status"] == "ok"].copy()
    ours["anon_parameter"] = ours["anon_parameter"].astype(float)
    out = []
    for m in metrics:
        o, p = ours.copy(), published.copy()
        o["up"], p["up"] = _trend(o, m), _trend(p, m)
        merged = o.merge(p, on=["SEED", *KEYS], suffixes=("", "_pub"), how="inner")
        pubs = dict(list(p.groupby(KEYS, sort=False)))
        boths = dict(list(merged.groupby(KEYS, sort=False)))
        for key, part in o.groupby(KEYS, sort=False):
            pub = pubs.get(key, p.iloc[0:0])
            both = boths.get(key, merged.iloc[0:0])
            exact = ((both[m] - both[f"{m}_pub"]).abs() <= EXACT) | (both[m].isna() & both[f"{m}_pub"].isna())
            baseline = key[0] == "k-anonymity" and key[1] == 1
            up_o = float((part["up"] > EXACT).mean()) if len(part) else np.nan
            up_p = float((pub["up"] > EXACT).mean()) if len(pub) else np.nan
            out.append(
                {
                    **dict(zip(KEYS, key, strict=True)),
                    "metric": m,
                    "pub_mean": float(pub[m].mean()) if len(pub) else np.nan,
                    "pub_std": float(pub[m].std(ddof=1)) if len(pub) > 1 else np.nan,
                    "pub_n": len(pub),
                    "ours_mean": float(part[m].mean()),
                    "ours_std": float(part[m].std(ddof=1)) if len(part) > 1 else np.nan,
                    "ours_n": len(part),
                    "common_seeds": len(both),
                    "exact_share": float(exact.mean()) if len(both) else np.nan,
                    "pub_up_share": up_p,
                    "ours_up_share": up_o,
                    "verdict": _verdict(baseline, exact, up_p, up_o, part, pub, m),
                }
            )
    return pd.DataFrame(out)


def _verdict(baseline: bool, exact: pd.Series, up_p: float, up_o: float, part, pub, m: str) -> str:
    if len(exact) and bool(exact.all()):
        return "exact"
    if baseline:
        return "baseline"
    if np.isnan(up_p) or np.isnan(up_o):
        return "no published rows"
    down_p = float((pub["up"] < -EXACT).mean())
    down_o = float((part["up"] < -EXACT).mean())
    dir_p = "up" if up_p > 0.5 else "down" if down_p > 0.5 else "mixed"
    dir_o = "up" if up_o > 0.5 else "down" if down_o > 0.5 else "mixed"
    if dir_p == dir_o:
        return "same trend"
    if "mixed" in (dir_p, dir_o):  # one side moves in under half the seeds either way: not a contradiction
        return f"trend unclear (paper {dir_p}, fedlab {dir_o})"
    return f"trend differs (paper {dir_p}, fedlab {dir_o})"
