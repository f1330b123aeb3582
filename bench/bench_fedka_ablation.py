"""FedKA voting ablation: which of fedlab's two departures from the reference rule matter.

Runs FedKA four ways on every target of a federation (several seeds) next to FedAvg:
the reference rule (every strict-majority vote adopted, voters with their own BatchNorm
statistics), + target BatchNorm statistics for the voters (AdaBN) only, + class-balanced
confident selection only, and both (fedlab's default). Prints the mean over targets.

    python bench/bench_fedka_ablation.py [--federation office-caltech10] [--seeds 0,1,2]
        [--data-dir ../shared/data] [--rounds 10] [--local-steps 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table
from bench_federation import PRESETS, pct, preset_overrides

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")

from fedlab.config import load_simulation_config
from fedlab.federation import setup_for
from fedlab.sweep import run_sweep

VARIANTS = {
    "fedavg": ("fedavg", {}),
    "fedka reference rule": ("fedka", {"training.vote_select": 1.0, "training.vote_target_batchnorm": False}),
    "fedka + AdaBN voters": ("fedka", {"training.vote_select": 1.0, "training.vote_target_batchnorm": True}),
    "fedka + confident selection": (
        "fedka",
        {"training.vote_select": 0.5, "training.vote_target_batchnorm": False},
    ),
    "fedka (fedlab default: both)": ("fedka", {}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--federation", default="office-caltech10", choices=sorted(PRESETS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--local-steps", type=int, default=10)
    ap.add_argument("--out", default=f"runs/bench-fedka-ablation-{time.strftime('%Y%m%d-%H%M%S')}")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    preset, missing = preset_overrides(args.federation, args.data_dir)
    if missing is not None:
        sys.exit(f"error: {missing} not found (the {args.federation} data; see --data-dir)")
    base_overrides = {
        **preset,
        "training.rounds": args.rounds,
        "training.local_steps": args.local_steps,
        "device": "cpu",
    }
    targets = setup_for(load_simulation_config(None, base_overrides)).fed.domain_names
    rows = []
    baseline = float("nan")
    for i, (label, (strategy, overrides)) in enumerate(VARIANTS.items()):
        cfg = load_simulation_config(None, {**base_overrides, **overrides})
        started = time.perf_counter()
        _, runs, _ = run_sweep(cfg, targets, [strategy], seeds, Path(args.out) / f"variant-{i}")
        numeric = runs[["seed", "final_target_acc", "final_voting_acc"]].apply(pd.to_numeric)
        per_seed = numeric.groupby("seed")[["final_target_acc", "final_voting_acc"]].mean()
        acc_m, acc_s = per_seed["final_target_acc"].mean(), per_seed["final_target_acc"].std()
        if strategy == "fedavg":
            baseline = acc_m
        vote = per_seed["final_voting_acc"].mean()
        rows.append(
            [
                label,
                pct(acc_m, acc_s),
                f"{100 * (acc_m - baseline):+.1f}",
                "-" if vote != vote else f"{100 * vote:.1f}",
                f"{(time.perf_counter() - started) / 60:.1f}",
            ]
        )
    print_table(
        ["variant", "mean over targets %", "vs FedAvg pts", "final voting acc %", "minutes"],
        rows,
        title=f"[{args.federation}] FedKA voting ablation: {len(targets)} targets × {len(seeds)} seeds, "
        f"{args.rounds} rounds × {args.local_steps} local steps",
    )
    print(f"\nrun directories under {args.out}")


if __name__ == "__main__":
    main()
