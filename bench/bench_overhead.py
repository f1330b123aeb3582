"""Simulation overhead: `fedlab simulate` (FedAvg, default federation, 10 rounds) vs a plain loop.

Both sides do the same work with the same seeds: every round each client loads the global
weights and runs `train_local`; the weighted average becomes the new global model; the
server scores each returned client model and the global model on the target test split
and each client scores the global model on its own test split. The simulation side goes
through fedlab's default runtime (messages, records, grid, ServerApp/ClientApp) and
includes its start-up. Runs alternate (sim, loop, sim, loop, ...) and medians are compared.

    python bench/bench_overhead.py [--repeats 3] [--rounds 10] [--with-ray]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from tempfile import TemporaryDirectory

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import median, print_table, timed

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")

from fedlab.config import load_simulation_config
from fedlab.core.seeding import client_seed
from fedlab.federation.setup import setup_for
from fedlab.learn.spec import local_spec
from fedlab.learn.training import accuracy, resolve_device, train_local
from fedlab.metrics.group_effect import group_effect
from fedlab.runs.simulate import simulate


def plain_loop(cfg) -> float:
    """The same FedAvg training as the simulation, as straight Python (returns final target acc)."""
    setup = setup_for(cfg)
    device = resolve_device(cfg.device)
    t = cfg.training
    target = setup.target_domain
    torch.manual_seed(cfg.seed)
    global_state = {k: v.clone() for k, v in setup.new_model().state_dict().items()}
    acc = float("nan")
    for rnd in range(1, t.rounds + 1):
        states, weights, client_acc = [], [], []
        for part in setup.clients:
            model = setup.new_model()
            model.load_state_dict(global_state)
            spec = local_spec(t, "ce", len(part.y_train), rnd)
            seed = client_seed(cfg.seed, rnd, part.client_id)
            res = train_local(model, part.x_train, part.y_train, spec, device, seed=seed)
            states.append({k: v.detach().cpu().numpy() for k, v in model.state_dict().items()})
            weights.append(res.num_examples)
            client_acc.append(accuracy(model, target.x_test, target.y_test, device))
            accuracy(model, target.x_train, target.y_train, device)  # the server's vote-pool predictions
        # Weighted average exactly as Flower's aggregate_arrayrecords computes it (same order, dtypes).
        total = sum(weights)
        avg: dict[str, np.ndarray] = {}
        for state, n in zip(states, weights, strict=True):
            for k, v in state.items():
                avg[k] = v * (n / total) if k not in avg else avg[k] + v * (n / total)
        global_state = {k: torch.as_tensor(v).to(global_state[k].dtype) for k, v in avg.items()}
        model = setup.new_model()
        model.load_state_dict(global_state)
        for part in setup.clients:
            accuracy(model, part.x_test, part.y_test, device)
        acc = accuracy(model, target.x_test, target.y_test, device)
        group_effect(acc, client_acc)
    return acc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--with-ray", action="store_true", help="also time Flower's Ray backend (one run)")
    args = ap.parse_args()
    cfg = load_simulation_config(
        None, {"training.strategy": "fedavg", "training.rounds": args.rounds, "device": "cpu"}
    )
    setup_for(cfg)  # load data once, outside the timings (both sides reuse the process cache)
    sims, loops, accs = [], [], []
    with TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            dt, res = timed(lambda i=i: simulate(cfg, out=Path(tmp) / f"sim{i}"))
            sims.append(dt)
            accs.append(res.summary["final_target_acc"])
            dt, acc = timed(lambda: plain_loop(cfg))
            loops.append(dt)
            accs.append(acc)
        rows = [
            ["plain in-process loop", f"{median(loops):.1f}", "1.00×", f"{accs[1]:.4f}"],
            [
                "fedlab simulate (inprocess backend)",
                f"{median(sims):.1f}",
                f"{median(sims) / median(loops):.2f}×",
                f"{accs[0]:.4f}",
            ],
        ]
        if args.with_ray:
            ray_cfg = cfg.model_copy(update={"engine": "ray"})
            dt, res = timed(lambda: simulate(ray_cfg, out=Path(tmp) / "ray"))
            rows.append(
                [
                    "fedlab simulate (Flower Ray backend)",
                    f"{dt:.1f}",
                    f"{dt / median(loops):.2f}×",
                    f"{res.summary['final_target_acc']:.4f}",
                ]
            )
    print_table(
        ["variant", "median wall s", "ratio vs loop", "final target acc"],
        rows,
        title=f"FedAvg, digits, {args.rounds} rounds, {len(setup_for(cfg).clients)} clients, "
        f"{cfg.training.local_steps} local steps, {args.repeats} repeats (ray: 1 run)",
    )


if __name__ == "__main__":
    main()
