"""fedlab's Flower ServerApp.

`run_federation` is the whole server side of one run: load the target domain, build
the strategy, call Flower's `Strategy.start` on the grid, and write the run directory
(resolved config, one metrics line per round, summary, final weights). `fedlab
simulate` builds a ServerApp around it with `make_server_app`; `flwr run .` uses the
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
from flwr.serverapp import Grid, ServerApp

from fedlab import __version__
from fedlab.config import SimulationConfig
from fedlab.federation import setup_for
from fedlab.rundir import (
    append_jsonl,
    atomic_run_dir,
    default_run_name,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)
from fedlab.seeding import seed_everything
from fedlab.training import resolve_device
from server.domain_strategy import RoundCallback
from server.strategies import build_strategy
from server.target import TargetDomain

CONFIG_KEY = "fedlab-config"
log = logging.getLogger("fedlab.server")
BEST_NOTE = "best = max over rounds of target test accuracy (optimistic); final = last round (honest)"


def run_federation(
    grid: Grid, cfg: SimulationConfig, workdir: Path, on_round: RoundCallback | None = None
) -> dict[str, Any]:
    """Run all rounds and write results into `workdir` (which the caller publishes atomically)."""
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

    strategy = build_strategy(cfg, len(setup.clients), target, record_round)
    torch.manual_seed(cfg.seed)
    initial = setup.new_model()
    shared = {CONFIG_KEY: cfg.model_dump_json(), "target": setup.target, "num-classes": setup.fed.num_classes}
    train_config = ConfigRecord(dict(shared))
    started = time.perf_counter()
    result = strategy.start(
        grid=grid,
        initial_arrays=ArrayRecord(initial.state_dict()),
        num_rounds=cfg.training.rounds,
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
    }


def write_resolved_config(workdir: Path, cfg: SimulationConfig) -> None:
    write_text_atomic(workdir / "config.toml", tomli_w.dumps(cfg.model_dump()))


def make_server_app(cfg: SimulationConfig, workdir: Path, on_round: RoundCallback | None = None) -> ServerApp:
    """A ServerApp bound to one config and output directory (used by `fedlab simulate`)."""
    server_app = ServerApp()
    outcome: dict[str, Any] = {}

    @server_app.main()
    def _main(grid: Grid, context: Context) -> None:
        outcome["summary"] = run_federation(grid, cfg, workdir, on_round)

    server_app.outcome = outcome  # type: ignore[attr-defined]
    return server_app


app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Entry point for `flwr run .` and the deployment engine: config from the run config."""
    cfg = SimulationConfig.from_flat(dict(context.run_config))
    final = Path(cfg.out) / default_run_name(f"{cfg.training.strategy}-{cfg.federation.name}")
    with atomic_run_dir(final) as work:
        write_resolved_config(work, cfg)
        run_federation(grid, cfg, work)
    log.info("run directory: %s", final)
