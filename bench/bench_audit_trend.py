"""Does anonymization move fairness the way the audit paper reports? One command, one table.

Adult, protected sex (Male) and race (White); baseline vs k=10 vs k=100 vs 2-diversity vs
0.45-closeness (optimal full-domain algorithm, HistGradientBoosting standing in for the
paper's XGBoost), mean ± std over seeds, next to the paper's Adult/XGBoost figures:
sex SPD .355 → .421 (k=10) → .446 (k=100); NCF .23 → .12 → .06.

    python bench/bench_audit_trend.py                 # 5 seeds, all cores
    python bench/bench_audit_trend.py --seeds 10 --out runs/bench-trend --resume
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from audits.experiment.grid import AuditGrid
from audits.experiment.run import run_audit

PAPER = {  # privacy model -> (sex SPD, NCF) reported for Adult + XGBoost
    "baseline": (0.355, 0.23),
    "k=10": (0.421, 0.12),
    "k=100": (0.446, 0.06),
}
ORDER = ["baseline", "k=10", "k=100", "l=2", "t=0.45"]


def grid(seeds: int, algorithm: str, jobs: int, max_rows: int) -> AuditGrid:
    return AuditGrid(
        dataset="adult",
        models=["k", "l", "t"],
        ks=[1, 10, 100],
        ls=[2],
        l_ks=[1],
        ts=[0.45],
        t_ks=[1],
        algorithms=[algorithm],
        classifiers=["hgb"],
        seeds=list(range(seeds)),
        n_jobs=jobs,
        max_rows=max_rows,
    )


def _cell(metrics: dict, key: str) -> str:
    m = metrics.get(key) or {}
    mean, std = m.get("mean"), m.get("std")
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    return f"{mean:.3f} ± {std:.3f}" if std is not None else f"{mean:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (>= 5 for the comparison)")
    parser.add_argument("--algorithm", default="optimal", choices=["optimal", "mondrian", "greedy"])
    parser.add_argument("--jobs", type=int, default=0, help="worker processes (0 = all cores)")
    parser.add_argument("--max-rows", type=int, default=0, help="subsample Adult (0 = all ~45k rows)")
    parser.add_argument("--out", type=Path, default=None, help="keep the run directory here")
    parser.add_argument("--resume", action="store_true", help="reuse finished cells in --out")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "bench-audit-trend"
        g = grid(args.seeds, args.algorithm, args.jobs, args.max_rows)
        run_dir = run_audit(g, out, resume=args.resume, progress=True, command=sys.argv)
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    cells = {c["privacy_model"]: c for c in summary["cells"]}

    table = Table(
        title=f"Adult ({summary['dataset']['rows']} rows), hgb, {args.algorithm}, {args.seeds} seeds: "
        "ours (mean ± std) vs paper (Adult, XGBoost)"
    )
    for col in ["privacy model", "sex SPD", "paper", "race SPD", "sex EOD", "race EOD", "accuracy"]:
        table.add_column(col, justify="left" if col == "privacy model" else "right")
    for col in ["NCF", "paper NCF", "suppressed"]:
        table.add_column(col, justify="right")
    for name in ORDER:
        cell = cells.get(name)
        if cell is None:
            continue
        m = cell["metrics"]
        paper_spd, paper_ncf = PAPER.get(name, (None, None))
        sup = (m.get("suppressed_fraction") or {}).get("mean")
        table.add_row(
            name,
            _cell(m, "sex_spd"),
            "–" if paper_spd is None else f"{paper_spd:.3f}",
            _cell(m, "race_spd"),
            _cell(m, "sex_eq_opp_diff"),
            _cell(m, "race_eq_opp_diff"),
            _cell(m, "accuracy"),
            _cell(m, "ncf"),
            "–" if paper_ncf is None else f"{paper_ncf:.2f}",
            "–" if sup is None else f"{100 * sup:.1f}%",
        )
    console = Console(width=max(150, Console().width))
    console.print(table)
    failed = summary["n_failed"]
    console.print(
        f"SPD = P(>50K | privileged) − P(>50K | unprivileged); EOD = TPR gap (same sign); "
        f"NCF = mean |p_i − p_j| over 100 nearest neighbours. {failed} failed cell(s). "
        f"{time.perf_counter() - started:.0f} s." + (f" Run directory: {run_dir}" if args.out else "")
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
