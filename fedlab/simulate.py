"""Library entry point for simulations: `simulate(config)` -> run directory.

Runs fedlab's ServerApp and ClientApp on Flower's simulation engine
(`flwr.simulation.run_simulation`, Ray backend) with one virtual SuperNode per client,
and publishes the run directory atomically (nothing is left behind on failure).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedlab.config import SimulationConfig
from fedlab.engine import simulation_backend
from fedlab.federation import setup_for
from fedlab.rundir import atomic_run_dir, default_run_name

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
    return {
        "client_resources": {"num_cpus": cfg.cpus_per_client, "num_gpus": cfg.gpus_per_client},
        "init_args": {"logging_level": "error", "log_to_driver": False, "include_dashboard": False},
    }


def resolve_engine(cfg: SimulationConfig) -> str:
    if cfg.engine != "auto":
        return cfg.engine
    return "ray" if cfg.gpus_per_client > 0 else "inprocess"


def simulate(
    cfg: SimulationConfig,
    out: Path | None = None,
    on_round: RoundCallback | None = None,
    verbose: bool = False,
) -> SimulationResult:
    """Run one simulation (one strategy, one target, one seed)."""
    from flwr.simulation import run_simulation

    from clients.app import app as client_app
    from server.app import make_server_app, write_resolved_config

    _quiet_flower(verbose)
    setup = setup_for(cfg)  # validates data + target before any directory exists
    cfg = cfg.model_copy(deep=True)
    cfg.training.target = setup.target
    final = (
        Path(out)
        if out
        else Path(cfg.out) / default_run_name(f"{cfg.training.strategy}-{setup.target}-s{cfg.seed}")
    )
    with atomic_run_dir(final) as work:
        write_resolved_config(work, cfg)
        server_app = make_server_app(cfg, work, on_round)
        with simulation_backend(resolve_engine(cfg)):
            run_simulation(
                server_app=server_app,
                client_app=client_app,
                num_supernodes=len(setup.clients),
                backend_config=backend_config(cfg),
                verbose_logging=verbose,
            )
        summary = server_app.outcome.get("summary")  # type: ignore[attr-defined]
        if summary is None:
            raise RuntimeError("the simulation ended without a summary (see the log above)")
    return SimulationResult(run_dir=final, summary=summary)
