"""One `fedlab audit` run directory, read into grid cells with their per-seed values.

Input: results.parquet / results.csv (one row per cell × seed; rebuilt from cells/*.json when
both are gone), summary.json (dataset and schema) and config.toml (the grid). A `Cell` keeps
the per-seed rows whose status is "ok", so the plots, tables and findings that average over
seeds all read the same rows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from audits.datasets.protected import privileged_text
from fedlab.report.read import Notes, read_json, read_toml

KEYS = ["client", "privacy_model", "family", "k", "l", "t", "algorithm", "classifier"]


@dataclass
class Cell:
    """One grid cell (everything but the seed) with the per-seed values of its ok rows."""

    keys: dict[str, Any]
    n_seeds: int
    n_ok: int
    rows: pd.DataFrame

    def values(self, metric: str) -> np.ndarray:
        if metric not in self.rows.columns:
            return np.array([])
        return pd.to_numeric(self.rows[metric], errors="coerce").dropna().to_numpy(dtype=float)

    def stat(self, metric: str) -> dict[str, float | None]:
        v = self.values(metric)
        return {
            "mean": float(v.mean()) if v.size else None,
            "std": float(v.std(ddof=1)) if v.size > 1 else None,
        }

    def by_seed(self, metric: str) -> dict[int, float]:
        """Seed -> value of the ok rows (what paired judgements pair on)."""
        if metric not in self.rows.columns or "seed" not in self.rows.columns:
            return {}
        vals = pd.to_numeric(self.rows[metric], errors="coerce")
        return {int(s): float(v) for s, v in zip(self.rows["seed"], vals, strict=True) if v == v}

    def near_trivial(self) -> str:
        """Why the model of this cell is near-trivial in most of its seeds ("" if it is not)."""
        if "near_trivial" not in self.rows.columns or not len(self.rows):
            return ""
        flags = pd.to_numeric(self.rows["near_trivial"], errors="coerce").fillna(0) > 0
        if flags.mean() < 0.5:
            return ""
        reasons = self.rows.loc[flags, "near_trivial_reason"] if "near_trivial_reason" in self.rows else []
        parts = str(reasons.iloc[0]).split("; ") if len(reasons) else ["near-trivial"]
        short = [parts[0], *[p for p in parts[1:] if "majority" in p][:1]]  # the rest: Utility section
        return f"{self.label}: {'; '.join(short)} ({int(flags.sum())}/{len(flags)} seeds)"

    @property
    def family(self) -> str:
        return str(self.keys["family"])

    @property
    def label(self) -> str:
        return str(self.keys["privacy_model"])


@dataclass
class Audit:
    path: Path
    results: pd.DataFrame
    summary: dict[str, Any]
    grid: dict[str, Any] | None
    protected: dict[str, Any]
    cells: list[Cell] = field(default_factory=list)
    multi: dict[str, bool] = field(default_factory=dict)  # which key varies (client, algorithm, ...)

    def baseline(self, cell: Cell) -> Cell | None:
        for c in self.cells:
            if (
                c.family == "baseline"
                and c.keys["client"] == cell.keys["client"]
                and c.keys["classifier"] == cell.keys["classifier"]
            ):
                return c
        return None

    def context(self, cell: Cell, with_k: bool = False) -> str:
        parts = [
            f"{key} {cell.keys[key]}" if key == "client" else str(cell.keys[key])
            for key in ("client", "algorithm", "classifier")
            if self.multi.get(key)
        ]
        if with_k:
            parts.append(f"k={int(cell.keys['k'])}")
        return ", ".join(parts)

    def subject(self, cell: Cell) -> str:
        ctx = self.context(cell)
        return cell.label + (f" ({ctx})" if ctx else "")

    @property
    def min_group_size(self) -> int:
        """Groups below this many test rows are marked and never headline a finding."""
        return int((self.grid or {}).get("min_group_size", 0) or 0)

    def orientation(self, attr: str | None = None) -> str:
        """'favourable outcome: two_year_recid = 0 (not the positive label 1); privileged: sex = Male'."""
        ds = self.summary.get("dataset") or {}
        target, positive = ds.get("target", "target"), ds.get("positive_label", "1")
        favourable = ds.get("favourable_label", positive)
        if ds.get("favourable_is_positive", True):
            text = f"favourable outcome: {target} = {favourable} (the positive label)"
        else:
            text = f"favourable outcome: {target} = {favourable} (not the positive label {positive})"
        if attr is not None:
            privileged = privileged_text(self.protected.get(attr, "?"))
            text += f"; privileged: {attr} = {privileged} vs the rest pooled"
        return text

    def families(self) -> list[str]:
        return [f for f in ("k", "l", "t") if any(c.family == f and c.n_ok for c in self.cells)]


# ----------------------------------------------------------------------------- loading
def _family(row: pd.Series) -> str:
    if pd.notna(row.get("l")):
        return "l"
    if pd.notna(row.get("t")):
        return "t"
    return "k" if int(row.get("k") or 1) > 1 else "baseline"


def read_results(path: Path, notes: Notes) -> pd.DataFrame | None:
    """results.parquet, else results.csv, else the cells/*.json rows of an unfinished run."""
    for name in ("results.parquet", "results.csv"):
        p = path / name
        if not p.is_file():
            continue
        try:
            return pd.read_parquet(p) if name.endswith("parquet") else pd.read_csv(p)
        except (ImportError, OSError, ValueError, pd.errors.ParserError) as exc:
            notes.add(f"{name} could not be read ({exc.__class__.__name__}); trying the next source")
    rows = []
    for cell_file in sorted((path / "cells").glob("*.json")):
        try:
            rows.append(json.loads(cell_file.read_text(encoding="utf-8"))["row"])
        except (json.JSONDecodeError, KeyError, UnicodeDecodeError):
            notes.add(f"cells/{cell_file.name} is corrupt and was skipped")
    if rows:
        notes.add(
            f"results.csv and results.parquet are missing: the report uses {len(rows)} cells/*.json rows"
        )
        return pd.DataFrame(rows)
    notes.add("no results (results.parquet, results.csv or cells/*.json): nothing to plot")
    return None


def load_audit(path: Path, notes: Notes) -> Audit:
    summary = read_json(path / "summary.json", notes, "dataset and schema details are limited") or {}
    config = read_toml(path / "config.toml", notes, "the reproduce command and risk recomputation need it")
    grid = config if config is not None else summary.get("grid")
    results = read_results(path, notes)
    if results is None:
        results = pd.DataFrame(columns=[*KEYS, "seed", "status"])
    results = results.copy()
    if "status" not in results.columns:
        results["status"] = "ok"
    for col in ("client", "algorithm", "classifier"):
        if col not in results.columns:
            results[col] = "all" if col == "client" else "?"
    for col in ("k", "l", "t", "seed"):
        results[col] = pd.to_numeric(results[col], errors="coerce") if col in results.columns else np.nan
    results["k"] = results["k"].fillna(1)
    if "family" not in results.columns:
        results["family"] = results.apply(_family, axis=1) if len(results) else []
    if "privacy_model" not in results.columns:
        results["privacy_model"] = results["family"]
    protected = dict((summary.get("dataset") or {}).get("protected") or {})
    if not protected:
        protected = {c.removesuffix("_spd"): "?" for c in results.columns if c.endswith("_spd")}
        if summary:
            notes.add("summary.json names no protected attributes: taken from the *_spd columns")
    audit = Audit(path, results, summary, grid, protected)
    audit.cells = _cells(results)
    anon = results[results["family"] != "baseline"]
    audit.multi = {
        "client": results["client"].nunique() > 1,
        "algorithm": anon["algorithm"].nunique() > 1,
        "classifier": results["classifier"].nunique() > 1,
    }
    failed = int((results["status"] != "ok").sum())
    if failed:
        notes.add(
            f"{failed} of {len(results)} result rows failed (see 'Failed cells'); "
            "their cells average fewer seeds"
        )
    return audit


FAMILY_ORDER = {"baseline": 0, "k": 1, "l": 2, "t": 3}


def _numeric_order(cell: Cell) -> tuple:
    """Cells in numeric privacy order (k=5 before k=25), family by family."""

    def num(key: str) -> float:
        value = pd.to_numeric(pd.Series([cell.keys.get(key)]), errors="coerce").iloc[0]
        return float(value) if value == value else -1.0

    return (
        str(cell.keys["client"]),
        FAMILY_ORDER.get(cell.family, 9),
        num("l"),
        num("t"),
        num("k"),
        str(cell.keys["algorithm"]),
        str(cell.keys["classifier"]),
    )


def _cells(results: pd.DataFrame) -> list[Cell]:
    if results.empty:
        return []
    keys = results[KEYS].astype(str)
    cells = []
    for _, idx in results.groupby([keys[c] for c in KEYS], sort=False).groups.items():
        part = results.loc[idx]
        ok = part[part["status"] == "ok"]
        first = part.iloc[0]
        cells.append(Cell({c: first[c] for c in KEYS}, len(part), len(ok), ok))
    return sorted(cells, key=_numeric_order)
