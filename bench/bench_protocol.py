"""FedKA at the paper's protocol (`--protocol fedka2022`): FedAvg / f-DAN / FedKA, paired statistics.

Office-Caltech10 SURF (4 targets) and Digit-Five (the domains found: MNIST, MNIST-M, USPS here,
official test splits where the files have them), every target held out in turn, several seeds.
Prints per target the final accuracies, each strategy's paired gain over FedAvg (final and best
round, pp, mean [95% CI, paired t over seeds], wins), the Group Effect and FedKA/FedAvg Group
Effect ratio (paired bootstrap CI), next to the paper's headline gains. Every flag that changes
the protocol (rounds, local steps, data caps) is printed as a DEPARTURE.

    python bench/bench_protocol.py [--federations office-caltech10,digit-five] [--seeds 0,1,2,3,4]
        [--targets caltech,dslr] [--rounds N] [--strategies fedavg,fdan,fedka]
        [--data-dir ../shared/data] [--out runs/bench-protocol]

Sized for 2 CPU cores with --rounds/--targets/--seeds; the full protocol (200 rounds) is one
command on a GPU machine (`--device cuda`).
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

from fedlab.config import PROTOCOLS, load_simulation_config
from fedlab.federation.setup import setup_for
from fedlab.metrics import comparison
from fedlab.metrics.stats import describe, format_ratio
from fedlab.runs.sweep import run_sweep

# The paper's headline gains of FedKA over FedAvg (Sun, Chong & Ochiai 2022), mean over targets.
PAPER_GAIN_PP = {"office-caltech10": 3.5, "digit-five": 8.8}
PAPER_NOTE = {"office-caltech10": "4 targets", "digit-five": "5 domains in the paper; the domains found here"}
FEDERATIONS = {
    "office-caltech10": {"federation.name": "office-caltech10", "subdir": "office_caltech10/surf"},
    "digit-five": {"federation.name": "digit-five", "subdir": "digits"},
}


def _pct(values: pd.Series) -> str:
    v = pd.to_numeric(values, errors="coerce").dropna()
    if v.empty:
        return "–"
    return f"{100 * v.mean():.1f} ± {100 * v.std(ddof=1):.1f}" if len(v) > 1 else f"{100 * v.mean():.1f}"


def _ratio(cell: dict) -> str:
    return format_ratio(cell["ge_ratio"])


def overrides_for(args: argparse.Namespace, name: str) -> tuple[dict, list[str]]:
    """Config overrides and the list of departures from the protocol they make."""
    preset = dict(FEDERATIONS[name])
    preset["federation.data_dir"] = str(Path(args.data_dir) / preset.pop("subdir"))
    out = {"protocol": "fedka2022", "device": args.device, **preset}
    departures = []
    protocol = PROTOCOLS["fedka2022"]
    for flag, key in (("rounds", "training.rounds"), ("local_steps", "training.local_steps")):
        value = getattr(args, flag)
        if value is not None and value != protocol[key]:
            out[key] = value
            departures.append(f"--{flag.replace('_', '-')} {value} (protocol: {protocol[key]})")
    if name == "digit-five":
        for flag, key in (
            ("max_per_domain", "federation.max_per_domain"),
            ("max_test", "federation.max_test_per_domain"),
        ):
            value = getattr(args, flag)
            if value:
                out[key] = value
                departures.append(f"{key} = {value} (protocol: all rows)")
    return out, departures


def run_federation(args: argparse.Namespace, name: str, seeds: list[int], strategies: list[str]) -> None:
    overrides, departures = overrides_for(args, name)
    data_dir = Path(overrides["federation.data_dir"])
    if not data_dir.exists():
        print(f"\n[{name}] skipped: {data_dir} not found")
        return
    cfg = load_simulation_config(None, overrides)
    setup = setup_for(cfg)
    targets = args.targets.split(",") if args.targets else setup.fed.domain_names
    targets = [t for t in targets if t in setup.fed.domain_names]
    if not targets:
        print(f"\n[{name}] skipped: none of --targets {args.targets} is a domain ({setup.fed.domain_names})")
        return
    t = cfg.training
    print(
        f"\n[{name}] protocol fedka2022: {t.rounds} rounds × {t.local_steps} local batches "
        f"of {t.batch_size}, "
        f"{t.optimizer} lr {t.lr}, fine-tune ≤ {t.finetune_steps} batches; seeds {seeds}; targets {targets}"
    )
    for d in departures:
        print(f"  DEPARTURE from the protocol: {d}")
    for target in targets:
        dom = setup.fed.domains[target]
        print(f"  target {target}: {len(dom.y_train)} unlabeled pool rows, {len(dom.y_test)} fixed test rows")
    started = time.perf_counter()
    out = Path(args.out) / name
    _, runs, _ = run_sweep(cfg, targets, strategies, seeds, out)
    minutes = (time.perf_counter() - started) / 60
    cells = comparison.compare(runs)
    rows = []
    for target in targets:
        sel = runs[runs["target"] == target]
        acc = [_pct(sel[sel["strategy"] == s]["final_target_acc"]) for s in strategies]
        rows.append([target, *acc])
    print_table(
        ["target", *[f"{s} final %" for s in strategies]],
        rows,
        title=f"[{name}] final target accuracy, mean ± std over {len(seeds)} seeds ({minutes:.0f} min)",
    )
    rows = []
    for c in cells:
        rows.append(
            [
                c["target"],
                c["strategy"],
                str(c["seeds"]),
                describe(c["final"]),
                describe(c["best"]),
                describe(c["ge_strategy"], wins=False),
                describe(c["ge_baseline"], wins=False),
                _ratio(c),
            ]
        )
    print_table(
        ["target", "strategy", "pairs", "Δ final vs FedAvg", "Δ best-round", "GE", "FedAvg GE", "GE ratio"],
        rows,
        title=f"[{name}] paired vs FedAvg, pp: mean [95% CI, {comparison.METHODS['differences']}], wins; "
        f"GE ratio: {comparison.METHODS['ratio']}",
    )
    mean_fedka = next(
        (c for c in cells if c["target"] == comparison.ALL_TARGETS and c["strategy"] == "fedka"), None
    )
    if mean_fedka is None and len(targets) == 1:
        mean_fedka = next((c for c in cells if c["strategy"] == "fedka"), None)
    if mean_fedka is not None:
        print(
            f"  FedKA vs FedAvg, mean over targets: {describe(mean_fedka['final'])} (final round); "
            f"paper: +{PAPER_GAIN_PP[name]} ({PAPER_NOTE[name]}, best round, 200 rounds)"
        )
    print(f"  sweep directory: {out} (fedlab report {out})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    ap.add_argument("--federations", default="office-caltech10,digit-five")
    ap.add_argument("--strategies", default="fedavg,fdan,fedka")
    ap.add_argument("--targets", default="", help="comma-separated target domains (default: all)")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument(
        "--rounds", type=int, default=None, help="DEPARTURE: fewer rounds than the protocol's 200"
    )
    ap.add_argument("--local-steps", type=int, default=None, help="DEPARTURE: other than 32 local batches")
    ap.add_argument("--max-per-domain", type=int, default=0, help="digit-five DEPARTURE: cap training rows")
    ap.add_argument("--max-test", type=int, default=0, help="digit-five DEPARTURE: cap official test rows")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=f"runs/bench-protocol-{time.strftime('%Y%m%d-%H%M%S')}")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    strategies = args.strategies.split(",")
    if "fedavg" not in strategies:
        sys.exit("error: --strategies must include fedavg (every gain is paired with FedAvg)")
    for name in args.federations.split(","):
        if name not in FEDERATIONS:
            sys.exit(f"error: --federations {name!r}: expected {', '.join(FEDERATIONS)}")
        run_federation(args, name, seeds, strategies)


if __name__ == "__main__":
    main()
