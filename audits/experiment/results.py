"""The audit's results: table layout, cell files, the checkpoint folder and the published files.

Each finished (task, classifier) row is a *cell* stored as one small JSON file, first in a
hidden checkpoint folder next to the run directory (so an interrupted run keeps its work) and,
once the grid is complete, under ``cells/`` in the atomically published run directory.

Run directory::

    cells/<cell_id>.json   {"settings": {...}, "row": {...}} one per row of results
    results.csv            tidy table, one row per cell and seed (column order: `results_frame`)
    results.parquet        same table
    summary.json           grid, dataset, schema, per-cell mean ± std, command, version, timings
    config.toml            the resolved AuditGrid (``fedlab audit --config`` reproduces the run)
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audits.experiment.grid import AuditGrid
from audits.experiment.table import AuditData
from audits.measures.fairness import FAIRNESS_KEYS
from audits.measures.individual import INDIVIDUAL_KEYS
from audits.measures.utility import UTILITY_KEYS
from fedlab import __version__
from fedlab.core.errors import ConfigError, DataError
from fedlab.core.rundir import write_bytes_atomic, write_text_atomic

KEY_COLUMNS = [
    "cell_id",
    "client",
    "privacy_model",
    "family",
    "k",
    "l",
    "t",
    "algorithm",
    "classifier",
    "seed",
    "status",
]
ANON_COLUMNS = [
    "n_train_raw",
    "n_train",
    "n_test",
    "suppressed_rows",
    "suppressed_fraction",
    "anon_height",
    "anon_loss",
    "anon_discernibility",
    "anon_avg_class_size",
    "anon_seconds",
    "anon_levels",
]
TIME_COLUMNS = ["fit_seconds", "eval_seconds"]
CELL_GROUP = ["client", "privacy_model", "family", "k", "l", "t", "algorithm", "classifier"]


def checkpoint_dir(out_dir: Path) -> Path:
    """Hidden folder next to the run directory where cells land while the grid runs."""
    out_dir = Path(out_dir)
    return out_dir.parent / f".{out_dir.name}.cells"


def read_cells(folders: Iterable[Path], settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    cells: dict[str, dict[str, Any]] = {}
    for folder in folders:
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                payload = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"--resume: cell file {path} is corrupt ({exc}); delete it and resume"
                ) from exc
            if payload.get("settings") != settings:
                old = payload.get("settings") or {}
                diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
                raise ConfigError(
                    f"--resume: {path.parent} was made with different settings ({', '.join(diff)}); "
                    "use another --out"
                )
            cells[path.stem] = payload["row"]
    return cells


def publish_cells(cache: Path, cells_dir: Path) -> None:
    """Copy the checkpointed cell files into the run directory's ``cells/`` (and ``--export``
    files into ``exports/`` beside it)."""
    cells_dir.mkdir(exist_ok=True)
    for path in cache.glob("*.json"):
        shutil.copy2(path, cells_dir / path.name)
    exports = cache / "exports"
    if exports.is_dir():
        (cells_dir.parent / "exports").mkdir(exist_ok=True)
        for path in exports.glob("*.csv"):
            shutil.copy2(path, cells_dir.parent / "exports" / path.name)


def write_tables(work: Path, results: pd.DataFrame, grid: AuditGrid) -> None:
    """results.csv, results.parquet and config.toml, each written atomically."""
    write_text_atomic(work / "results.csv", results.to_csv(index=False))
    write_bytes_atomic(work / "results.parquet", results.to_parquet(index=False))
    write_text_atomic(work / "config.toml", grid.to_toml())


def _summarise(results: pd.DataFrame) -> list[dict[str, Any]]:
    metrics = [
        c
        for c in results.columns
        if c not in [*KEY_COLUMNS, "anon_levels"] and pd.api.types.is_numeric_dtype(results[c])
    ]
    out = []
    keys = results[CELL_GROUP].astype(str)
    for _, idx in results.groupby([keys[c] for c in CELL_GROUP], sort=False).groups.items():
        part = results.loc[idx]
        first = part.iloc[0]
        ok = part[part["status"] == "ok"]
        out.append(
            {
                **{c: first[c] for c in CELL_GROUP},
                "n_seeds": len(part),
                "n_ok": len(ok),
                "metrics": {
                    m: {
                        "mean": float(ok[m].mean()) if len(ok) else float("nan"),
                        "std": float(ok[m].std(ddof=1)) if len(ok) > 1 else float("nan"),
                    }
                    for m in metrics
                },
            }
        )
    return out


def results_frame(rows: list[dict[str, Any]], protected: Iterable[str]) -> pd.DataFrame:
    """Rows → tidy table with a stable column order (keys, anonymization, utility, fairness, timings)."""
    fair = [f"{a}_{k}" for a in protected for k in (*FAIRNESS_KEYS, "group_sizes")]
    order = KEY_COLUMNS + ANON_COLUMNS + list(UTILITY_KEYS) + fair + list(INDIVIDUAL_KEYS) + TIME_COLUMNS
    df = pd.DataFrame(rows)
    for col in order:
        if col not in df.columns:
            df[col] = np.nan
    df = df[order + [c for c in df.columns if c not in order]]
    for col in ("l", "t", *ANON_COLUMNS[:-1]):
        df[col] = pd.to_numeric(df[col], errors="coerce")
    return df


def summary_of(
    grid: AuditGrid,
    data: AuditData,
    settings: dict[str, Any],
    results: pd.DataFrame,
    command: list[str] | None,
) -> dict[str, Any]:
    import fairlearn
    import sklearn

    y = data.frame[data.target].astype(str) == data.positive_label
    return {
        "fedlab_version": __version__,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command if command is not None else sys.argv,
        "grid": grid.model_dump(),
        "privacy_models": [s.label for s in grid.privacy_models()],
        "dataset": {
            "name": data.name,
            "csv": settings["csv"],
            "rows": len(data.frame),
            "positive_rate": float(y.mean()),
            "target": data.target,
            "positive_label": data.positive_label,
            "quasi_identifiers": data.qis,
            "sensitive": data.sensitive,
            "protected": data.protected,
            "favourable_label": data.favourable_label,
            "favourable_is_positive": data.favourable == 1,
            "features": data.features,
            "clients": {c: len(idx) for c, idx in data.clients.items()},
            "row_counts": data.row_counts,
        },
        "schema": settings["schema"],
        "settings": settings,
        "columns": list(results.columns),
        "n_failed": int((results["status"] != "ok").sum()),
        "cells": _summarise(results),
        "versions": {
            "python": platform.python_version(),
            "scikit-learn": sklearn.__version__,
            "fairlearn": fairlearn.__version__,
            "pandas": pd.__version__,
        },
    }
