"""Re-identification risk of the released training table, before vs after anonymization.

Prosecutor risk of a record = 1 / size of its equivalence class (records sharing its
quasi-identifier values): an attacker who knows someone is in the table picks them out with
that probability. Per table we report the maximum, the average over records, and the share
of records above a threshold (0.2 = classes smaller than 5).

Class sizes come from the audit run when it stores them (columns ``anon_class_sizes`` /
``raw_class_sizes``: JSON ``{size: number of classes}``). Otherwise they are recomputed for
the first seed: the split is redone exactly as `audits.experiment.cell` does it, the stored
generalization levels are re-applied (one lattice-node evaluation, no search; Mondrian is
re-run), and the suppressed-row count is checked against the audit's own number.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from audits.experiment.grid import AuditGrid
from audits.experiment.splits import positives, subsample, train_test
from fedlab.report.read import Notes

THRESHOLD = 0.2
BUCKETS: list[tuple[int, float, str]] = [
    (1, 1, "1"),
    (2, 4, "2–4"),
    (5, 9, "5–9"),
    (10, 24, "10–24"),
    (25, 99, "25–99"),
    (100, math.inf, "100+"),
]


@dataclass
class RiskRow:
    label: str  # "before" or the privacy model label
    client: str
    algorithm: str
    seed: int
    records: int
    classes: int
    min_class: int
    max_risk: float
    avg_risk: float
    share_above: float
    suppressed: int
    buckets: dict[str, int] = field(default_factory=dict)  # records per class-size bucket
    source: str = "recomputed"


def stats_from_sizes(sizes: Iterable[int], threshold: float = THRESHOLD) -> dict[str, Any]:
    """Risk summary of one table from its equivalence-class sizes."""
    s = np.asarray([x for x in sizes if x > 0], dtype=float)
    if s.size == 0:
        return {
            "records": 0,
            "classes": 0,
            "min_class": 0,
            "max_risk": math.nan,
            "avg_risk": math.nan,
            "share_above": math.nan,
            "buckets": {b[2]: 0 for b in BUCKETS},
        }
    records = float(s.sum())
    return {
        "records": int(records),
        "classes": int(s.size),
        "min_class": int(s.min()),
        "max_risk": float(1.0 / s.min()),
        "avg_risk": float(s.size / records),  # mean over records of 1/size
        "share_above": float(s[1.0 / s > threshold].sum() / records),
        "buckets": {label: int(s[(s >= lo) & (s <= hi)].sum()) for lo, hi, label in BUCKETS},
    }


def sizes_from_hist(text: Any) -> list[int] | None:
    """Expand a stored ``{size: n_classes}`` JSON histogram into a list of class sizes."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        hist = json.loads(text)
    except json.JSONDecodeError:
        return None
    return [int(size) for size, n in hist.items() for _ in range(int(n))]


def audit_risk(
    results: pd.DataFrame, grid: dict[str, Any] | None, notes: Notes, threshold: float = THRESHOLD
) -> list[RiskRow]:
    """Risk rows for 'before' and every anonymized cell (first ok seed per client × model × algorithm)."""
    ok = results[results["status"] == "ok"]
    anon = ok[ok["family"] != "baseline"]
    if anon.empty:
        notes.add("risk: no successfully anonymized cell, so there is nothing to compare")
        return []
    firsts = anon.sort_values("seed", kind="stable").groupby(["client", "privacy_model", "algorithm"]).head(1)
    firsts = firsts.sort_index()  # back to the grid's order
    if "anon_class_sizes" in results.columns and firsts["anon_class_sizes"].notna().all():
        return _stored(firsts, ok, threshold)
    if grid is None:
        notes.add("risk: config.toml is missing and the run stores no class sizes, so risk is not shown")
        return []
    try:
        return _recompute(firsts, grid, notes, threshold)
    except (ImportError, OSError, ValueError, KeyError) as exc:
        notes.add(f"risk: could not recompute class sizes from the data ({exc.__class__.__name__}: {exc})")
        return []


def _row(label: str, cell: Any, sizes: list[int], suppressed: int, threshold: float, source: str) -> RiskRow:
    st = stats_from_sizes(sizes, threshold)
    return RiskRow(
        label,
        str(cell["client"]),
        str(cell["algorithm"]),
        int(cell["seed"]),
        suppressed=suppressed,
        source=source,
        **st,
    )


def _stored(firsts: pd.DataFrame, ok: pd.DataFrame, threshold: float) -> list[RiskRow]:
    rows = []
    for (client, seed), part in firsts.groupby(["client", "seed"], sort=False):
        raw = sizes_from_hist(part.iloc[0].get("raw_class_sizes"))
        if raw is not None:
            cell = {"client": client, "algorithm": "none", "seed": seed}
            rows.append(_row("before", cell, raw, 0, threshold, "stored"))
    for _, cell in firsts.iterrows():
        sizes = sizes_from_hist(cell["anon_class_sizes"]) or []
        rows.append(
            _row(str(cell["privacy_model"]), cell, sizes, int(cell["suppressed_rows"]), threshold, "stored")
        )
    return rows


def _load_frame(grid: dict[str, Any]) -> tuple[pd.DataFrame, Any, dict[str, Any]]:
    """The audited table, subsampled as `audits.experiment.table.load_audit_data` does, but from the
    grid as stored in the run's config (a plain dict), since re-validating it is not needed."""
    from audits.datasets.load import load_dataset
    from audits.datasets.schema import load_schema

    if grid.get("csv"):
        ds = load_dataset(csv=grid["csv"], schema=load_schema(grid["schema_path"]))
    elif grid.get("schema_path"):
        ds = load_dataset(grid.get("dataset", "adult"), schema=load_schema(grid["schema_path"]))
    else:
        ds = load_dataset(grid.get("dataset", "adult"))
    frame, schema = ds.frame, ds.schema
    frame = subsample(frame, schema.target, int(grid.get("max_rows") or 0))
    return frame, schema, dict(ds.hierarchies)


def _train_split(
    frame: pd.DataFrame, schema: Any, grid: dict[str, Any], client: str, seed: int
) -> pd.DataFrame:
    split_by = grid.get("split_by") or ""
    part = frame if not split_by else frame[frame[split_by].astype(str) == client]
    y = positives(part, schema.target, schema.positive_label)
    test_size = float(grid.get("test_size", AuditGrid.model_fields["test_size"].default))
    train, _ = train_test(part, y, test_size, seed)
    return train


def _privacy_model(cell: Any, grid: dict[str, Any]) -> Any:
    from audits.anonymity import PrivacyModel

    kw: dict[str, Any] = {"k": int(cell["k"])}
    if pd.notna(cell.get("l")):
        kw.update(l=int(cell["l"]), l_kind=grid.get("l_kind", "distinct"))
    if pd.notna(cell.get("t")):
        kw["t"] = float(cell["t"])
    return PrivacyModel(**kw)


def _anon_sizes(train: pd.DataFrame, cell: Any, schema: Any, hier: dict, grid: dict) -> tuple[list[int], int]:
    """(class sizes of the released table, suppressed rows) for one stored cell."""
    from audits.anonymity.verify import k_anonymity

    qis = list(schema.quasi_identifiers)
    model = _privacy_model(cell, grid)
    limit = float(grid.get("suppression_limit", AuditGrid.model_fields["suppression_limit"].default))
    levels = json.loads(cell["anon_levels"]) if isinstance(cell.get("anon_levels"), str) else {}
    if levels and all(q in levels for q in qis):
        from audits.anonymity.encoding import encode

        enc = encode(train, qis, hier, model, schema.sensitive, limit)
        ev = enc.evaluate([int(levels[q]) for q in enc.qis], detail=True)
        sizes = np.asarray(ev.class_sizes)
        return [int(s) for s in sizes[sizes > 0]], int(ev.suppressed)
    from audits.anonymity import anonymize

    res = anonymize(
        train,
        qis,
        hier,
        model,
        algorithm=str(cell["algorithm"]),
        suppression_limit=limit,
        sensitive=schema.sensitive,
    )
    per_class = k_anonymity(res.table, qis, per_class=True)
    return [int(s) for s in per_class["size"]], len(res.suppressed)


def _recompute(firsts: pd.DataFrame, grid: dict[str, Any], notes: Notes, threshold: float) -> list[RiskRow]:
    from audits.anonymity.verify import k_anonymity

    frame, schema, hier = _load_frame(grid)
    qis = list(schema.quasi_identifiers)
    rows: list[RiskRow] = []
    trains: dict[tuple[str, int], pd.DataFrame] = {}
    for _, cell in firsts.iterrows():
        key = (str(cell["client"]), int(cell["seed"]))
        if key not in trains:
            trains[key] = _train_split(frame, schema, grid, *key)
            raw = k_anonymity(trains[key], qis, per_class=True)["size"]
            before = {"client": key[0], "algorithm": "none", "seed": key[1]}
            rows.append(_row("before", before, [int(s) for s in raw], 0, threshold, "recomputed"))
        train = trains[key]
        if pd.notna(cell.get("n_train_raw")) and int(cell["n_train_raw"]) != len(train):
            notes.add(
                f"risk: the re-made split has {len(train)} rows but the audit trained on "
                f"{int(cell['n_train_raw'])}; risk numbers may not match the run"
            )
        sizes, suppressed = _anon_sizes(train, cell, schema, hier, grid)
        if pd.notna(cell.get("suppressed_rows")) and int(cell["suppressed_rows"]) != suppressed:
            notes.add(
                f"risk: {cell['privacy_model']} ({cell['algorithm']}) suppresses {suppressed} rows on "
                f"recomputation vs {int(cell['suppressed_rows'])} in the run"
            )
        rows.append(_row(str(cell["privacy_model"]), cell, sizes, suppressed, threshold, "recomputed"))
    return rows
