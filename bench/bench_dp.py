"""Benchmark: the cost of DP-SGD, and accuracy / |SPD| against ε and against k.

    python bench/bench_dp.py            # ~10 min on 2 CPU cores
    python bench/bench_dp.py --quick    # 1 seed, 2 rounds: a smoke test

1. DP cost on the default ``digits`` federation: wall time of one client's local round
   (``local_steps`` steps, batch 64) with Opacus DP-SGD divided by the same round without DP —
   same GroupNorm model, same data, same steps (median of 3 repeats). Target: ≤ 3×.
2. Utility and fairness on the embedded UCI Adult split into clients by ``race`` (target: the
   second largest domain), FedAvg, small rounds: final target accuracy and the pooled |SPD| of
   ``sex`` over the clients' evaluation splits, mean ± std over seeds, for client DP-SGD at
   ε ∈ {1, 3, 8} (no anonymization) and for local k-anonymity k ∈ {10, 50} (no DP), plus the
   plain baseline.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fedlab.config import load_simulation_config
from fedlab.federation.setup import setup_for
from fedlab.learn.models import build_model
from fedlab.learn.privacy import ClientDPRound, plan_client
from fedlab.learn.training import LocalTrainSpec, train_local
from fedlab.runs.study import Cell, run_study, with_embedded_adult


def dp_cost(steps: int, repeats: int = 3) -> tuple[float, float, float]:
    """(non-DP seconds, DP seconds, ratio) for one client round on digits."""
    cfg = load_simulation_config(
        None, {"dp.enabled": True, "dp.noise_multiplier": 1.0, "training.local_steps": steps}
    )
    setup = setup_for(cfg)
    part = setup.clients[0]
    spec = LocalTrainSpec(steps=steps, batch_size=cfg.training.batch_size)
    dev = torch.device("cpu")
    plain, private = [], []
    for r in range(repeats + 1):  # first repeat warms up (imports, allocator)
        model = build_model("image", setup.input_shape, setup.fed.num_classes, norm="group")
        t = time.perf_counter()
        train_local(model, part.x_train, part.y_train, spec, dev, seed=r)
        plain.append(time.perf_counter() - t)
        model = build_model("image", setup.input_shape, setup.fed.num_classes, norm="group")
        plan = plan_client(cfg.dp, cfg.training, len(part.y_train))
        dp = ClientDPRound(plan, model, [], len(part.y_train), spec.batch_size,
                           spec.lr, spec.momentum, spec.weight_decay)  # fmt: skip
        t = time.perf_counter()
        train_local(
            model, part.x_train, part.y_train, spec, dev, seed=r, optimizer_factory=dp.optimizer_factory,
            batch_sampler=dp,
        )  # fmt: skip
        dp.finish()
        private.append(time.perf_counter() - t)
    a, b = statistics.median(plain[1:]), statistics.median(private[1:])
    return a, b, b / a


def fmt(values: list[float], scale: float = 100.0) -> str:
    v = [x for x in values if x == x]
    if not v:
        return "-"
    sd = statistics.stdev(v) if len(v) > 1 else 0.0
    return f"{scale * statistics.fmean(v):.1f} ± {scale * sd:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2")
    # DP-SGD needs more signal than the non-private default (lr 0.01, few steps): with 3 rounds x 15
    # steps at lr 0.01 every private model predicted the majority class.
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--local-steps", type=int, default=20)
    ap.add_argument("--lr", type=float, default=0.1, help="client learning rate (DP-SGD usually wants more)")
    ap.add_argument("--max-grad-norm", type=float, default=1.0, help="DP-SGD per-sample clipping norm")
    ap.add_argument("--max-per-domain", type=int, default=1500)
    ap.add_argument("--quick", action="store_true", help="1 seed, 2 rounds")
    args = ap.parse_args()
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    rounds = 2 if args.quick else args.rounds
    warnings.filterwarnings("ignore")

    t0 = time.perf_counter()
    plain, private, ratio = dp_cost(steps=20)
    print("DP cost on digits (one client round: 20 steps, batch 64, GroupNorm CNN, median of 3)")
    print(f"  non-DP {plain:.3f} s   DP-SGD {private:.3f} s   ratio {ratio:.2f}x (target <= 3x)")

    base = with_embedded_adult(
        load_simulation_config(
            None,
            {
                "training.strategy": "fedavg",
                "training.rounds": rounds,
                "training.local_steps": args.local_steps,
                "federation.max_per_domain": args.max_per_domain,
                "training.lr": args.lr,
                "dp.max_grad_norm": args.max_grad_norm,
            },
        )
    )
    settings: list[tuple[str, float | None, str]] = [
        ("no DP, raw", None, ""),
        ("DP eps=1", 1.0, ""),
        ("DP eps=3", 3.0, ""),
        ("DP eps=8", 8.0, ""),
        ("k=10 (no DP)", None, "k=10"),
        ("k=50 (no DP)", None, "k=50"),
    ]
    cells = [Cell("fedavg", e, a, s) for _, e, a in settings for s in seeds]
    with tempfile.TemporaryDirectory() as tmp:
        _, runs, _ = run_study(base, cells, Path(tmp) / "bench")
    print()
    print(
        f"Adult split by race (target {runs['target'].iloc[0]}), FedAvg, {rounds} rounds x "
        f"{args.local_steps} steps, lr {args.lr}, clip {args.max_grad_norm}, <= {args.max_per_domain} "
        f"rows/domain, {len(seeds)} seed(s): mean ± std"
    )
    print(f"  {'setting':<14} {'target acc %':>14} {'|SPD| sex %':>14} {'eps spent':>12} {'s/run':>7}")
    for label, eps, anon in settings:
        sel = runs[(runs["anonymize"] == (anon or "none"))]
        sel = sel[sel["epsilon_target"].isna()] if eps is None else sel[sel["epsilon_target"] == eps]
        spent = [x for x in sel["epsilon_spent"].tolist() if x == x and x is not None]
        eps_text = fmt(spent, 1.0) if spent else "-"
        print(
            f"  {label:<14} {fmt(sel['accuracy'].tolist()):>14} "
            f"{fmt([abs(x) for x in sel['spd'].tolist()]):>14} {eps_text:>12} {np.mean(sel['seconds']):>7.1f}"
        )
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
