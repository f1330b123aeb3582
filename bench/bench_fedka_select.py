"""FedKA or FedAvg, chosen per target on the sources' own pseudo-targets (issue #26, variant 23).

Why: no label-free signal read from the target told the federations where FedKA gains from those
where it loses (docs/reproductions/fedka2022.md). Training-domain validation uses labels the
federation has: for a target T, FedAvg and the default FedKA run on every pseudo-task of the
sources — the federation without T, one source domain S as the target — and FedKA is chosen for T
when its mean final-round gain over the pseudo-targets is > 0 (fewer than two source domains: no
pseudo-task, FedAvg). T's data are not loaded for the choice. The variant's result for (T, seed)
is then the chosen strategy's run from a bench_fedka_blocks.py folder holding variants 0 and 8.

    # the pseudo-task runs (resumable, --worker i/n splits them), then the paired report
    python bench/bench_fedka_select.py --config docs/examples/adult_marital_federation.toml \\
        --data-dir ../shared/data --out runs/v23/adult_marital [--worker 1/2]
    python bench/bench_fedka_select.py --config ... --out runs/v23/adult_marital --report \\
        --blocks runs/v23/adult_marital   # the folder of `bench_fedka_blocks.py --variants 0,8`
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
from bench_federation import PRESETS
from bench_fedka_ablation import VARIANTS
from bench_fedka_blocks import _base, _targets

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")

from fedlab.config import load_simulation_config
from fedlab.federation.setup import setup_for
from fedlab.metrics import comparison
from fedlab.metrics.stats import describe
from fedlab.runs.sweep import run_sweep

LABELS = list(VARIANTS)
PAIR = {"fedavg": 0, "fedka": 8}  # the two candidates, as bench_fedka_ablation's variants
BOUND = -1.0  # the bound, pp: lower end of the paired 95 % interval >= -1 pp


def _done(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=["target", "pseudo", "strategy"])


def pseudo_tasks(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(target, pseudo-target) pairs: every other domain of the federation as the pseudo-target."""
    base = _base(args)
    domains = list(setup_for(load_simulation_config(args.config, base)).fed.domain_names)
    return [(t, s) for t in _targets(args, base) for s in domains if s != t and len(domains) > 2]


def run_pseudo(args: argparse.Namespace) -> None:
    base = _base(args)
    domains = list(setup_for(load_simulation_config(args.config, base)).fed.domain_names)
    index, _, count = args.worker.partition("/")
    csv = args.out / "pseudo.csv"
    for target, pseudo in pseudo_tasks(args)[int(index) - 1 :: int(count)]:
        sources = [d for d in domains if d != target]
        for strategy, variant in PAIR.items():
            have = _done(csv)
            if (
                (have["target"] == target) & (have["pseudo"] == pseudo) & (have["strategy"] == strategy)
            ).any():
                continue
            overrides = {**base, **VARIANTS[LABELS[variant]][1], "federation.domains": sources}
            cfg = load_simulation_config(args.config, overrides)
            started = time.perf_counter()
            scratch = args.out / f"pseudo-w{index}" / f"{target}-{pseudo}-{strategy}"
            _, runs, _ = run_sweep(
                cfg, [pseudo], [VARIANTS[LABELS[variant]][0]], [args.selection_seed], scratch
            )
            acc = float(runs.iloc[0]["final_target_acc"])
            row = {"target": target, "pseudo": pseudo, "strategy": strategy, "final_target_acc": acc}
            pd.DataFrame([row]).to_csv(csv, mode="a", header=not csv.is_file(), index=False)
            took = time.perf_counter() - started
            print(f"{target}: pseudo-target {pseudo} {strategy} {acc:.3f} ({took:.0f} s)", flush=True)


def choices(args: argparse.Namespace, targets: list[str]) -> dict[str, tuple[str, float | None, int]]:
    """target -> (chosen strategy, mean pseudo-target gain of FedKA, pseudo-targets measured)."""
    pseudo = _done(args.out / "pseudo.csv")
    out = {}
    for t in targets:
        mine = pseudo[pseudo["target"] == t].pivot_table(
            index="pseudo", columns="strategy", values="final_target_acc"
        )
        mine = mine.dropna() if set(PAIR) <= set(mine.columns) else mine.iloc[0:0]
        gain = float((mine["fedka"] - mine["fedavg"]).mean()) if len(mine) else None
        out[t] = ("fedka" if gain is not None and gain > 0 else "fedavg", gain, len(mine))
    return out


def report(args: argparse.Namespace) -> None:
    runs = pd.read_csv(args.blocks / "runs.csv")
    runs = runs[runs["variant"].isin(PAIR.values())].drop_duplicates(["variant", "target", "seed"])
    targets = sorted(set(runs["target"]))
    expected = {t for t, _ in pseudo_tasks(args)}
    chosen = choices(args, targets)
    missing = [
        t for t in targets if t in expected and chosen[t][2] < sum(1 for x, _ in pseudo_tasks(args) if x == t)
    ]
    if missing:
        sys.exit(f"error: pseudo-task runs missing for {', '.join(missing)} (run without --report first)")
    print_table(
        ["target", "pseudo-targets", "FedKA - FedAvg on them, pp (mean)", "chosen"],
        [[t, str(n), "-" if g is None else f"{100 * g:+.1f}", c] for t, (c, g, n) in chosen.items()],
        title=f"[{args.config or args.federation}] choice per target (selection seed {args.selection_seed})",
    )
    name = {v: k for k, v in PAIR.items()}
    runs = runs.assign(strategy=[name[v] for v in runs["variant"]])
    picked = runs[[row.strategy == chosen[row.target][0] for row in runs.itertuples()]].assign(
        strategy="select"
    )
    both = pd.concat([runs, picked], ignore_index=True)
    complete = both.groupby(["target", "seed"])["strategy"].nunique()
    keep = set(complete[complete == 3].index)
    both = both[[(t, s) in keep for t, s in zip(both["target"], both["seed"], strict=True)]]
    for baseline in ("fedavg", "fedka"):
        cells = [c for c in comparison.compare(both, baseline=baseline) if c["strategy"] == "select"]
        rows = [[c["target"], describe(c["final"]), describe(c["best"])] for c in cells]
        title = f"variant 23 (select) paired with {baseline}, {len(keep)} complete blocks"
        print_table(["target", f"final: select - {baseline}", "best round"], rows, title=title)
    meets = {}
    for strategy in ("fedka", "select"):
        cells = [c for c in comparison.compare(both, baseline="fedavg") if c["strategy"] == strategy]
        per_target = [c for c in cells if c["target"] != comparison.ALL_TARGETS]
        meets[strategy] = sum(c[k].ci_low >= BOUND for c in per_target for k in ("final", "best"))
    print(f"goal cells (lower end >= -1 pp vs FedAvg, final and best per target): "
          f"fedka {meets['fedka']}, select {meets['select']} of {2 * len(targets)}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"),
                    help="as bench_fedka_blocks.py's --data-dir")  # fmt: skip
    ap.add_argument("--federation", default="office-caltech10", choices=sorted(PRESETS))
    ap.add_argument("--config", type=Path, default=None, help="a federation TOML instead of --federation")
    ap.add_argument("--protocol", default=None, choices=["fedka2022"], help="default: fedka2022 (presets)")
    ap.add_argument("--targets", default="", help="default: Office-Caltech10's four, or --config's domains")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--max-per-domain", type=int, default=None)
    ap.add_argument("--selection-seed", type=int, default=0)
    ap.add_argument("--worker", default="1/1", help="i/n: this process runs every n-th pseudo-task")
    ap.add_argument("--report", action="store_true")
    ap.add_argument("--blocks", type=Path, default=None, help="--report: bench_fedka_blocks.py folder (0, 8)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.report:
        if args.blocks is None or not (args.blocks / "runs.csv").is_file():
            sys.exit(f"error: --blocks {args.blocks}: expected a bench_fedka_blocks.py folder with runs.csv")
        report(args)
    else:
        run_pseudo(args)


if __name__ == "__main__":
    main()
