"""The audited table: loaded, checked against every column the grid will touch, split into clients.

`settings_of` fingerprints the data and the grid settings that change a cell's numbers, so a
resumed run can refuse cells that were made under other settings.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pandas as pd

from audits.anonymity.feasibility import check_privacy_feasible
from audits.experiment.grid import AuditGrid
from audits.experiment.splits import subsample
from fedlab.core.errors import ConfigError, DataError
from fedlab.core.rundir import dumps


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
    favourable: int = 1  # 1: the positive label is the favourable outcome; 0: the other label
    favourable_label: str = ""
    export: bool = False  # --export: write anonymized train tables and test predictions


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
    from audits.datasets.load import load_dataset
    from audits.datasets.schema import load_schema

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
    favourable = int(getattr(schema, "favourable_class", 1))
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
    frame = subsample(frame, schema.target, grid.max_rows)
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
        favourable=favourable,
        favourable_label=str(getattr(schema, "favourable", positive)),
        export=grid.export,
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
        "min_group_size": grid.min_group_size,
    }
