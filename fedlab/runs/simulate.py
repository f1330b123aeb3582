"""Library entry point for simulations: `simulate(config)` -> run directory.

Runs fedlab's ServerApp and ClientApp with one virtual SuperNode per client and publishes the
run directory atomically (nothing is left behind on failure or interrupt). Engines:
"inprocess" / "process" use fedlab's runtime (`fedlab.runtime.direct`: a direct Grid, no link state),
"flower" Flower's `run_simulation` with the in-process backend, "ray" Flower's Ray backend
(joining an existing cluster when `ray_address` is set).
"""

from __future__ import annotations

import gc
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedlab.config import SimulationConfig
from fedlab.core.errors import ConfigError
from fedlab.core.rundir import atomic_run_dir, check_out_dir, default_run_name
from fedlab.federation.setup import setup_for
from fedlab.learn.threads import threads_for, torch_threads
from fedlab.runs.select import SELECT, expand, run_selected
from fedlab.runtime.backends import CLIENT_APP_REF, simulation_backend

RoundCallback = Callable[[dict[str, Any]], None]


@dataclass
class SimulationResult:
    run_dir: Path
    summary: dict[str, Any]


class _DropRunSimulationNotice(logging.Filter):
    """fedlab drives the simulation runtime from Python on purpose (it also supports
    `flwr run .`); Flower's notice that `run_simulation` is deprecated is noise for users."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = str(record.msg)
        return "run_simulation" not in msg and "deprecated feature" not in msg.lower()


def _quiet_flower(verbose: bool) -> None:
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    level = logging.INFO if verbose else logging.WARNING
    flwr_logger = logging.getLogger("flwr")
    flwr_logger.setLevel(level)
    if not verbose and not any(isinstance(f, _DropRunSimulationNotice) for f in flwr_logger.filters):
        flwr_logger.addFilter(_DropRunSimulationNotice())
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def backend_config(cfg: SimulationConfig) -> dict[str, Any]:
    """Ray resources: each virtual client gets `cpus_per_client` CPUs and `gpus_per_client` GPUs."""
    init: dict[str, Any] = {"logging_level": "error", "log_to_driver": False, "include_dashboard": False}
    if cfg.ray_address:  # join a running cluster (ray.init(address=...)): no local cluster options
        init = {"address": cfg.ray_address, "logging_level": "error", "log_to_driver": False}
    return {
        "client_resources": {"num_cpus": cfg.cpus_per_client, "num_gpus": cfg.gpus_per_client},
        "init_args": init,
    }


def resolve_engine(cfg: SimulationConfig) -> str:
    if cfg.engine != "auto":
        return cfg.engine
    return "ray" if cfg.gpus_per_client > 0 or cfg.ray_address else "inprocess"


@contextmanager
def long_lived_objects_frozen() -> Iterator[None]:
    """Keep the cyclic garbage collector off everything that exists before the run, while it lasts.

    Why: torch, Flower, pandas and the loaded federation are ~450k tracked objects (1,000
    tabular clients). A run allocates many short-lived containers (messages, records), which now
    and then triggers a full collection that traverses all of them: ~0.3 s each on 2 cores, the
    largest single overhead of a 1,000-client round. Frozen objects are skipped by collections
    (they are still freed by reference counting); `gc.unfreeze` hands them back afterwards, so
    nothing outlives the run because of this. A caller that froze objects itself keeps them frozen.
    Forked pool workers (``engine = "process"``) inherit the frozen state."""
    owner = gc.get_freeze_count() == 0
    gc.freeze()
    try:
        yield
    finally:
        if owner:
            gc.unfreeze()


def check_scale(cfg: SimulationConfig, num_clients: int, flag: bool = False) -> None:
    """Settings that only make sense against the federation's size, checked before any run.

    `flag`: the value came from ``--clients-per-round`` (name the flag in the error)."""
    k = cfg.training.clients_per_round
    if k > num_clients:
        name = f"--clients-per-round {k}" if flag else f"training.clients_per_round = {k}"
        raise ConfigError(
            f"{name} exceeds the federation's {num_clients} clients (0 = every client every round)"
        )
    if 0 < k < num_clients and cfg.dp.enabled and cfg.dp.mode == "central":
        raise ConfigError(
            "central DP with clients_per_round is not supported: its noise is calibrated for every "
            "client every round; use clients_per_round = 0 or client DP"
        )
    if cfg.training.mmd_reweight != "off" and cfg.dp.enabled and cfg.dp.mode == "client":
        raise ConfigError(
            "training.mmd_reweight weights the matching by each client's label frequencies, which DP-SGD "
            'does not privatize; use mmd_reweight = "off" with client DP'
        )
    if cfg.ray_address and resolve_engine(cfg) != "ray":
        raise ConfigError(f'ray_address is set but engine = {cfg.engine!r}; use engine = "ray"')


def check_strategy(cfg: SimulationConfig, names: list[str] | None = None) -> None:
    """Each strategy name (default: the config's) resolves and keeps the run's DP mode (one-line
    ConfigError otherwise), checked before any data is loaded or directory written."""
    from fedlab.metrics.comparison import REFERENCES
    from server.strategies import check_dp, resolve_strategy

    names = names or [cfg.training.strategy]
    if SELECT in names and cfg.dp.enabled:
        raise ConfigError(
            f"{SELECT} chooses by training 2 x (source domains) extra runs on the clients' data, and under "
            "DP their privacy losses compose beyond the run's budget: name the strategy (fedka or fedavg)"
        )
    for name in expand(names):  # fedka-select: the two it may run
        if name not in REFERENCES:  # central / oracle: a sweep's reference rows, not strategies
            check_dp(resolve_strategy(name), cfg.dp)


def _warn_small_clients(small: dict[str, tuple[int, int]]) -> None:
    if not small:
        return
    count = sum(n for n, _ in small.values())
    where = ", ".join(f"{domain} {n}/{total}" for domain, (n, total) in small.items())
    logging.getLogger("fedlab").warning(
        "%d clients have too few training rows to take a step (%s); their updates fail whenever "
        "they are sampled: use fewer clients per domain",
        count,
        where,
    )


def simulate(
    cfg: SimulationConfig,
    out: Path | None = None,
    on_round: RoundCallback | None = None,
    verbose: bool = False,
    on_status: Callable[[str, int, int], None] | None = None,
) -> SimulationResult:
    """Run one simulation (one strategy, one target, one seed).

    `on_status(message_type, done, total)` reports clients finished within a round (fedlab's
    runtime only), so progress shows before the first round ends."""
    from clients.app import app as client_app
    from server.app import make_server_app, write_resolved_config

    _quiet_flower(verbose)
    check_strategy(cfg)
    check_out_dir(Path(out) if out else Path(cfg.out), "--out" if out else "out")
    setup = setup_for(cfg)  # validates data + target before any directory exists
    check_scale(cfg, len(setup.clients))
    _warn_small_clients(setup.clients_too_small())
    engine = resolve_engine(cfg)
    cfg = cfg.model_copy(deep=True)
    cfg.training.target = setup.target
    final = (
        Path(out)
        if out
        else Path(cfg.out) / default_run_name(f"{cfg.training.strategy}-{setup.target}-s{cfg.seed}")
    )
    if cfg.training.strategy == SELECT:  # the choice's pseudo-task runs are kept in its summary only
        with tempfile.TemporaryDirectory(prefix="fedlab-selection-") as scratch:
            return run_selected(cfg, final, Path(scratch), {}, simulate, on_round, on_status)
    with (
        atomic_run_dir(final) as work,
        torch_threads(threads_for(cfg.torch_threads, setup.fed.kind)),
        long_lived_objects_frozen(),
    ):
        write_resolved_config(work, cfg)
        if engine in ("inprocess", "process"):
            from fedlab.runtime.direct import backend_for, run_direct

            server_app = make_server_app(cfg, work, on_round)
            backend = backend_for(engine, cfg.workers, CLIENT_APP_REF)
            run_direct(server_app, lambda: client_app, len(setup.clients), backend, on_status, cfg.to_flat())
        else:
            server_app = _run_flower(cfg, work, on_round, engine, len(setup.clients), verbose)
        summary = server_app.outcome.get("summary")  # type: ignore[attr-defined]
        if summary is None:
            raise RuntimeError("the simulation ended without a summary (see the log above)")
    return SimulationResult(run_dir=final, summary=summary)


def _run_flower(cfg: SimulationConfig, work: Path, on_round, engine: str, n: int, verbose: bool):
    """Flower's `run_simulation` (ServerApp in its own thread, made interruptible)."""
    from flwr.simulation import run_simulation

    from clients.app import make_client_app
    from fedlab.runtime.direct import AbortableGrid
    from fedlab.runtime.interrupts import ABORT
    from server.app import make_server_app

    ABORT.clear()
    server_app = make_server_app(cfg, work, on_round, grid_wrapper=AbortableGrid)
    try:
        with simulation_backend(engine):
            run_simulation(
                server_app=server_app,
                client_app=make_client_app(cfg.to_flat()),
                num_supernodes=n,
                backend_config=backend_config(cfg),
                verbose_logging=verbose,
            )
    except BaseException:
        ABORT.set()  # the ServerApp thread stops at its next grid wait
        raise
    return server_app
