"""Accuracy on the target and Group Effect: FedAvg vs f-DAN vs f-DANN vs FedKA, every target.

One command runs every federation that is available (embedded `digits`; Office-Caltech10 SURF
and the Digit-Five domains from a data folder, default ../shared/data) over every target
domain and several seeds, and prints, per federation, target × strategy (final-round accuracy,
mean ± std over seeds), the mean over targets, and the Group Effect of FedAvg vs FedKA.

    python bench/bench_federation.py [--data-dir ../shared/data] [--seeds 0,1,2,3,4]
        [--federations digits,office-caltech10,digit-five] [--rounds N] [--local-steps N]
        [--strategies fedavg,fdan,fdann,fedka] [--out runs/bench-federation]
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

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")

from fedlab.config import load_simulation_config
from fedlab.federation.setup import setup_for
from fedlab.runs.sweep import run_sweep

# Per-federation settings, sized to keep the whole benchmark to tens of minutes on 2 CPU cores.
PRESETS = {
    "digits": {"federation.name": "digits"},
    "office-caltech10": {"federation.name": "office-caltech10", "subdir": "office_caltech10/surf"},
    "digit-five": {"federation.name": "digit-five", "subdir": "digits", "federation.max_per_domain": 1000},
}


def preset_overrides(name: str, data_root: str) -> tuple[dict, Path | None]:
    """Config overrides of a federation preset, and the data folder it needs but lacks (or None)."""
    preset = dict(PRESETS[name])
    subdir = preset.pop("subdir", None)
    if subdir is None:
        return preset, None
    data_dir = Path(data_root) / subdir
    preset["federation.data_dir"] = str(data_dir)
    return preset, None if data_dir.exists() else data_dir


def pct(mean: float, std: float) -> str:
    return f"{100 * mean:5.1f} ± {100 * std:4.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--federations", default="digits,office-caltech10,digit-five")
    ap.add_argument("--strategies", default="fedavg,fdan,fdann,fedka")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--local-steps", type=int, default=10)
    ap.add_argument("--lr", type=float, default=None, help="client learning rate (default: the config's)")
    ap.add_argument("--out", default=f"runs/bench-federation-{time.strftime('%Y%m%d-%H%M%S')}")
    args = ap.parse_args()
    strategies = args.strategies.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    summary_rows = []
    for name in args.federations.split(","):
        preset, missing = preset_overrides(name, args.data_dir)
        if missing is not None:
            print(f"\n[{name}] skipped: {missing} not found")
            continue
        cfg = load_simulation_config(
            None,
            {
                **preset,
                "training.rounds": args.rounds,
                "training.local_steps": args.local_steps,
                "training.lr": args.lr,
                "device": "cpu",
            },
        )
        targets = setup_for(cfg).fed.domain_names
        started = time.perf_counter()
        _, runs, table = run_sweep(cfg, targets, strategies, seeds, Path(args.out) / name)
        elapsed = time.perf_counter() - started
        rows = [
            [
                r["target"],
                r["strategy"],
                pct(r["final_target_acc_mean"], r["final_target_acc_std"]),
                pct(r["best_target_acc_mean"], r["best_target_acc_std"]),
                f"{100 * r['mean_group_effect_mean']:+5.1f} ± {100 * r['mean_group_effect_std']:4.1f}",
            ]
            for r in table.to_dict("records")
        ]
        print_table(
            ["target", "strategy", "final acc %", "best-round acc %", "Group Effect (mean over rounds) pp"],
            rows,
            title=f"[{name}] {len(seeds)} seeds, {args.rounds} rounds × {args.local_steps} local steps "
            f"({elapsed / 60:.1f} min)",
        )
        per_seed = runs.groupby(["strategy", "seed"])[["final_target_acc", "mean_group_effect"]].mean()
        over = per_seed.groupby("strategy").agg(["mean", "std"])
        base = over.loc["fedavg", ("final_target_acc", "mean")] if "fedavg" in over.index else float("nan")
        rows = []
        for s in strategies:
            acc_m, acc_s = over.loc[s, ("final_target_acc", "mean")], over.loc[s, ("final_target_acc", "std")]
            ge_m, ge_s = over.loc[s, ("mean_group_effect", "mean")], over.loc[s, ("mean_group_effect", "std")]
            rows.append(
                [
                    s,
                    pct(acc_m, acc_s),
                    f"{100 * (acc_m - base):+.1f}",
                    f"{100 * ge_m:+.2f} ± {100 * ge_s:.2f}",
                ]
            )
            summary_rows.append(
                {
                    "federation": name,
                    "strategy": s,
                    "mean_target_acc": acc_m,
                    "gain_vs_fedavg": acc_m - base,
                    "group_effect": ge_m,
                }
            )
        print_table(
            ["strategy", "mean over targets %", "vs FedAvg pp (unpaired)", "Group Effect pp"],
            rows,
            title=f"[{name}] mean over {len(targets)} targets (± std over seeds)",
        )
        ge = runs.pivot_table(index="target", columns="strategy", values="mean_group_effect", aggfunc="mean")
        if {"fedavg", "fedka"} <= set(ge.columns):
            rows = [
                [t, f"{100 * ge.loc[t, 'fedavg']:+.2f}", f"{100 * ge.loc[t, 'fedka']:+.2f}"] for t in ge.index
            ]
            print_table(
                ["target", "FedAvg GE pts", "FedKA GE pts"],
                rows,
                title=f"[{name}] Group Effect per target (mean over rounds and seeds)",
            )
    if summary_rows:
        pd.DataFrame(summary_rows).to_csv(Path(args.out) / "summary.csv", index=False)
        print(f"\nrun directories and summary.csv under {args.out}")


if __name__ == "__main__":
    main()
