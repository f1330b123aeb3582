"""Run the privacy-vs-fairness audit grid: plan its tasks, compute the missing ones, publish the run.

Work is grouped into *tasks* (client, privacy model, algorithm, seed): one anonymization
feeds every classifier (audits.experiment.cell runs one task). Each finished (task, classifier) row is a
*cell*, checkpointed as it finishes and published with the run directory (audits.experiment.results).
``resume=True`` reads both back and only computes what is missing. With ``n_jobs`` > 1 the
tasks run in spawned worker processes.

What to audit is audits.experiment.grid; the table it runs on is audits.experiment.table.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from audits.experiment.cell import init_worker, run_task
from audits.experiment.grid import AuditGrid, Task
from audits.experiment.progress_bar import ProgressBar
from audits.experiment.results import (
    checkpoint_dir,
    publish_cells,
    read_cells,
    results_frame,
    summary_of,
    write_tables,
)
from audits.experiment.table import AuditData, load_audit_data, settings_of
from fedlab.core.errors import FedlabError
from fedlab.core.rundir import atomic_run_dir, check_out_dir, write_json_atomic


def plan_tasks(grid: AuditGrid, data: AuditData) -> list[Task]:
    """Every task of the grid, in a fixed order: client, privacy model, algorithm, seed."""
    tasks = []
    for client in data.clients:
        for spec in grid.privacy_models():
            algorithms = ["none"] if spec.family == "baseline" else grid.algorithms
            for algorithm in algorithms:
                for seed in grid.seeds:
                    tasks.append(Task(client, spec, algorithm, seed, tuple(grid.classifiers)))
    return tasks


def _execute(
    tasks: list[Task],
    data: AuditData,
    settings: dict[str, Any],
    cache: Path,
    n_jobs: int,
    on_done: Callable[[Task], None],
) -> None:
    """Run `tasks` in this process (one job) or in a pool of spawned processes; `on_done` after each."""
    workers = min(n_jobs, len(tasks))
    if workers <= 1:
        init_worker(data, settings, str(cache), 0)
        for task in tasks:
            run_task(task)
            on_done(task)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)  # OpenMP (hgb) must not oversubscribe cores
    ctx = multiprocessing.get_context("spawn")  # no fork: the progress bar runs a thread
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=init_worker,
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
    grid = grid.portable()
    check_out_dir(final)
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
        done = read_cells([cells_dir, cache], settings)
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
        publish_cells(cache, cells_dir)
        done = read_cells([cells_dir], settings)
        rows = [done[t.cell_id(c)] for t in tasks for c in t.classifiers]
        results = results_frame(rows, data.protected)
        write_tables(work, results, grid)
        summary = summary_of(grid, data, settings, results, command)
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
