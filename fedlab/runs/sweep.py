"""Sweeps over targets × strategies × seeds, and the table `fedlab simulate` prints.

Each cell is an independent simulation with its own run directory inside the sweep
directory; the sweep writes `runs.csv` (one row per run), `table.csv` (mean ± std over seeds
per target × strategy, plus the paired comparison with FedAvg in percentage points, see
`fedlab.metrics.comparison`), `paired.csv` (the comparison alone, with the mean over targets) and
`summary.json`, all atomically.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fedlab.config import SimulationConfig
from fedlab.core.rundir import atomic_run_dir, write_json_atomic, write_text_atomic
from fedlab.metrics import comparison
from fedlab.runs.reference import REFERENCES, run_reference
from fedlab.runs.select import SELECT, Selection, run_selected
from fedlab.runs.simulate import SimulationResult, check_strategy, simulate

DEFAULT_SWEEP_SEEDS = 5  # a sweep without --seeds runs this many seeds: fewer give no usable interval
RUN_COLUMNS = [
    "target",
    "strategy",
    "seed",
    "final_target_acc",
    "best_target_acc",
    "best_round",
    "final_group_effect",
    "mean_group_effect",
    "final_mean_client_target_acc",
    "final_voting_acc",
    "final_voting_constant_acc",
    "final_adoption_rate",
    "seconds",
]


def run_seeds(given: list[int] | None, first_seed: int, cells: int) -> list[int]:
    """The seeds to run: the given ones; else `first_seed` alone for one target × strategy cell,
    or `DEFAULT_SWEEP_SEEDS` consecutive seeds from it for a sweep over several cells."""
    if given:
        return given
    if cells > 1:
        return [first_seed + i for i in range(DEFAULT_SWEEP_SEEDS)]
    return [first_seed]


def run_row(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: summary.get(k) for k in RUN_COLUMNS}


def aggregate_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample std over seeds for each target × strategy (std is 0 for one seed)."""
    metrics = ["final_target_acc", "best_target_acc", "final_group_effect", "mean_group_effect"]
    grouped = runs.groupby(["target", "strategy"], sort=False)[metrics]
    mean = grouped.mean().add_suffix("_mean")
    std = grouped.std(ddof=1).fillna(0.0).add_suffix("_std")
    table = pd.concat([mean, std], axis=1).reset_index()
    table["seeds"] = grouped.size().to_numpy()
    return table


def json_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows for summary.json: ±inf (an unbounded ratio interval) as "inf"/"-inf", since strict
    JSON has no infinity (NaN becomes null when written)."""
    return table.replace({np.inf: "inf", -np.inf: "-inf"}).to_dict("records")


def run_sweep(
    base: SimulationConfig,
    targets: list[str],
    strategies: list[str],
    seeds: list[int],
    out: Path,
    on_run_start: Callable[[SimulationConfig], None] | None = None,
    on_round: Callable[[dict[str, Any]], None] | None = None,
    on_run_end: Callable[[SimulationResult], None] | None = None,
) -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    """Run every cell; returns (sweep dir, runs, table). `fedlab.metrics.comparison.compare(runs)`
    gives the paired statistics the sweep also writes."""
    check_strategy(base, strategies)  # every name and its DP mode, before any run or directory
    rows: list[dict[str, Any]] = []
    chosen: dict[str, Selection] = {}  # fedka-select: one choice per target, reused for every seed
    with atomic_run_dir(out) as work:
        for target in targets:
            for strategy in strategies:
                for seed in seeds:
                    cfg = base.model_copy(deep=True)
                    cfg.seed = seed
                    cfg.training.target = target
                    cfg.training.strategy = strategy
                    if on_run_start:
                        on_run_start(cfg)
                    run_dir = work / f"{strategy}-{target}-s{seed}"
                    if strategy in REFERENCES:  # simulation-only reference rows (pool raw data)
                        result = SimulationResult(run_dir, run_reference(cfg, strategy, run_dir))
                    elif strategy == SELECT:  # FedKA or FedAvg, chosen on the sources' pseudo-targets
                        result = run_selected(cfg, run_dir, work / "selection", chosen, simulate, on_round)
                    else:
                        result = simulate(cfg, out=run_dir, on_round=on_round)
                    rows.append(run_row(result.summary))
                    if on_run_end:
                        on_run_end(result)
        runs = pd.DataFrame(rows, columns=RUN_COLUMNS)
        table = aggregate_table(runs)
        cells = comparison.compare(runs)
        paired = comparison.comparison_frame(cells)
        if not paired.empty:
            per_target = paired[paired["target"] != comparison.ALL_TARGETS].drop(columns=["seeds"])
            table = table.merge(per_target, on=["target", "strategy"], how="left")
        write_text_atomic(work / "runs.csv", runs.to_csv(index=False))
        write_text_atomic(work / "table.csv", table.to_csv(index=False))
        write_text_atomic(work / "paired.csv", paired.to_csv(index=False))
        write_json_atomic(
            work / "summary.json",
            {
                "kind": "sweep",
                "targets": targets,
                "strategies": strategies,
                "seeds": seeds,
                "table": json_records(table),
                "paired_vs": comparison.BASELINE,
                "paired_methods": comparison.METHODS,
                "paired": comparison.to_json(cells),
            },
        )
    return out, runs, table
