"""Run the Arcolezi et al. 2025 grid (`cells` here) over seeds, in parallel, into a run folder.

Run directory (published atomically; nothing is written when an input check fails)::

    results.csv     one row per (seed, protected attribute, method, k, ℓ/t) in the paper's
                    per-seed column layout (SEED, protected_att, ..., ASF, ALF, NCF) plus fedlab
                    columns (status, levels, protected_generalized, ...)
    summary.json    protocol settings, grid, QI order, data row counts, versions, timings, failures
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from audits.reproductions.arcolezi2025.cells import (
    EXTRA_COLUMNS,
    PAPER_COLUMNS,
    PaperData,
    ProtocolSettings,
    Spec,
    paper_grid,
    run_cells,
)
from fedlab import __version__
from fedlab.core.errors import ConfigError, DataError, FedlabError
from fedlab.core.rundir import atomic_run_dir, write_json_atomic, write_text_atomic

PAPER_KS = [*range(1, 11), 25, 50, 75, 100]


@dataclass
class PaperGrid:
    """What to run; default: the paper's grid (14 k; l = 2, t in {0.45, 0.5, 0.55} with each k; 40 seeds)."""

    ks: list[int] = field(default_factory=lambda: list(PAPER_KS))
    ls: list[int] = field(default_factory=lambda: [2])
    ts: list[float] = field(default_factory=lambda: [0.45, 0.5, 0.55])
    families: list[str] = field(default_factory=lambda: ["k", "l", "t"])
    seeds: list[int] = field(default_factory=lambda: list(range(40)))
    jobs: int = 1

    def specs(self) -> list[Spec]:
        return paper_grid(self.ks, self.ls, self.ts, self.families)


def _check_hierarchies(frame: pd.DataFrame, hierarchies: dict[str, Any], qis: list[str], where: str) -> None:
    """Every QI value must be a leaf of its hierarchy: one error line naming column, value, rows."""
    from audits.anonymity.hierarchy import value_key

    for q in qis:
        keys = frame[q].map(value_key)
        outside = ~keys.isin(set(hierarchies[q].leaves))
        if outside.any():
            bad = frame.loc[outside, q]
            first = bad.iloc[0]
            raise DataError(
                f"{where}: column {q!r} value {value_key(first)!r} ({int((bad == first).sum())} rows; "
                f"{int(outside.sum())} rows outside in all) is not in its hierarchy; fix the hierarchy "
                "or pass --hierarchy-gaps repair (adds the value) or paper (behave as the published code)"
            )


def prepare(
    csv: str | Path | None, schema_path: str | Path, settings: ProtocolSettings
) -> tuple[PaperData, dict]:
    """Load and check the table for the protocol; every problem is one error before any cell runs.

    `csv` may be None when the schema names its own data files (e.g. the embedded UCI Adult).
    """
    from audits.datasets.load import build_hierarchies, load_dataset
    from audits.datasets.schema import load_schema

    if csv is not None and not Path(csv).is_file():
        raise DataError(f"csv file {csv} not found")
    schema = load_schema(schema_path)
    if csv is None and not schema.files:
        raise ConfigError(f"{schema_path} names no data files: pass --csv")
    try:
        ds = load_dataset(csv=csv, schema=schema, repair_hierarchies=settings.hierarchy_gaps != "error")
    except DataError as exc:
        if "not in its hierarchy" not in str(exc):
            raise
        raise DataError(
            f"{exc}; fix the hierarchy or pass --hierarchy-gaps repair (adds the value) or paper "
            "(behave as the published code)"
        ) from exc
    frame, where = ds.frame, f"{ds.source} (schema {schema_path})"
    if schema.threshold is None:  # a label column: 1 = positive_label
        labels = frame[schema.target].astype(str)
        if not (labels == str(schema.positive_label)).any():
            raise DataError(
                f"{where}: positive_label {schema.positive_label!r} never occurs in target "
                f"{schema.target!r} (values: {', '.join(sorted(labels.unique())[:6])})"
            )
        frame = frame.assign(**{schema.target: (labels == str(schema.positive_label)).astype(int)})
    qis = list(schema.quasi_identifiers)
    for q in qis:
        if q not in ds.hierarchies:
            raise ConfigError(f"{schema_path}: no hierarchy for quasi-identifier {q!r}")
    if not schema.protected:
        raise ConfigError(f"{schema_path}: the protocol needs protected = {{ attr = privileged }}")
    for attr, priv in schema.protected.items():
        if isinstance(priv, list):
            raise ConfigError(
                f"{schema_path}: the protocol compares one privileged value (group 1) with the rest; "
                f"protected.{attr} names {len(priv)} ({', '.join(priv) or 'none'})"
            )
        values = frame[attr].astype(str)
        if not (values == str(priv)).any():
            raise DataError(
                f"{where}: privileged value {priv!r} of protected column {attr!r} is absent from the "
                f"data (values: {', '.join(sorted(values.unique())[:6])})"
            )
        if (values == str(priv)).all():
            raise DataError(f"{where}: protected column {attr!r} has only the privileged value {priv!r}")
    y = frame[schema.target]
    if set(pd.unique(y)) - {0, 1} or y.nunique() < 2:
        raise DataError(
            f'{where}: target {schema.target!r} must be binary 0/1 (set threshold = "median" or a number '
            f"in the schema); found {sorted(map(str, pd.unique(y)))[:5]}"
        )
    original = build_hierarchies(frame, schema, repair=False)
    if settings.hierarchy_gaps == "error":
        _check_hierarchies(frame, original, qis, where)
    data = PaperData(
        frame=frame,
        target=schema.target,
        qis=qis,
        protected={a: str(v) for a, v in schema.protected.items()},
        hierarchies={q: ds.hierarchies[q] for q in qis},
        leaves={q: set(original[q].leaves) for q in qis},
    )
    info = {"rows": ds.row_counts, "qis": qis, "schema": str(schema_path), "csv": ds.source}
    return data, info


_STATE: dict[str, Any] = {}


def _init(data: PaperData, settings: ProtocolSettings) -> None:
    _STATE.update(data=data, settings=settings)


def _task(args: tuple[list[Spec], int]) -> list[list[dict[str, Any]]]:
    specs, seed = args
    return run_cells(_STATE["data"], specs, seed, _STATE["settings"])


def run_grid(
    data: PaperData,
    grid: PaperGrid,
    settings: ProtocolSettings,
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Every (cell, seed) of `grid`; rows in a stable order (seed, method, k, parameter)."""
    specs = grid.specs()
    # one task per (seed, k): its k, ℓ and t cells share the split and the k-anonymity step
    ks = list(dict.fromkeys(s.k for s in specs))
    tasks = [([s for s in specs if s.k == k], seed) for seed in grid.seeds for k in ks]
    jobs = grid.jobs if grid.jobs > 0 else (os.cpu_count() or 1)
    done: dict[tuple[Spec, int], list[dict[str, Any]]] = {}
    if jobs <= 1 or len(tasks) <= 1:
        _init(data, settings)
        outs: Any = map(_task, tasks)
        pool = None
    else:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init, initargs=(data, settings))
        outs = pool.map(_task, tasks)
    try:
        for i, ((group, seed), out) in enumerate(zip(tasks, outs, strict=True)):
            done.update({(spec, seed): cell for spec, cell in zip(group, out, strict=True)})
            if progress:
                progress(i + 1, len(tasks))
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    rows = [row for seed in grid.seeds for spec in specs for row in done[(spec, seed)]]
    df = pd.DataFrame(rows)
    cols = PAPER_COLUMNS + EXTRA_COLUMNS
    for c in cols:
        if c not in df.columns:
            df[c] = float("nan")
    return df[cols]


def write_run(
    out: Path, results: pd.DataFrame, info: dict, grid: PaperGrid, settings: ProtocolSettings,
    seconds: float, extra: dict[str, str] | None = None,
) -> Path:  # fmt: skip
    """Publish results.csv + summary.json (+ `extra` files) atomically into `out`."""
    import sklearn

    failed = results[results["status"] != "ok"]
    summary = {
        "fedlab_version": __version__,
        "protocol": "arcolezi2025",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": sys.argv,
        "settings": asdict(settings),
        "grid": asdict(grid),
        "data": info,
        "n_rows": len(results),
        "n_failed": len(failed),
        "failed": failed[["SEED", "protected_att", "method", "k_parameter", "anon_parameter", "status"]]
        .head(50)
        .to_dict(orient="records"),
        "wall_seconds": seconds,
        "versions": {
            "python": platform.python_version(),
            "pandas": pd.__version__,
            "scikit-learn": sklearn.__version__,
            "xgboost": _xgb_version(),
        },
    }
    if out.exists() and any(out.iterdir()):
        raise FedlabError(f"run directory {out} already exists and is not empty; choose another --out")
    with atomic_run_dir(out) as work:
        write_text_atomic(work / "results.csv", results.to_csv(index=False))
        for name, text in (extra or {}).items():
            write_text_atomic(work / name, text)
        write_json_atomic(work / "summary.json", summary)
    return out


def _xgb_version() -> str:
    try:
        import xgboost

        return str(xgboost.__version__)
    except ImportError:
        return "not installed"


def timed(fn: Callable[[], pd.DataFrame]) -> tuple[pd.DataFrame, float]:
    t0 = time.perf_counter()
    return fn(), time.perf_counter() - t0
