"""One task of the audit: anonymize a client's train split once, then train and measure each classifier.

Split the client's table (stratified, seeded), anonymize the TRAIN part only, apply the same
recoding to the test part, fit each classifier on the generalized train table and evaluate it on
the generalized test table — utility, group fairness per protected attribute (on the raw, never
generalized attribute values), individual fairness, anonymization metrics. Every finished
(task, classifier) row is written at once as a cell file in the checkpoint folder.

Runs in worker processes: `init_worker` hands each process the data and settings once.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from audits.experiment.grid import Task
from audits.experiment.results import ANON_COLUMNS
from audits.experiment.splits import positives, train_test
from audits.experiment.table import AuditData
from fedlab.core.errors import DataError, FedlabError
from fedlab.core.rundir import write_json_atomic, write_text_atomic

_WORKER: dict[str, Any] = {}


def init_worker(data: AuditData, settings: dict[str, Any], cache: str, threads: int) -> None:
    """Per-process state, sent once; BLAS/OpenMP pinned so processes do not oversubscribe cores."""
    _WORKER.update(data=data, settings=settings, cache=cache)
    if threads:
        from threadpoolctl import threadpool_limits

        _WORKER["limits"] = threadpool_limits(threads)


def _split(data: AuditData, client: str, seed: int, test_size: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    part = data.frame.loc[data.clients[client]]
    return train_test(part, positives(part, data.target, data.positive_label), test_size, seed)


def _anonymize(task: Task, data: AuditData, train: pd.DataFrame, test: pd.DataFrame, settings: dict):
    """(generalized train, generalized test, anonymization columns) for one task."""
    if task.spec.family == "baseline":
        info: dict[str, Any] = dict.fromkeys(ANON_COLUMNS[3:], float("nan"))
        info.update(suppressed_rows=0, suppressed_fraction=0.0, anon_height=0, anon_levels="{}")
        return train, test, info
    from audits.anonymity import PrivacyModel, anonymize

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
    from audits.experiment.classifiers import as_model_input, make_classifier
    from audits.measures.fairness import group_fairness, group_sizes
    from audits.measures.individual import individual_fairness
    from audits.measures.utility import utility_context, utility_metrics

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
    ctx = utility_context(y_test, pred)
    row.update(
        majority_rate=ctx["majority_rate"],
        prevalence=ctx["prevalence"],
        near_trivial=float(ctx["degenerate"]),
        near_trivial_reason=ctx["degenerate_reason"],
    )
    min_group = settings.get("min_group_size", 0)
    for attr, privileged in data.protected.items():
        groups = raw[attr].reset_index(drop=True)
        gf = group_fairness(y_test, pred, groups, privileged, data.favourable, min_group)
        row.update({f"{attr}_{k}": v for k, v in gf.items()})
        row[f"{attr}_group_sizes"] = json.dumps(group_sizes(groups), sort_keys=True)
    if data.export:
        _export(task, classifier, data, raw, gen_train, y_test, pred, proba)
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


EXPORTS = "exports"


def _export(task: Task, classifier: str, data: AuditData, raw: pd.DataFrame, gen_train: pd.DataFrame,
            y_test: Any, pred: Any, proba: Any) -> None:  # fmt: skip
    """``--export``: the anonymized training table (once per task) and this classifier's test
    predictions (group columns, y_true, y_pred, probability; 1 = the positive label), so anyone can
    recompute every number of the cell with plain pandas."""
    folder = Path(_WORKER["cache"]) / EXPORTS
    folder.mkdir(exist_ok=True)
    stem = task.cell_id(classifier)
    train_file = folder / f"{stem.rsplit('__', 2)[0]}__s{task.seed}__train.csv"
    if not train_file.exists():
        write_text_atomic(train_file, gen_train.to_csv(index=False))
    frame = raw[list(data.protected)].reset_index(drop=True).assign(
        y_true=y_test, y_pred=pred, proba_positive=proba
    )
    write_text_atomic(folder / f"{stem}__predictions.csv", frame.to_csv(index=False))


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
