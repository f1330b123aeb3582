"""fedlab's Flower ServerApp.

`run_federation` is the whole server side of one run: load the target domain, build
the strategy, call Flower's `Strategy.start` on the grid, and write its results into the run
directory (one metrics line per round, summary, final weights; the caller writes the resolved
config). `fedlab simulate` builds a ServerApp around it with `make_server_app`; `flwr run .` uses the
module-level `app`, which reads the run config from pyproject's [tool.flwr.app.config].
"""

from __future__ import annotations

import io
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context
from flwr.common.logger import log as flwr_log
from flwr.serverapp import Grid, ServerApp

from fedlab import __version__
from fedlab.config import SimulationConfig
from fedlab.core.rundir import (
    append_jsonl,
    atomic_run_dir,
    default_run_name,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)
from fedlab.core.seeding import seed_everything
from fedlab.federation.setup import setup_for
from fedlab.learn.threads import threads_for, use_threads
from fedlab.learn.training import resolve_device
from fedlab.metrics.run_record import dp_summary, summarize_rounds
from fedlab.wire import keys
from server.finite import FiniteReplies
from server.replies import ReplyTracker
from server.strategies import StrategySettings, build_strategy, check_dp, resolve_strategy
from server.strategies.domain import DomainAwareMixin, RoundCallback
from server.target import TargetDomain

log = logging.getLogger("fedlab.server")


def _majority_rate(labels: object) -> float:
    """Share of the most frequent class (NaN for an empty split)."""
    y = np.asarray(labels).astype(np.int64).ravel()
    return float(np.bincount(y).max() / len(y)) if len(y) else float("nan")


def _matching(strategy: DomainAwareMixin, mmd_weight: float) -> dict[str, object] | None:
    """The feature matching a run used (None: no matching), as the summary records it: a result
    from class-weighted matching must say so next to the strategy's name."""
    if strategy.embeddings_per_round <= 0:
        return None
    rows, reweight = strategy.embeddings_per_round, strategy.mmd_reweight
    return {"target_sample": rows, "mmd_weight": mmd_weight, "mmd_reweight": reweight}


def run_federation(
    grid: Grid,
    cfg: SimulationConfig,
    workdir: Path,
    on_round: RoundCallback | None = None,
    *,
    num_clients: int | None = None,
    round_timeout: float = 3600.0,
) -> dict[str, Any]:
    """Run all rounds and write results into `workdir` (which the caller publishes atomically).

    `num_clients` defaults to the simulation's partitions; a deployment passes the number
    of SuperNodes instead. `round_timeout` bounds the wait for replies in each round.
    """
    grid = FiniteReplies(grid)  # a diverged client stops the run (round + client named)
    seed_everything(cfg.seed)
    setup = setup_for(cfg)
    device = resolve_device(cfg.device)
    dom = setup.target_domain
    target = TargetDomain(
        name=setup.target,
        x_pool=dom.x_train,
        y_pool_hidden=dom.y_train,
        x_test=dom.x_test,
        y_test=dom.y_test,
        num_classes=setup.fed.num_classes,
        model_factory=setup.new_model,
        device=device,
        seed=cfg.seed,
    )
    metrics_path = workdir / "metrics.jsonl"
    metrics_path.touch()

    def record_round(record: dict[str, Any]) -> None:
        record = {"strategy": cfg.training.strategy, "target": setup.target, "seed": cfg.seed, **record}
        append_jsonl(metrics_path, record)
        if on_round is not None:
            on_round(record)

    n_clients = len(setup.clients) if num_clients is None else num_clients
    plan = resolve_strategy(cfg.training.strategy)
    check_dp(plan, cfg.dp)
    settings = StrategySettings(cfg.training, cfg.seed, n_clients, dict(cfg.training.strategy_options))
    strategy = build_strategy(plan, settings, target, record_round)
    partitions = getattr(grid, "node_partitions", None)
    if callable(partitions):  # fedlab's runtime knows which client each node holds: no handshake
        strategy.node_clients = {node: setup.clients[p].client_id for node, p in partitions().items()}
    if dom.groups_test is not None and setup.fed.protected and setup.fed.num_classes == 2:
        strategy.fairness_target = (dom.groups_test, dict(setup.fed.protected))
    runner: Any = strategy
    if cfg.dp.enabled and cfg.dp.mode == "central":
        from fedlab.learn.privacy import central_dp_strategy

        runner = central_dp_strategy(strategy, cfg.dp, n_clients)
    torch.manual_seed(cfg.seed)
    initial = setup.new_model()
    if cfg.dp.enabled:
        from fedlab.learn.privacy import validate_model

        validate_model(initial)
    # the config itself travels once, in the run config (`fedlab.wire.keys.RUN_CONFIG`)
    shared = {keys.TARGET: setup.target, keys.NUM_CLASSES: setup.fed.num_classes}
    train_config = ConfigRecord({**shared, keys.CLIENT_MODE: plan.client_mode})
    if plan.cls.needs_initial_loss:
        train_config[keys.REPORT_INITIAL_LOSS] = 1
    started = time.perf_counter()
    result = runner.start(
        grid=grid,
        initial_arrays=ArrayRecord(initial.state_dict()),
        num_rounds=cfg.training.rounds,
        timeout=round_timeout,
        train_config=train_config,
        evaluate_config=ConfigRecord(dict(shared)),
        evaluate_fn=strategy.round_evaluate,
    )
    elapsed = time.perf_counter() - started
    final = result.arrays if result.arrays is not None else ArrayRecord(initial.state_dict())
    buf = io.BytesIO()
    torch.save(final.to_torch_state_dict(), buf)
    write_bytes_atomic(workdir / "model.pt", buf.getvalue())
    summary = {
        "strategy": cfg.training.strategy,
        "target": setup.target,
        "seed": cfg.seed,
        "rounds": cfg.training.rounds,
        "initial_target_acc": getattr(strategy, "initial_accuracy", float("nan")),
        **summarize_rounds(strategy.history),
    }
    summary.update(
        {
            "federation": cfg.federation.name,
            "domains": setup.fed.domain_names,
            # what the fairness numbers are about: privileged value per attribute, and the
            # favourable outcome ŷ = class_names[1] (the federation's positive label)
            "protected": dict(setup.fed.protected),
            "class_names": list(setup.fed.class_names),
            "clients": [
                {"id": c.client_id, "domain": c.domain, "train": len(c.y_train), "test": len(c.y_test)}
                for c in setup.clients
            ],
            "dp": dp_summary(cfg.dp, strategy.history),
            # which FedKA ran: the voting step's effective values (fedka-ref overrides the config's)
            "voting": strategy.server_step.settings() if strategy.server_step is not None else None,
            # which matching ran (f-DAN family): target rows per round, λ, class weighting
            "matching": _matching(strategy, cfg.training.mmd_weight),
            "anonymization": list(setup.anonymization),
            # the shared preprocessing is fitted from per-owner aggregates (fedlab.data.client_stats)
            "preprocessing_epsilon": getattr(getattr(setup.fed, "preprocessor", None), "epsilon", None),
            "target_pool": len(dom.y_train),
            "target_test": len(dom.y_test),
            # accuracy of always predicting the target test split's majority class: what a final
            # accuracy must beat before a report may call it good
            "target_majority_rate": _majority_rate(dom.y_test),
            "seconds": elapsed,
            "fedlab_version": __version__,
        }
    )
    write_json_atomic(workdir / "summary.json", summary)
    return summary


def write_resolved_config(workdir: Path, cfg: SimulationConfig) -> None:
    # TOML has no null: unset optional values (e.g. dp.delta) are left out and read back as unset.
    """The run's full config as config.toml (re-runnable with --config)."""
    write_text_atomic(workdir / "config.toml", tomli_w.dumps(cfg.saved_dict()))


def make_server_app(
    cfg: SimulationConfig, workdir: Path, on_round: RoundCallback | None = None, grid_wrapper: Any = None
) -> ServerApp:
    """A ServerApp bound to one config and output directory (used by `fedlab simulate`).

    `grid_wrapper(grid)` wraps the runtime's grid (e.g. `fedlab.runtime.direct.AbortableGrid`)."""
    server_app = ServerApp()
    outcome: dict[str, Any] = {}

    @server_app.main()
    def _main(grid: Grid, context: Context) -> None:
        grid = grid_wrapper(grid) if grid_wrapper is not None else grid
        outcome["summary"] = run_federation(grid, cfg, workdir, on_round)

    server_app.outcome = outcome  # type: ignore[attr-defined]
    return server_app


# -- deployment entry point (`flwr run` against a SuperLink, or Flower's simulation) --
# Logged through Flower's logger (`flwr_log`) so the lines reach the ServerApp's log stream.
# Run-config keys read only here (see [tool.flwr.app.config]): in a deployment the
# clients are the connected SuperNodes, not the simulation's partitions.
DEPLOY_DEFAULTS: dict[str, float] = {
    "min-clients": 0,  # SuperNodes to wait for before round 1; 0 = those connected now (at least 1)
    "min-fit-fraction": 0.5,  # share of them that must stay online for a round to be started
    "round-timeout": 600.0,  # seconds to wait for replies in a round; late or dead nodes are dropped
    "node-wait-timeout": 300.0,  # seconds to wait for `min-clients` SuperNodes to connect
}


def _deploy_setting(run_config: dict[str, Any], key: str) -> float:
    value = run_config.get(key, DEPLOY_DEFAULTS[key])
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"run config {key}={value!r}: expected a number") from None
    if number < 0 or (key == "min-fit-fraction" and not 0 < number <= 1):
        raise ValueError(f"run config {key}={value!r} out of range")
    return number


def wait_for_nodes(grid: Grid, wanted: int, timeout: float, poll: float = 1.0) -> list[int]:
    """Block until `wanted` SuperNodes are online (0: at least one); fail clearly on timeout."""
    deadline = time.monotonic() + timeout
    need = max(1, wanted)
    while True:
        nodes = sorted(grid.get_node_ids())
        if len(nodes) >= need:
            return nodes
        if time.monotonic() >= deadline:
            raise RuntimeError(
                f"only {len(nodes)} of {need} SuperNodes connected after {timeout:.0f} s "
                "(run config min-clients / node-wait-timeout)"
            )
        flwr_log(logging.INFO, "waiting for SuperNodes: %d of %d connected", len(nodes), need)
        time.sleep(poll)


app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Entry point for `flwr run` (deployment engine or Flower simulation): config from the run config.

    The strategy is sized on the SuperNodes actually connected (at least `min-clients`),
    and tolerates clients dying mid-run: a round keeps the replies that arrive within
    `round-timeout` (a dead node's reply becomes an error once the SuperLink marks it
    offline), and a new round starts while at least `min-fit-fraction` of them are online.
    """
    run_config = dict(context.run_config)
    cfg = SimulationConfig.from_flat(run_config)
    use_threads(threads_for(cfg.torch_threads, setup_for(cfg).fed.kind))  # as `simulate` does
    min_clients = int(_deploy_setting(run_config, "min-clients"))
    cfg.training.min_fit_clients_fraction = _deploy_setting(run_config, "min-fit-fraction")
    round_timeout = _deploy_setting(run_config, "round-timeout")
    nodes = wait_for_nodes(grid, min_clients, _deploy_setting(run_config, "node-wait-timeout"))
    num_clients = max(len(nodes), min_clients)
    min_train = max(1, round(num_clients * cfg.training.min_fit_clients_fraction))
    flwr_log(
        logging.INFO,
        "deployment: %d SuperNodes; rounds start with >= %d online; replies wait <= %.0f s; "
        "a round fails only if every client fails",
        num_clients,
        min_train,
        round_timeout,
    )
    final = Path(cfg.out) / default_run_name(f"{cfg.training.strategy}-{cfg.federation.name}")
    with atomic_run_dir(final) as work:
        write_resolved_config(work, cfg)
        tracker = ReplyTracker(grid, nodes)  # per-round replies received vs expected, lost nodes
        summary = run_federation(tracker, cfg, work, num_clients=num_clients, round_timeout=round_timeout)
        # `clients` listed the federation's partitions; a deployment lists who actually took part
        seen = _clients_seen(work)
        summary["clients"] = [c for c in summary["clients"] if f"{c['id']}:{c['domain']}" in seen]
        summary["deployment"] = {
            "clients_seen": sorted(seen),
            "supernodes": num_clients,
            "min_train_nodes": min_train,
            "round_timeout_s": round_timeout,
            "replies": tracker.records,
        }
        write_json_atomic(work / "summary.json", summary)
    flwr_log(logging.INFO, "run directory: %s", final)


def _clients_seen(workdir: Path) -> set[str]:
    """Client names that returned a model in any round (from metrics.jsonl)."""
    import json

    seen: set[str] = set()
    for line in (workdir / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            seen.update(json.loads(line).get("client_target_acc", {}))
    return seen
