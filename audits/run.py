"""The privacy-vs-fairness audit grid.

For every privacy model × parameters × algorithm × classifier × seed (× client): split
the table (stratified, seeded), anonymize the TRAIN part only, apply the same recoding to
the test part, fit the classifier on the generalized train table and evaluate it on the
generalized test table — utility, group fairness per protected attribute (on the raw,
never generalized attribute values), individual fairness, anonymization metrics.

Work is grouped into *tasks* (client, privacy model, algorithm, seed): one anonymization
feeds every classifier. Each finished (task, classifier) row is a *cell* stored as one
small JSON file, first in a hidden checkpoint folder next to the run directory (so an
interrupted run keeps its work) and, once the grid is complete, under ``cells/`` in the
atomically published run directory. ``resume=True`` reads both back and only computes
what is missing.

Run directory::

    cells/<cell_id>.json   {"settings": {...}, "row": {...}} one per row of results
    results.csv            tidy table, one row per cell and seed (columns: RESULT columns)
    results.parquet        same table
    summary.json           grid, dataset, schema, per-cell mean ± std, command, version, timings
    config.toml            the resolved AuditGrid (``fedlab audit --config`` reproduces the run)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
import platform
import re
import shutil
import sys
import time
import tomllib
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fedlab import __version__
from fedlab.errors import ConfigError, DataError, FedlabError
from fedlab.rundir import atomic_run_dir, dumps, write_bytes_atomic, write_json_atomic, write_text_atomic

from .fairness import FAIRNESS_KEYS
from .feasibility import check_privacy_feasible
from .individual import INDIVIDUAL_KEYS
from .models import CLASSIFIERS
from .progress import ProgressBar
from .utility import UTILITY_KEYS

ALGORITHMS = ("optimal", "mondrian", "greedy")
DATASETS = ("adult", "german")
FAMILIES = ("k", "l", "t")

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


# --------------------------------------------------------------------------- config
class AuditGrid(BaseModel):
    """What to audit. Every field is validated before any data is read or directory made.

    Privacy models: ``k`` gives one k-anonymity model per value of `ks` (k=1 is the
    baseline: no anonymization, algorithm "none"); ``l`` gives (k, l)-models for every
    l in `ls` crossed with every k in `l_ks` (default: `ks`; k=1 means l-diversity alone);
    ``t`` likewise crosses `ts` with `t_ks` (default [1]: t-closeness alone).
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    dataset: str = "adult"
    schema_path: str = ""
    csv: str = ""
    models: list[Literal["k", "l", "t"]] = Field(default_factory=lambda: list(FAMILIES))
    ks: list[int] = Field(default_factory=lambda: [1, 2, 5, 10, 25, 50, 100])
    ls: list[int] = Field(default_factory=lambda: [2])  # l = 3 is impossible on a binary sensitive column
    ts: list[float] = Field(default_factory=lambda: [0.45, 0.5, 0.55])
    l_ks: list[int] | None = None
    t_ks: list[int] | None = Field(default_factory=lambda: [1])
    l_kind: Literal["distinct", "entropy"] = "distinct"
    algorithms: list[str] = Field(default_factory=lambda: list(ALGORITHMS))
    classifiers: list[str] = Field(default_factory=lambda: ["logreg", "rf", "hgb"])
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2])
    suppression_limit: float = Field(0.2, ge=0, le=1)
    test_size: float = Field(0.3, gt=0, lt=1)
    split_by: str = ""
    max_rows: int = Field(0, ge=0)  # 0 = all rows; else a stratified subsample (fixed seed 0)
    individual_rows: int = Field(2000, ge=10)  # query rows for individual fairness
    k_neighbors: int = Field(100, ge=1)  # NCF / ASF / ALF neighbourhood size
    n_jobs: int = Field(1, ge=-1)  # processes; 0 or -1 = all cores

    @field_validator("ks", "l_ks", "t_ks")
    @classmethod
    def _ks(cls, v: list[int] | None) -> list[int] | None:
        if v is not None and (not v or any(k < 1 for k in v)):
            raise ValueError("k values must be a non-empty list of integers >= 1")
        return None if v is None else sorted(set(v))

    @field_validator("ls")
    @classmethod
    def _ls(cls, v: list[int]) -> list[int]:
        if any(x < 2 for x in v):
            raise ValueError("l values must be integers >= 2")
        return sorted(set(v))

    @field_validator("ts")
    @classmethod
    def _ts(cls, v: list[float]) -> list[float]:
        if any(not 0 < x < 1 for x in v):
            raise ValueError("t values must lie strictly between 0 and 1")
        return sorted(set(v))

    @field_validator("algorithms")
    @classmethod
    def _algorithms(cls, v: list[str]) -> list[str]:
        bad = [a for a in v if a not in ALGORITHMS]
        if bad or not v:
            raise ValueError(f"unknown algorithm {bad[0] if bad else ''!r}; expected {', '.join(ALGORITHMS)}")
        return list(dict.fromkeys(v))

    @field_validator("classifiers")
    @classmethod
    def _classifiers(cls, v: list[str]) -> list[str]:
        bad = [c for c in v if c not in CLASSIFIERS]
        if bad or not v:
            raise ValueError(
                f"unknown classifier {bad[0] if bad else ''!r}; expected {', '.join(CLASSIFIERS)}"
            )
        return list(dict.fromkeys(v))

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if not v or any(s < 0 for s in v):
            raise ValueError("seeds must be a non-empty list of integers >= 0")
        return list(dict.fromkeys(v))

    @model_validator(mode="after")
    def _source(self) -> AuditGrid:
        if self.csv and not self.schema_path:
            raise ValueError("csv needs a schema (schema_path / --schema)")
        if not self.csv and self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; expected one of {', '.join(DATASETS)}")
        if not self.models:
            raise ValueError("models must name at least one of k, l, t")
        return self

    def privacy_models(self) -> list[PrivacySpec]:
        specs: list[PrivacySpec] = []
        if "k" in self.models:
            specs += [PrivacySpec(k=k) for k in self.ks]
        if "l" in self.models:
            specs += [PrivacySpec(k=k, l=l) for k in (self.l_ks or self.ks) for l in self.ls]  # noqa: E741
        if "t" in self.models:
            specs += [PrivacySpec(k=k, t=t) for k in (self.t_ks or self.ks) for t in self.ts]
        return list(dict.fromkeys(specs))

    def to_toml(self) -> str:
        import tomli_w

        return tomli_w.dumps({k: v for k, v in self.model_dump().items() if v is not None})


def read_grid_file(path: str | Path) -> dict[str, Any]:
    """Raw grid fields from a TOML file (top level, or an ``[audit]`` table)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} not found")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from exc
    return dict(data.get("audit", data))


def make_grid(data: dict[str, Any], source: str = "audit options") -> AuditGrid:
    """Validate grid fields; errors become one ConfigError line naming `source` and the field."""
    try:
        return AuditGrid.model_validate(data)
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            loc = ".".join(str(x) for x in err["loc"])
            parts.append(f"{loc}: {msg} (got {err.get('input')!r})" if loc else msg)
        raise ConfigError(f"{source}: " + "; ".join(parts)) from exc


def load_grid(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> AuditGrid:
    """Grid from an optional TOML file with non-None `overrides` applied."""
    data = read_grid_file(path) if path is not None else {}
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return make_grid(data, str(path) if path is not None else "audit options")


@dataclasses.dataclass(frozen=True)
class PrivacySpec:
    """One privacy model: k-anonymity, optionally with l-diversity or t-closeness."""

    k: int = 1
    l: int | None = None  # noqa: E741
    t: float | None = None

    @property
    def family(self) -> str:
        if self.l is not None:
            return "l"
        if self.t is not None:
            return "t"
        return "k" if self.k > 1 else "baseline"

    @property
    def label(self) -> str:
        if self.family == "baseline":
            return "baseline"
        parts = [f"k={self.k}"] if self.k > 1 or self.family == "k" else []
        parts += [f"l={self.l}"] if self.l is not None else []
        parts += [f"t={self.t:g}"] if self.t is not None else []
        return ",".join(parts)

    @property
    def slug(self) -> str:
        return self.label.replace("=", "").replace(",", "-")


@dataclasses.dataclass(frozen=True)
class Task:
    """One anonymization (client, privacy model, algorithm, seed) and the classifiers fed from it."""

    client: str
    spec: PrivacySpec
    algorithm: str
    seed: int
    classifiers: tuple[str, ...]

    def cell_id(self, classifier: str) -> str:
        return cell_id(self.client, self.spec, self.algorithm, classifier, self.seed)


def _safe(text: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", text)
    if safe != text:  # keep distinct clients distinct after sanitising
        safe += "-" + hashlib.sha1(text.encode()).hexdigest()[:6]
    return safe


def cell_id(client: str, spec: PrivacySpec, algorithm: str, classifier: str, seed: int) -> str:
    return f"{_safe(client)}__{spec.slug}__{algorithm}__{classifier}__s{seed}"


# --------------------------------------------------------------------------- data
@dataclasses.dataclass
class AuditData:
    """The loaded, validated table plus everything a worker needs (picklable)."""

    name: str
    frame: pd.DataFrame
    schema: Any
    hierarchies: dict[str, Any]
    target: str
    positive_label: str
    qis: list[str]
    sensitive: Any
    protected: dict[str, Any]
    features: list[str]
    clients: dict[str, pd.Index]
    row_counts: dict[str, Any] = dataclasses.field(default_factory=dict)  # read / filtered / dropped


def _schema_dict(schema: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(schema):
        raw = dataclasses.asdict(schema)
    elif hasattr(schema, "model_dump"):
        raw = schema.model_dump()
    else:
        raw = dict(vars(schema))
    return json.loads(dumps(raw, indent=None)) if _jsonable(raw) else {k: str(v) for k, v in raw.items()}


def _jsonable(obj: Any) -> bool:
    try:
        dumps(obj, indent=None)
    except (TypeError, ValueError):
        return False
    return True


def load_audit_data(grid: AuditGrid) -> AuditData:
    """Load the dataset and check every column the grid will touch (one-line FedlabError otherwise)."""
    from .datasets import load_dataset
    from .schema import load_schema

    if grid.csv:
        if not Path(grid.csv).is_file():
            raise DataError(f"csv file {grid.csv} not found")
        if not Path(grid.schema_path).is_file():
            raise ConfigError(f"schema file {grid.schema_path} not found")
        ds = load_dataset(csv=grid.csv, schema=load_schema(grid.schema_path))
        name = Path(grid.csv).stem
    elif grid.schema_path:
        if not Path(grid.schema_path).is_file():
            raise ConfigError(f"schema file {grid.schema_path} not found")
        ds = load_dataset(grid.dataset, schema=load_schema(grid.schema_path))
        name = grid.dataset
    else:
        ds = load_dataset(grid.dataset)
        name = grid.dataset
    frame, schema = ds.frame, ds.schema
    source = grid.csv or name

    def need(column: str, role: str) -> None:
        if column not in frame.columns:
            raise DataError(
                f"{source}: {role} column {column!r} not found (columns: {', '.join(frame.columns)})"
            )

    need(schema.target, "target")
    qis = list(schema.quasi_identifiers)
    for q in qis:
        need(q, "quasi-identifier")
        if q not in ds.hierarchies:
            raise DataError(f"{source}: no generalization hierarchy for quasi-identifier {q!r}")
    protected = dict(schema.protected or {})
    if not protected:
        raise DataError(
            f"{source}: schema names no protected attribute (protected = {{ attr = privileged }})"
        )
    for attr in protected:
        need(attr, "protected")
    sensitive, specs = schema.sensitive, grid.privacy_models()
    sensitive_cols = [sensitive] if isinstance(sensitive, str) else list(sensitive or [])
    if any(spec.family in ("l", "t") for spec in specs):
        for s in sensitive_cols:
            need(s, "sensitive")
        if not sensitive:
            raise DataError(f"{source}: l-diversity / t-closeness need a sensitive attribute in the schema")
    y = frame[schema.target].astype(str)
    positive = str(schema.positive_label)
    if not (y == positive).any() or (y == positive).all():
        raise DataError(
            f"{source}: target {schema.target!r} must contain both {positive!r} and another value "
            f"(found {', '.join(sorted(y.unique())[:5])})"
        )
    if grid.max_rows and len(frame) > grid.max_rows:
        from sklearn.model_selection import train_test_split

        frame, _ = train_test_split(frame, train_size=grid.max_rows, stratify=y, random_state=0)
        frame = frame.sort_index()
    dropped = set(getattr(schema, "drop", []) or []) | {schema.target}
    if grid.split_by:
        need(grid.split_by, "--split-by")
        dropped.add(grid.split_by)
        clients = {str(v): idx for v, idx in frame.groupby(grid.split_by, sort=True).groups.items()}
    else:
        clients = {"all": frame.index}
    features = [c for c in frame.columns if c not in dropped]
    ytab = frame[schema.target].astype(str) == positive
    min_rows = max(20, 2 * int(max(grid.privacy_models(), key=lambda s: s.k).k))
    for client, idx in clients.items():
        counts = ytab.loc[idx].value_counts()
        if len(idx) < min_rows or len(counts) < 2 or counts.min() < 2:
            raise DataError(
                f"{source}: partition {grid.split_by}={client!r} has {len(idx)} rows "
                f"({int(ytab.loc[idx].sum())} positive); need >= {min_rows} rows and >= 2 of each class"
            )
    ls, ts = [p.l for p in specs if p.l], [p.t for p in specs if p.t is not None]
    check_privacy_feasible(frame, sensitive_cols, ls, ts, source, clients)  # before any cell runs
    return AuditData(
        name=name,
        frame=frame,
        schema=schema,
        hierarchies=dict(ds.hierarchies),
        target=schema.target,
        positive_label=positive,
        qis=qis,
        sensitive=sensitive,
        protected=protected,
        features=features,
        clients=clients,
        row_counts=dict(ds.row_counts),
    )


def settings_of(grid: AuditGrid, data: AuditData) -> dict[str, Any]:
    """Everything that changes a cell's numbers besides its own coordinates (checked on resume)."""
    return {
        "dataset": data.name,
        "csv": str(Path(grid.csv).resolve()) if grid.csv else "",
        "rows": len(data.frame),
        # content fingerprint: resuming against an edited CSV must not mix old and new cells
        "data_hash": f"{int(pd.util.hash_pandas_object(data.frame, index=True).sum()) & 0xFFFFFFFFFFFF:012x}",
        "schema": _schema_dict(data.schema),
        "suppression_limit": grid.suppression_limit,
        "test_size": grid.test_size,
        "split_by": grid.split_by,
        "max_rows": grid.max_rows,
        "individual_rows": grid.individual_rows,
        "k_neighbors": grid.k_neighbors,
        "l_kind": grid.l_kind,
    }


# --------------------------------------------------------------------------- one task
_WORKER: dict[str, Any] = {}


def _init_worker(data: AuditData, settings: dict[str, Any], cache: str, threads: int) -> None:
    """Per-process state, sent once; BLAS/OpenMP pinned so processes do not oversubscribe cores."""
    _WORKER.update(data=data, settings=settings, cache=cache)
    if threads:
        from threadpoolctl import threadpool_limits

        _WORKER["limits"] = threadpool_limits(threads)


def _split(data: AuditData, client: str, seed: int, test_size: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    part = data.frame.loc[data.clients[client]]
    y = part[data.target].astype(str) == data.positive_label
    train, test = train_test_split(part, test_size=test_size, stratify=y, random_state=seed)
    return train, test


def _anonymize(task: Task, data: AuditData, train: pd.DataFrame, test: pd.DataFrame, settings: dict):
    """(generalized train, generalized test, anonymization columns) for one task."""
    if task.spec.family == "baseline":
        info: dict[str, Any] = dict.fromkeys(ANON_COLUMNS[3:], float("nan"))
        info.update(suppressed_rows=0, suppressed_fraction=0.0, anon_height=0, anon_levels="{}")
        return train, test, info
    from .anonymize import PrivacyModel, anonymize

    model_kw: dict[str, Any] = {"k": task.spec.k}
    if task.spec.l is not None:
        model_kw.update(l=task.spec.l, l_kind=settings["l_kind"])
    if task.spec.t is not None:
        model_kw["t"] = task.spec.t
    res = anonymize(
        train,
        data.qis,
        data.hierarchies,
        PrivacyModel(**model_kw),
        algorithm=task.algorithm,
        suppression_limit=settings["suppression_limit"],
        sensitive=data.sensitive,
    )
    m = dict(res.metrics)
    info = {
        "suppressed_rows": m.get("suppressed_rows", len(train) - len(res.table)),
        "suppressed_fraction": m.get("suppressed_fraction", 1 - len(res.table) / max(len(train), 1)),
        "anon_height": m.get("height", float("nan")),
        "anon_loss": m.get("loss", m.get("ncp", float("nan"))),
        "anon_discernibility": m.get("discernibility", float("nan")),
        "anon_avg_class_size": m.get("avg_class_size", float("nan")),
        "anon_seconds": m.get("seconds", float("nan")),
        "anon_levels": json.dumps(dict(res.levels) if res.levels is not None else {}, default=str),
    }
    return res.table, res.transform(test), info


def _evaluate(
    classifier: str, task: Task, data: AuditData, tables: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]
) -> dict[str, Any]:
    from .fairness import group_fairness
    from .individual import individual_fairness
    from .models import as_model_input, make_classifier
    from .utility import utility_metrics

    raw_test, gen_train, gen_test = tables
    settings = _WORKER["settings"]
    y_train = (gen_train[data.target].astype(str) == data.positive_label).astype(int).to_numpy()
    # labels and protected groups come from the raw rows: generalization must not blur who is who
    raw = raw_test.loc[gen_test.index]
    y_test = (raw[data.target].astype(str) == data.positive_label).astype(int).to_numpy()
    X_train = as_model_input(gen_train[data.features])
    X_test = as_model_input(gen_test[data.features])
    t0 = time.perf_counter()
    pipe = make_classifier(classifier, X_train, seed=task.seed).fit(X_train, y_train)
    t1 = time.perf_counter()
    proba = pipe.predict_proba(X_test)[:, 1]
    pred = (proba >= 0.5).astype(int)
    row: dict[str, Any] = utility_metrics(y_test, pred, proba)
    for attr, privileged in data.protected.items():
        gf = group_fairness(y_test, pred, raw[attr].reset_index(drop=True), privileged)
        row.update({f"{attr}_{k}": v for k, v in gf.items()})
    row.update(
        individual_fairness(
            pipe.named_steps["prep"].transform(X_test),
            proba,
            pred,
            k_ncf=settings["k_neighbors"],
            max_rows=settings["individual_rows"],
            seed=task.seed,
        )
    )
    row.update(fit_seconds=t1 - t0, eval_seconds=time.perf_counter() - t1)
    return row


def run_task(task: Task) -> list[dict[str, Any]]:
    """Anonymize once, evaluate every classifier of the task, checkpoint each row as a cell file."""
    data: AuditData = _WORKER["data"]
    settings = _WORKER["settings"]
    train, test = _split(data, task.client, task.seed, settings["test_size"])
    base = {
        "client": task.client,
        "privacy_model": task.spec.label,
        "family": task.spec.family,
        "k": task.spec.k,
        "l": task.spec.l if task.spec.l is not None else float("nan"),
        "t": task.spec.t if task.spec.t is not None else float("nan"),
        "algorithm": task.algorithm,
        "seed": task.seed,
        "n_train_raw": len(train),
    }
    rows = []
    try:
        gen_train, gen_test, info = _anonymize(task, data, train, test, settings)
        ytr = gen_train[data.target].astype(str) == data.positive_label
        if len(gen_train) == 0 or ytr.nunique() < 2:
            raise DataError(f"anonymized train table has {len(gen_train)} rows and {ytr.nunique()} classes")
        failure = ""
    except (FedlabError, ValueError) as exc:  # e.g. no solution within the suppression limit
        failure, info = f"failed: {' '.join(str(exc).split())}", {}
    for clf in task.classifiers:
        row = {"cell_id": task.cell_id(clf), **base, "classifier": clf, "status": failure or "ok", **info}
        if not failure:
            row.update(n_train=len(gen_train), n_test=len(gen_test))
            row.update(_evaluate(clf, task, data, (test, gen_train, gen_test)))
        write_json_atomic(
            Path(_WORKER["cache"]) / f"{row['cell_id']}.json", {"settings": settings, "row": row}
        )
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- grid
def plan_tasks(grid: AuditGrid, data: AuditData) -> list[Task]:
    tasks = []
    for client in data.clients:
        for spec in grid.privacy_models():
            algorithms = ["none"] if spec.family == "baseline" else grid.algorithms
            for algorithm in algorithms:
                for seed in grid.seeds:
                    tasks.append(Task(client, spec, algorithm, seed, tuple(grid.classifiers)))
    return tasks


def _read_cells(folders: Iterable[Path], settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
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


def _execute(
    tasks: list[Task],
    data: AuditData,
    settings: dict[str, Any],
    cache: Path,
    n_jobs: int,
    on_done: Callable[[Task], None],
) -> None:
    workers = min(n_jobs, len(tasks))
    if workers <= 1:
        _init_worker(data, settings, str(cache), 0)
        for task in tasks:
            run_task(task)
            on_done(task)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)  # OpenMP (hgb) must not oversubscribe cores
    ctx = multiprocessing.get_context("spawn")  # no fork: the progress bar runs a thread
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(data, settings, str(cache), threads)) as pool:  # fmt: skip
        pending: dict[Future, Task] = {pool.submit(run_task, t): t for t in tasks}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    fut.result()
                    on_done(pending.pop(fut))
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise


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
    fair = [f"{a}_{k}" for a in protected for k in FAIRNESS_KEYS]
    order = KEY_COLUMNS + ANON_COLUMNS + list(UTILITY_KEYS) + fair + list(INDIVIDUAL_KEYS) + TIME_COLUMNS
    df = pd.DataFrame(rows)
    for col in order:
        if col not in df.columns:
            df[col] = np.nan
    df = df[order + [c for c in df.columns if c not in order]]
    for col in ("l", "t", *ANON_COLUMNS[:-1]):
        df[col] = pd.to_numeric(df[col], errors="coerce")
    return df


def checkpoint_dir(out_dir: Path) -> Path:
    """Hidden folder next to the run directory where cells land while the grid runs."""
    out_dir = Path(out_dir)
    return out_dir.parent / f".{out_dir.name}.cells"


def run_audit(
    grid: AuditGrid,
    out_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    command: list[str] | None = None,
) -> Path:
    """Run (or resume) the grid into `out_dir`, published atomically; returns the run directory."""
    started = time.perf_counter()
    final = Path(out_dir)
    data = load_audit_data(grid)  # all input errors surface here, before anything is written
    settings = settings_of(grid, data)
    tasks = plan_tasks(grid, data)
    cache = checkpoint_dir(final)
    if not resume:
        if final.exists() and any(final.iterdir()):
            raise FedlabError(f"run directory {final} already exists and is not empty; choose another --out")
        if cache.exists():
            raise FedlabError(f"an unfinished run left {cache}; pass --resume to continue it or delete it")
    with atomic_run_dir(final, resume=resume) as work:
        cells_dir = work / "cells"
        done = _read_cells([cells_dir, cache], settings)
        todo = []
        for t in tasks:
            missing = tuple(c for c in t.classifiers if t.cell_id(c) not in done)
            if missing:
                todo.append(dataclasses.replace(t, classifiers=missing))
        reused = sum(len(t.classifiers) for t in tasks) - sum(len(t.classifiers) for t in todo)
        cache.mkdir(parents=True, exist_ok=True)
        n_jobs = grid.n_jobs if grid.n_jobs > 0 else (os.cpu_count() or 1)
        compute_started = time.perf_counter()
        try:
            with ProgressBar(progress, len(todo)) as advance:
                _execute(todo, data, settings, cache, n_jobs, advance)
        except BaseException:
            if not any(cache.iterdir()):  # nothing finished: leave no empty checkpoint behind
                cache.rmdir()
            raise
        compute_seconds = time.perf_counter() - compute_started
        cells_dir.mkdir(exist_ok=True)
        for path in cache.glob("*.json"):
            shutil.copy2(path, cells_dir / path.name)
        done = _read_cells([cells_dir], settings)
        rows = [done[t.cell_id(c)] for t in tasks for c in t.classifiers]
        results = results_frame(rows, data.protected)
        write_text_atomic(work / "results.csv", results.to_csv(index=False))
        write_bytes_atomic(work / "results.parquet", results.to_parquet(index=False))
        write_text_atomic(work / "config.toml", grid.to_toml())
        summary = _summary(grid, data, settings, results, command)
        summary["timings"] = {
            "total_seconds": time.perf_counter() - started,
            "compute_seconds": compute_seconds,
            "cells_total": len(rows),
            "cells_computed": len(rows) - reused,
            "cells_reused": reused,
            "tasks_computed": len(todo),
            "n_jobs": n_jobs,
            "anon_seconds_sum": float(results["anon_seconds"].sum(skipna=True)),
            "fit_seconds_sum": float(results["fit_seconds"].sum(skipna=True)),
        }
        write_json_atomic(work / "summary.json", summary)
    shutil.rmtree(cache, ignore_errors=True)
    return final


def _summary(
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
