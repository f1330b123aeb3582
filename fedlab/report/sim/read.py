"""Simulation and sweep run directories, read into `SimRun` and `Sweep`.

Reads what `fedlab simulate` writes (config.toml, metrics.jsonl, summary.json; a sweep adds
runs.csv, table.csv and one run directory per cell). A missing or truncated file becomes a
note and costs the sections that need it, never the whole report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from fedlab.metrics.run_record import summarize_rounds
from fedlab.report.fmt import number
from fedlab.report.read import Notes, read_csv, read_json, read_jsonl, read_toml


@dataclass
class SimRun:
    """One simulation run, reconciled from whatever files survived."""

    path: Path
    summary: dict[str, Any]
    rounds: list[dict[str, Any]]
    config: dict[str, Any] | None
    clients: list[str] = field(default_factory=list)  # metrics keys, e.g. "0:original"
    client_domain: dict[str, str] = field(default_factory=dict)
    client_sizes: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def get(self, key: str) -> Any:
        return self.summary.get(key)

    def series(self, key: str) -> list[float | None]:
        return [number(r.get(key)) for r in self.rounds]

    def round_numbers(self) -> list[int]:
        return [int(r.get("round", i + 1)) for i, r in enumerate(self.rounds)]

    def client_series(self, key: str, client: str) -> list[float | None]:
        return [number((r.get(key) or {}).get(client)) for r in self.rounds]

    @property
    def has_voting(self) -> bool:
        return any(r.get("voting_acc") is not None for r in self.rounds)

    @property
    def has_epsilon(self) -> bool:
        return any(isinstance(r.get("epsilon"), dict) and r["epsilon"] for r in self.rounds)

    @property
    def label(self) -> str:
        return f"{self.get('strategy') or '?'} → {self.get('target') or '?'} (seed {self.get('seed')})"


def load_run(path: Path, notes: Notes, prefix: str = "") -> SimRun:
    """Read one run directory; recompute the summary from the rounds when summary.json is gone."""
    sub = Notes()
    rounds = read_jsonl(path / "metrics.jsonl", sub, "per-round curves cannot be drawn")
    summary = read_json(path / "summary.json", sub, "final numbers are recomputed from metrics.jsonl")
    config = read_toml(path / "config.toml", sub, "the run's settings and reproduce command are unknown")
    for text in sub.items:
        notes.add(prefix + text)
    rounds = sorted(rounds, key=lambda r: number(r.get("round")) or 0)
    summary = dict(summary or {})
    _fill_summary(summary, rounds, config)
    if summary.get("rounds") and len(rounds) < int(summary["rounds"]):
        notes.add(
            f"{prefix}metrics.jsonl has {len(rounds)} of {summary['rounds']} rounds: "
            "the run was interrupted or the file was truncated"
        )
    run = SimRun(path=path, summary=summary, rounds=rounds, config=config)
    _clients(run)
    for key, what in (
        ("client_own_acc", "clients' accuracy on their own test data"),
        ("client_target_acc", "clients' accuracy on the target"),
        ("group_effect", "Group Effect"),
    ):
        if rounds and not any(key in r for r in rounds) and not summary.get("reference"):
            notes.add(f"{prefix}metrics.jsonl has no {key} (older fedlab?): {what} not shown")
    return run


def _fill_summary(summary: dict[str, Any], rounds: list[dict[str, Any]], config: dict | None) -> None:
    """Take what summary.json lacks from the rounds (`fedlab.metrics.run_record.summarize_rounds`,
    the same function the ServerApp wrote it with) and from the config."""
    last = rounds[-1] if rounds else {}
    training = (config or {}).get("training", {})
    defaults = {
        "strategy": last.get("strategy", training.get("strategy")),
        "target": last.get("target", training.get("target")),
        "seed": last.get("seed", (config or {}).get("seed")),
        "rounds": training.get("rounds"),
        "federation": (config or {}).get("federation", {}).get("name"),
    }
    if rounds:
        defaults.update(summarize_rounds(rounds))
    for key, value in defaults.items():
        if summary.get(key) is None and value is not None and value == value:
            summary[key] = value


def _clients(run: SimRun) -> None:
    seen: dict[str, None] = {}
    for r in run.rounds:
        for key in ("client_target_acc", "client_own_acc", "client_train"):
            for c in r.get(key) or {}:
                seen.setdefault(str(c), None)
    for info in run.summary.get("clients") or []:
        name = f"{info.get('id')}:{info.get('domain')}"
        seen.setdefault(name, None)
        run.client_domain[name] = str(info.get("domain"))
        run.client_sizes[name] = (info.get("train"), info.get("test"))
    run.clients = sorted(seen, key=lambda c: (int(c.split(":")[0]) if c.split(":")[0].isdigit() else 1e9, c))
    for c in run.clients:
        run.client_domain.setdefault(c, c.split(":", 1)[1] if ":" in c else "")


# ----------------------------------------------------------------------------- sweep
@dataclass
class Sweep:
    """A sweep: its summary, runs.csv and table.csv (rebuilt when missing) and the run folders read."""

    path: Path
    summary: dict[str, Any]
    runs: pd.DataFrame
    table: pd.DataFrame
    sub: list[SimRun]


SWEEP_METRICS = ["final_target_acc", "best_target_acc", "final_group_effect", "mean_group_effect"]


def load_sweep(path: Path, notes: Notes) -> Sweep:
    summary = read_json(path / "summary.json", notes, "the sweep's grid is taken from its run folders") or {}
    sub = []
    for child in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if (child / "metrics.jsonl").is_file() or (child / "summary.json").is_file():
            sub.append(load_run(child, notes, prefix=f"{child.name}/"))
    runs = read_csv(path / "runs.csv", notes, "the run list is rebuilt from the run folders")
    if runs is None or runs.empty:
        from fedlab.runs.sweep import RUN_COLUMNS

        runs = pd.DataFrame([{k: r.summary.get(k) for k in RUN_COLUMNS} for r in sub], columns=RUN_COLUMNS)
    table = read_csv(path / "table.csv", notes, "the strategy table is recomputed from the runs")
    if table is None or table.empty:
        table = _aggregate(runs)
    return Sweep(path, summary, runs, table, sub)


def _aggregate(runs: pd.DataFrame) -> pd.DataFrame:
    if runs.empty:
        return pd.DataFrame()
    from fedlab.runs.sweep import aggregate_table

    runs = runs.copy()
    for m in SWEEP_METRICS:
        runs[m] = pd.to_numeric(runs[m], errors="coerce")
    return aggregate_table(runs)
