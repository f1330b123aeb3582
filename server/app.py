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
from fedlab.config.settings import SimulationConfig
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
from fedlab.learn.training import resolve_device
from server.replies import ReplyTracker
from server.strategies.domain import RoundCallback
from server.strategies.registry import build_strategy
from server.target import TargetDomain

CONFIG_KEY = "fedlab-config"
log = logging.getLogger("fedlab.server")
BEST_NOTE = "best = max over rounds of target test accuracy (optimistic); final = last round (honest)"


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
    strategy = build_strategy(cfg, n_clients, target, record_round)
    partitions = getattr(grid, "node_partitions", None)
    if callable(partitions):  # fedlab's runtime knows which client each node holds: no handshake
        strategy.node_clients = {node: setup.clients[p].client_id for node, p in partitions().items()}
    if dom.groups_test is not None and setup.fed.protected and setup.fed.num_classes == 2:
        strategy.fairness_target = (dom.groups_test, dict(setup.fed.protected))
    runner: Any = strategy
    if cfg.dp.enabled and cfg.dp.mode == "central":
        from fedlab.learn.privacy import central_dp_strategy

        runner = central_dp_strategy(strategy, cfg, n_clients)
    torch.manual_seed(cfg.seed)
    initial = setup.new_model()
    if cfg.dp.enabled:
        from fedlab.learn.privacy import validate_model

        validate_model(initial)
    shared = {CONFIG_KEY: cfg.model_dump_json(), "target": setup.target, "num-classes": setup.fed.num_classes}
    train_config = ConfigRecord(dict(shared))
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
    summary = summarize(
        cfg, setup.target, strategy.history, getattr(strategy, "initial_accuracy", float("nan"))
    )
    summary.update(
        {
            "federation": cfg.federation.name,
            "domains": setup.fed.domain_names,
            "clients": [
                {"id": c.client_id, "domain": c.domain, "train": len(c.y_train), "test": len(c.y_test)}
                for c in setup.clients
            ],
            "dp": _dp_summary(cfg, strategy.history),
            "anonymization": list(setup.anonymization),
            "target_pool": len(dom.y_train),
            "target_test": len(dom.y_test),
            "seconds": elapsed,
            "fedlab_version": __version__,
        }
    )
    write_json_atomic(workdir / "summary.json", summary)
    return summary


def summarize(
    cfg: SimulationConfig, target: str, history: list[dict[str, Any]], initial_acc: float
) -> dict[str, Any]:
    """Final vs best round, said explicitly (the best round is chosen on the target test set)."""
    history = [h for h in history if "target_acc" in h]  # evaluation rounds only (`eval_every`)
    accs = [h["target_acc"] for h in history]
    best = int(np.argmax(accs)) if accs else -1
    last = history[-1] if history else {}
    return {
        "strategy": cfg.training.strategy,
        "target": target,
        "seed": cfg.seed,
        "rounds": cfg.training.rounds,
        "initial_target_acc": initial_acc,
        "final_target_acc": last.get("target_acc", float("nan")),
        "final_group_effect": last.get("group_effect", float("nan")),
        "final_mean_client_target_acc": last.get("mean_client_target_acc", float("nan")),
        "best_round": history[best]["round"] if history else None,
        "best_target_acc": accs[best] if accs else float("nan"),
        "best_round_note": BEST_NOTE,
        "mean_group_effect": float(np.mean([h["group_effect"] for h in history]))
        if history
        else float("nan"),
        "final_voting_acc": last.get("voting_acc"),
        "final_adoption_rate": last.get("adoption_rate"),
        "final_client_target_acc": last.get("client_target_acc", {}),
        "final_client_own_acc": last.get("client_own_acc", {}),
        "final_pooled_fairness": last.get("pooled_fairness"),
        "final_target_fairness": last.get("target_fairness"),
    }


def _dp_summary(cfg: SimulationConfig, history: list[dict[str, Any]]) -> dict[str, Any]:
    """ε spent per client at the end of the run (client mode), or the central ε (central mode)."""
    dp = cfg.dp
    if not dp.enabled:
        return {"enabled": False}
    out: dict[str, Any] = {"enabled": True, "mode": dp.mode, "max_grad_norm": dp.max_grad_norm}
    last = history[-1] if history else {}
    if dp.mode == "client":
        eps: dict[str, float] = {}
        exhausted: dict[str, bool] = {}
        for h in history:  # a client missing from the last round keeps its latest ε
            eps.update(h.get("client_epsilon", {}))
            exhausted.update(h.get("client_budget_exhausted", {}))
        out.update(
            epsilon=eps,
            budget_exhausted=exhausted,
            max_epsilon=max(eps.values()) if eps else 0.0,
            target_epsilon=dp.target_epsilon,
            noise_multiplier=dp.noise_multiplier,
            delta="1/n per client" if dp.delta is None else dp.delta,
        )
    else:
        out.update(
            epsilon=last.get("central_epsilon", 0.0),
            delta=last.get("central_delta"),
            noise_multiplier=dp.noise_multiplier,
            level="user (per client), all clients every round, no sampling amplification",
        )
        out["max_epsilon"] = out["epsilon"]
    return out


def write_resolved_config(workdir: Path, cfg: SimulationConfig) -> None:
    # TOML has no null: unset optional values (e.g. dp.delta) are left out and read back as unset.
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
        # `clients` lists the federation's partitions; record who actually took part.
        summary["deployment"] = {
            "clients_seen": sorted(_clients_seen(work)),
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
