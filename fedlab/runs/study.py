"""`fedlab study`: privacy × anonymization × strategy × seeds on a tabular federation, one tidy table.

Every cell of the grid {no DP, client DP-SGD at ε ∈ epsilons} × {no anonymization, local
k-anonymity ...} × strategies × seeds is an ordinary `fedlab.runs.simulate` run (its own run directory
inside the study directory). One row per run goes into ``study.csv`` and ``study.parquet`` with
target accuracy, Group Effect, the global model's fairness (SPD and equal opportunity
difference of the primary protected attribute, pooled over the clients' evaluation splits and
on the target domain) and the ε actually spent; ``summary.json`` holds the grid and a
mean ± std table over seeds. Everything is written inside `fedlab.core.rundir.atomic_run_dir`, so a
failed or interrupted study leaves nothing behind.

The default federation is the UCI Adult copy embedded in ``audits/datasets/data`` (train + test),
exposed as a ``tabular`` federation through a decompressed CSV in the fedlab cache
(`embedded_adult_csv`), split into clients by ``race`` (Adult defaults: label income > 50K,
protected sex and race).
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from fedlab.config import SimulationConfig, load_simulation_config
from fedlab.core.errors import ConfigError
from fedlab.core.rundir import atomic_run_dir, write_bytes_atomic, write_json_atomic, write_text_atomic

DEFAULT_EPSILONS: tuple[float | None, ...] = (None, 1.0, 3.0, 8.0)
DEFAULT_ANONYMIZATIONS: tuple[str, ...] = ("", "k=10", "k=50")
DEFAULT_STRATEGIES: tuple[str, ...] = ("fedavg", "fedka")
# Without a --config TOML: study defaults, small enough for a laptop (explicit overrides win).
STUDY_DEFAULTS: dict[str, Any] = {
    "training.rounds": 5,
    "training.local_steps": 20,
    "federation.max_per_domain": 2000,
}
COLUMNS = [
    "strategy",
    "epsilon_target",
    "anonymize",
    "seed",
    "target",
    "accuracy",
    "group_effect",
    "mean_client_own_acc",
    "spd",
    "eq_opp_diff",
    "target_spd",
    "target_eq_opp_diff",
    "fairness_attribute",
    "epsilon_spent",
    "delta",
    "clients_exhausted",
    "rows_suppressed",
    "seconds",
    "run",
]
METRICS = [
    "accuracy",
    "group_effect",
    "spd",
    "eq_opp_diff",
    "target_spd",
    "target_eq_opp_diff",
    "epsilon_spent",
]


def cache_dir() -> Path:
    return Path(os.environ.get("FEDLAB_CACHE", Path.home() / ".cache" / "fedlab")).expanduser()


def embedded_adult_csv(directory: Path | None = None) -> Path:
    """The embedded Adult data (train + test rows) as one headerless ``adult.data`` CSV.

    `fedlab.data.tabular` recognises the headerless Adult layout by the file name and applies
    its Adult defaults; the file is written once, atomically, and reused."""
    from audits.datasets.schema import builtin_dir

    path = (directory or cache_dir()) / "adult" / "adult.data"
    if path.is_file():
        return path
    chunks = []
    for name in ("adult.data.gz", "adult.test.gz"):
        with gzip.open(builtin_dir() / name, "rt", encoding="utf-8") as fh:
            lines = [ln for ln in fh.read().splitlines() if ln.strip() and not ln.startswith("|")]
        chunks.append("\n".join(lines))
    write_bytes_atomic(path, ("\n".join(chunks) + "\n").encode())
    return path


def with_embedded_adult(cfg: SimulationConfig, directory: Path | None = None) -> SimulationConfig:
    """`cfg` pointed at the embedded Adult federation unless it already names a tabular CSV."""
    cfg = cfg.model_copy(deep=True)
    if cfg.federation.name != "tabular" or not cfg.federation.csv:
        cfg.federation.name = "tabular"
        cfg.federation.csv = str(embedded_adult_csv(directory))
    return cfg


def study_config(config: Path | None, overrides: dict[str, Any]) -> SimulationConfig:
    """The study's base config: the TOML, or without one `STUDY_DEFAULTS`, under the dotted
    `overrides` (None = not given), on the embedded Adult unless it names a tabular CSV."""
    overrides = dict(overrides)
    if config is None:
        for key, value in STUDY_DEFAULTS.items():
            overrides[key] = overrides.get(key) if overrides.get(key) is not None else value
    return with_embedded_adult(load_simulation_config(config, overrides))


@dataclass(frozen=True)
class Cell:
    strategy: str
    epsilon: float | None  # None = no DP
    anonymize: str  # "" = none
    seed: int

    @property
    def name(self) -> str:
        eps = "nodp" if self.epsilon is None else f"eps{self.epsilon:g}"
        anon = "raw" if not self.anonymize else self.anonymize.replace("=", "").replace(",", "-")
        return f"{self.strategy}-{eps}-{anon}-s{self.seed}"


def grid(
    strategies: Sequence[str],
    epsilons: Sequence[float | None],
    anonymizations: Sequence[str],
    seeds: Sequence[int],
) -> list[Cell]:
    return [
        Cell(s, e, a, seed) for s in strategies for e in epsilons for a in anonymizations for seed in seeds
    ]


def cell_config(base: SimulationConfig, cell: Cell) -> SimulationConfig:
    data = base.model_dump()
    data["seed"] = cell.seed
    data["training"]["strategy"] = cell.strategy
    data["anonymize"]["spec"] = cell.anonymize
    dp = data["dp"]
    dp["enabled"] = cell.epsilon is not None
    if cell.epsilon is not None:
        dp.update(mode="client", target_epsilon=cell.epsilon, noise_multiplier=None, epsilon_budget=None)
    return SimulationConfig.model_validate(data)


def primary_attribute(summary: dict[str, Any]) -> str | None:
    """The attribute the table reports: ``sex`` when protected, else the first protected one."""
    pooled = summary.get("final_pooled_fairness") or summary.get("final_target_fairness") or {}
    if not pooled:
        return None
    return "sex" if "sex" in pooled else next(iter(pooled))


def row(cell: Cell, summary: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    attr = primary_attribute(summary)
    pooled = (summary.get("final_pooled_fairness") or {}).get(attr or "", {})
    target = (summary.get("final_target_fairness") or {}).get(attr or "", {})
    own = list((summary.get("final_client_own_acc") or {}).values())
    dp = summary.get("dp") or {}
    exhausted = dp.get("budget_exhausted") or {}
    return {
        "strategy": cell.strategy,
        "epsilon_target": cell.epsilon,
        "anonymize": cell.anonymize or "none",
        "seed": cell.seed,
        "target": summary.get("target"),
        "accuracy": summary.get("final_target_acc"),
        "group_effect": summary.get("final_group_effect"),
        "mean_client_own_acc": sum(own) / len(own) if own else None,
        "spd": pooled.get("spd"),
        "eq_opp_diff": pooled.get("eq_opp_diff"),
        "target_spd": target.get("spd"),
        "target_eq_opp_diff": target.get("eq_opp_diff"),
        "fairness_attribute": attr,
        "epsilon_spent": dp.get("max_epsilon") if dp.get("enabled") else None,
        "delta": dp.get("delta") if dp.get("enabled") else None,
        "clients_exhausted": sum(bool(v) for v in exhausted.values()),
        "rows_suppressed": sum(int(a.get("suppressed", 0)) for a in summary.get("anonymization") or []),
        "seconds": summary.get("seconds"),
        "run": run_dir.name,
    }


def aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and sample std over seeds per strategy × ε × anonymization."""
    keys = ["strategy", "epsilon_target", "anonymize"]
    frame = runs.assign(epsilon_target=runs["epsilon_target"].fillna(-1.0))
    grouped = frame.groupby(keys, sort=False)[METRICS]
    mean = grouped.mean().add_suffix("_mean")
    std = grouped.std(ddof=1).fillna(0.0).add_suffix("_std")
    table = pd.concat([mean, std], axis=1).reset_index()
    table["seeds"] = grouped.size().to_numpy()
    table["epsilon_target"] = table["epsilon_target"].where(table["epsilon_target"] >= 0)
    return table


def plan_cells(
    base: SimulationConfig, cells: Sequence[Cell]
) -> tuple[list[tuple[Cell, SimulationConfig]], list[dict[str, Any]]]:
    """The cells that can run, and the skipped ones with why.

    Every cell validates before any run. A strategy that cannot keep the cell's DP guarantee
    (q-FFL weighs clients by their un-noised loss) is not an error of the whole study: the
    combination is skipped explicitly, listed in summary.json and in the report."""
    from server.strategies import check_dp, resolve_strategy

    configs: list[tuple[Cell, SimulationConfig]] = []
    skipped: list[dict[str, Any]] = []
    for cell in cells:
        cfg = cell_config(base, cell)
        plan = resolve_strategy(cell.strategy)  # an unknown name is the user's error, not a combination
        try:
            check_dp(plan, cfg.dp)
        except ConfigError as exc:
            skipped.append({**cell_dict(cell), "reason": str(exc)})
            continue
        configs.append((cell, cfg))
    return configs, skipped


def cell_dict(cell: Cell) -> dict[str, Any]:
    """A cell as JSON: its condition and seed."""
    return {
        "strategy": cell.strategy,
        "epsilon_target": cell.epsilon,
        "anonymize": cell.anonymize or "none",
        "seed": cell.seed,
        "run": cell.name,
    }


def run_study(
    base: SimulationConfig,
    cells: Sequence[Cell],
    out: Path,
    on_cell_start: Callable[[Cell], None] | None = None,
    on_round: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    """Run every cell; write study.csv/.parquet + summary.json into `out` atomically."""
    from fedlab.runs.simulate import simulate

    if not cells:
        raise ConfigError("study: the grid is empty")
    configs, skipped = plan_cells(base, cells)
    if not configs:
        raise ConfigError(f"study: every cell is invalid ({skipped[0]['reason']})")
    rows: list[dict[str, Any]] = []
    with atomic_run_dir(Path(out)) as work:
        for cell, cfg in configs:
            if on_cell_start is not None:
                on_cell_start(cell)
            result = simulate(cfg, out=work / cell.name, on_round=on_round)
            rows.append(row(cell, result.summary, result.run_dir))
        runs = pd.DataFrame(rows, columns=COLUMNS)
        table = aggregate(runs)
        write_text_atomic(work / "study.csv", runs.to_csv(index=False))
        runs.to_parquet(work / "study.parquet.tmp", index=False)
        os.replace(work / "study.parquet.tmp", work / "study.parquet")
        write_json_atomic(
            work / "summary.json",
            {
                "kind": "study",
                "federation": base.federation.model_dump(),
                # the grid's own order (as given on the command line): reports follow it
                "strategies": list(dict.fromkeys(c.strategy for c in cells)),
                "epsilons": sorted({c.epsilon for c in cells}, key=lambda e: -1 if e is None else e),
                "anonymizations": list(dict.fromkeys(c.anonymize or "none" for c in cells)),
                "seeds": sorted({c.seed for c in cells}),
                "rounds": base.training.rounds,
                "skipped": skipped,
                "table": table.to_dict("records"),
            },
        )
    return Path(out), runs, table
