"""A study directory, read into `Study`: its grid, one row per run and per run × client.

Reads what `fedlab.runs.study` writes (summary.json with the grid and the skipped combinations,
study.csv with one line per run, one simulation directory per run) and turns the runs into rows
with `fedlab.runs.study_rows`, the same reader the console summary uses. A missing study.csv
is rebuilt from the run folders' config.toml; a missing run folder costs its row, noted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from fedlab.report.fmt import number
from fedlab.report.read import Notes, read_csv, read_json, read_toml
from fedlab.runs.study_rows import attributes, run_rows


@dataclass
class Study:
    """A study: summary.json, the run rows, the client rows, protected attributes, skipped cells."""

    path: Path
    summary: dict[str, Any]
    runs: pd.DataFrame
    clients: pd.DataFrame
    attrs: list[str]
    skipped: list[dict[str, Any]] = field(default_factory=list)
    config: dict[str, Any] | None = None

    @property
    def positive_label(self) -> str:
        """The favourable outcome ŷ the fairness numbers are about (the federation's positive label)."""
        values = [v for v in self.runs.get("positive_label", pd.Series(dtype=object)) if isinstance(v, str)]
        return values[0] if values else "1"

    @property
    def privileged(self) -> dict[str, str]:
        """Privileged value per protected attribute (from the runs' summaries)."""
        import json

        for text in self.runs.get("privileged", pd.Series(dtype=object)):
            try:
                value = json.loads(text)
            except (TypeError, ValueError):
                continue
            if value:
                return {str(k): str(v) for k, v in value.items()}
        return {}


KEYS = ["strategy", "epsilon_target", "anonymize"]


def conditions(st: Study) -> list[tuple[str, Any, str]]:
    """The conditions in the study's order: strategy, then DP level, then anonymization."""
    seen = st.runs[KEYS].drop_duplicates().to_dict("records")
    order = {s: i for i, s in enumerate(st.summary.get("strategies") or [])}
    listed = st.summary.get("anonymizations") or []
    anon = {a: i for i, a in enumerate(sorted(listed, key=lambda a: a != "none"))}  # raw rows first

    def key(c: dict[str, Any]) -> tuple:
        eps = c["epsilon_target"]
        return (order.get(c["strategy"], 99), -1 if _none(eps) else float(eps), anon.get(c["anonymize"], 99))

    return [
        (c["strategy"], None if _none(c["epsilon_target"]) else c["epsilon_target"], c["anonymize"])
        for c in sorted(seen, key=key)
    ]


def _none(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def select_condition(frame: pd.DataFrame, strategy: str, eps: Any, anon: str) -> pd.DataFrame:
    same_eps = frame["epsilon_target"].isna() if eps is None else frame["epsilon_target"] == eps
    return frame[(frame["strategy"] == strategy) & same_eps & (frame["anonymize"] == anon)]


def mean_std(values: pd.Series) -> dict[str, Any]:
    v = [x for x in (number(y) for y in values) if x is not None]
    if not v:
        return {"mean": None}
    return {"mean": sum(v) / len(v), "std": float(pd.Series(v).std(ddof=1)) if len(v) > 1 else None}


def _cells_from_folders(path: Path, notes: Notes) -> pd.DataFrame:
    rows = []
    for child in sorted(p for p in path.iterdir() if p.is_dir() and (p / "config.toml").is_file()):
        cfg = read_toml(child / "config.toml", notes, f"run {child.name} is left out") or {}
        dp = cfg.get("dp") or {}
        rows.append(
            {
                "strategy": (cfg.get("training") or {}).get("strategy"),
                "epsilon_target": dp.get("target_epsilon") if dp.get("enabled") else None,
                "anonymize": (cfg.get("anonymize") or {}).get("spec") or "none",
                "seed": cfg.get("seed", 0),
                "run": child.name,
            }
        )
    return pd.DataFrame(rows, columns=["strategy", "epsilon_target", "anonymize", "seed", "run"])


def load_study(path: Path, notes: Notes) -> Study:
    """Read a study directory (module docstring)."""
    summary = read_json(path / "summary.json", notes, "the grid is taken from the run folders") or {}
    cells = read_csv(path / "study.csv", notes, "the run list is rebuilt from the run folders")
    if cells is None or cells.empty:
        cells = _cells_from_folders(path, notes)
    present = [r for r in cells["run"] if (path / str(r)).is_dir()]
    for run in cells["run"]:
        if (path / str(run)).is_dir():
            continue
        notes.add(f"run folder {run} is missing: its row is left out")
    cells = cells[cells["run"].isin(present)]
    runs, clients = run_rows(path, cells)
    config = read_toml(path / str(present[0]) / "config.toml", Notes(), "") if present else None
    return Study(path, summary, runs, clients, attributes(runs), list(summary.get("skipped") or []), config)
