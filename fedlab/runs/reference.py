"""Reference rows beside a sweep: `central` and `oracle`, the scale a federated number is read on.

Why: "FedAvg reaches 74 % on the target" says nothing until one knows what the same model reaches
without federation (`central`: trained on the pooled source clients' training rows) and with the
target's own labels (`oracle`: the pooled sources plus the target's labelled training pool, an
upper bound). Both are **simulation-only references**: they pool raw rows, which a deployment never
does, and they use no target labels for anything but the oracle's training set. They get the
federation's budget — the same model, optimizer, rounds, and per round as many gradient steps as
all clients together take — and are scored on the same target test split every evaluated round, so
their rows pair with the strategies' by seed in `fedlab.metrics.comparison`. They train without DP
and without local anonymization of the target (the sources are as the clients hold them).
"""

from __future__ import annotations

import io
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedlab import __version__
from fedlab.config import SimulationConfig
from fedlab.core.rundir import atomic_run_dir, write_bytes_atomic, write_json_atomic, write_text_atomic
from fedlab.core.seeding import client_seed
from fedlab.federation.setup import setup_for
from fedlab.learn.spec import local_spec
from fedlab.learn.training import accuracy_of, capped_steps, predict, resolve_device, train_local
from fedlab.metrics.comparison import REFERENCES
from fedlab.metrics.run_record import summarize_rounds

__all__ = ["REFERENCES", "run_reference", "training_rows"]

_REFERENCE_ID = 2**31 - 1  # the seed stream of the one "client" a reference is (no real client has it)


def training_rows(cfg: SimulationConfig, name: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(x, y, steps per round) of reference `name`: every source client's training rows (plus, for
    the oracle, the target's labelled pool), and the gradient steps all clients take in one round."""
    if name not in REFERENCES:
        raise ValueError(f"unknown reference {name!r}; expected one of {sorted(REFERENCES)}")
    setup = setup_for(cfg)
    t = cfg.training
    xs = [c.x_train for c in setup.clients]
    ys = [c.y_train for c in setup.clients]
    steps = sum(
        capped_steps(t.local_steps, c.num_train, t.batch_size, t.max_epochs_per_round) for c in setup.clients
    )
    if name == "oracle":
        xs.append(setup.target_domain.x_train)
        ys.append(setup.target_domain.y_train)
    return np.concatenate(xs), np.concatenate(ys), steps


def run_reference(cfg: SimulationConfig, name: str, out: Path) -> dict[str, Any]:
    """Train reference `name` for the config's rounds and write a run directory like a simulation's
    (config.toml, metrics.jsonl, summary.json, model.pt); returns the summary. Group Effect is NaN:
    a reference has no clients to compare with."""
    setup = setup_for(cfg)
    x, y, steps = training_rows(cfg, name)
    t = cfg.training
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = setup.new_model()
    target = setup.target_domain
    from server.sampling import is_eval_round

    history: list[dict[str, Any]] = []
    started = time.perf_counter()
    with atomic_run_dir(out) as work:
        saved = cfg.model_copy(deep=True)
        saved.training.target, saved.training.strategy = setup.target, "fedavg"
        from server.app import write_resolved_config

        write_resolved_config(work, saved)
        for rnd in range(1, t.rounds + 1):
            spec = local_spec(t, "ce", len(y), rnd)
            spec.steps = steps
            res = train_local(model, x, y, spec, device, client_seed(cfg.seed, rnd, _REFERENCE_ID))
            if not is_eval_round(rnd, t.eval_every, t.rounds):
                continue
            acc = accuracy_of(predict(model, target.x_test, device), target.y_test)
            record = {"round": rnd, "strategy": name, "target_acc": acc, "train_loss": res.loss}
            history.append({**record, "group_effect": math.nan, "evaluated": True})
        lines = "".join(json.dumps(h, allow_nan=True) + "\n" for h in history)
        write_text_atomic(work / "metrics.jsonl", lines)
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        write_bytes_atomic(work / "model.pt", buf.getvalue())
        summary = {
            "strategy": name,
            "reference": REFERENCES[name],
            "target": setup.target,
            "seed": cfg.seed,
            "rounds": t.rounds,
            **summarize_rounds(history),
            "federation": cfg.federation.name,
            "train_rows": len(y),
            "steps_per_round": steps,
            "dp": {"enabled": False},
            "seconds": time.perf_counter() - started,
            "fedlab_version": __version__,
        }
        write_json_atomic(work / "summary.json", summary)
    return summary
