"""FedKA ablation in complete blocks: every chosen variant on one (seed, target), then the next.

Why besides bench_fedka_ablation.py: that bench runs one variant over all targets and seeds
before the next, so a run stopped early (a 2-core machine, a time limit) leaves whole variants
unmeasured. Here the unit is a block — all variants on one (seed, target) — so whatever stops
the run, the finished blocks are a balanced paired design. Rows are appended to OUT/runs.csv as
runs finish (a rerun skips them: resumable), blocks can be split over processes
(``--worker 1/2``, ``--worker 2/2``), and ``--report`` prints the paired comparison with FedAvg
over the complete blocks only.

    python bench/bench_fedka_blocks.py --out runs/blocks --variants 0,1,2,11,12,13 \\
        --targets amazon,caltech --seeds 0,1,2,3,4 --protocol fedka2022 [--worker 1/2]
    python bench/bench_fedka_blocks.py --out runs/blocks --variants 0,1,2,11,12,13 --report
    # runs already made by bench_fedka_ablation.py (its variant-N folders, finished or partial):
    python bench/bench_fedka_blocks.py --out runs/blocks --ingest runs/ablation/variant-0=0
    # your own federation at its own settings (every domain as the target):
    python bench/bench_fedka_blocks.py --config docs/examples/compas_federation.toml --data-dir DATA \
        --out runs/compas --variants 0,1,2,8,12,13
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
from bench_federation import PRESETS, preset_overrides
from bench_fedka_ablation import VARIANTS

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")

from fedlab.config import load_simulation_config
from fedlab.metrics import comparison
from fedlab.metrics.stats import describe, format_ratio
from fedlab.runs.sweep import RUN_COLUMNS, run_row, run_sweep

LABELS = list(VARIANTS)


def _done(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=[*RUN_COLUMNS, "variant"])


def _append(path: Path, rows: list[dict]) -> None:
    frame = pd.DataFrame(rows)
    frame.to_csv(path, mode="a", header=not path.is_file(), index=False)


def ingest(out: Path, spec: str) -> None:
    """Rows from the run folders under DIR (summary.json, any depth) as variant N."""
    folder, _, number = spec.rpartition("=")
    rows = []
    for summary in sorted(Path(folder).rglob("summary.json")):
        if summary.parent == Path(folder):
            continue  # the sweep's own summary
        import json

        row = run_row(json.loads(summary.read_text(encoding="utf-8")))
        rows.append({**row, "variant": int(number)})
    have = _done(out / "runs.csv")
    keys = set(zip(have["variant"], have["target"], have["seed"], strict=True)) if len(have) else set()
    rows = [r for r in rows if (r["variant"], r["target"], r["seed"]) not in keys]
    if rows:
        _append(out / "runs.csv", rows)
    print(f"ingested {len(rows)} runs from {folder} as variant {number}")


def _fail(message: str) -> None:
    """One `error:` line and exit 2, before anything is written."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def _base(args: argparse.Namespace) -> dict:
    """Config overrides every variant starts from: a preset federation at the protocol, or (--config)
    the user's TOML at its own settings, with --data-dir as its data folder."""
    if args.config is not None:
        base = {"federation.data_dir": args.data_dir, "device": "cpu", "protocol": args.protocol or ""}
    else:
        preset, missing = preset_overrides(args.federation, args.data_dir)
        if missing is not None:
            sys.exit(f"error: {missing} not found (the {args.federation} data; see --data-dir)")
        base = {**preset, "device": "cpu", "protocol": args.protocol or "fedka2022"}
    if args.rounds is not None:
        base["training.rounds"] = args.rounds
        print(f"DEPARTURE from {base['protocol'] or 'the config'}: training.rounds = {args.rounds}")
    if args.max_per_domain is not None:
        base["federation.max_per_domain"] = args.max_per_domain
        print(f"DEPARTURE from the federation's size: max_per_domain = {args.max_per_domain}")
    return base


def _targets(args: argparse.Namespace, base: dict) -> list[str]:
    if args.targets:
        return args.targets.split(",")
    if args.config is None:
        return ["amazon", "caltech", "dslr", "webcam"]
    from fedlab.federation.setup import setup_for

    return list(setup_for(load_simulation_config(args.config, base)).fed.domain_names)


def run_blocks(args: argparse.Namespace, variants: list[int]) -> None:
    base = _base(args)
    blocks = [(s, t) for s in args.seeds.split(",") for t in _targets(args, base)]
    index, _, count = args.worker.partition("/")
    mine = blocks[int(index) - 1 :: int(count)]
    csv = args.out / "runs.csv"
    for seed, target in mine:
        for v in variants:
            have = _done(csv)
            if ((have["variant"] == v) & (have["target"] == target) & (have["seed"] == int(seed))).any():
                continue
            strategy, overrides = VARIANTS[LABELS[v]]
            cfg = load_simulation_config(args.config, {**base, **overrides})
            started = time.perf_counter()
            scratch = args.out / f"runs-w{index}" / f"v{v}-{target}-s{seed}"
            _, runs, _ = run_sweep(cfg, [target], [strategy], [int(seed)], scratch)
            _append(csv, [{**runs.iloc[0].to_dict(), "variant": v}])
            print(f"variant {v} {target} seed {seed}: {runs.iloc[0]['final_target_acc']:.3f} "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip


def report(args: argparse.Namespace, variants: list[int]) -> None:
    runs = _done(args.out / "runs.csv")
    runs = runs[runs["variant"].isin(variants)]
    runs = runs.drop_duplicates(["variant", "target", "seed"])
    counts = runs.groupby(["target", "seed"])["variant"].nunique()
    complete = counts[counts == len(variants)].index
    runs = runs.set_index(["target", "seed"]).loc[list(complete)].reset_index()
    runs = runs.assign(strategy=[LABELS[v] for v in runs["variant"]])
    base = LABELS[args.vs]
    cells = comparison.compare(runs, baseline=base)
    rows = []
    for v in variants:
        label = LABELS[v]
        mine = runs[runs["variant"] == v]
        own = [c for c in cells if c["strategy"] == label]
        pooled = next((c for c in own if c["target"] == comparison.ALL_TARGETS), None)
        per_target = sorted((c["target"], c) for c in own if c["target"] != comparison.ALL_TARGETS)
        rows.append([
            v, label, f"{100 * mine['final_target_acc'].mean():.1f}",
            describe(pooled["final"]) if pooled else "-", describe(pooled["best"]) if pooled else "-",
            "; ".join(f"{t} {describe(c['final'])}" for t, c in per_target) or "-",
            "; ".join(f"{t} {describe(c['best'])}" for t, c in per_target) or "-",
        ])  # fmt: skip
    blocks = ", ".join(f"{t} s{s}" for t, s in complete)
    print_table(
        ["#", "variant", "final acc %", f"final vs {base}, pp [95% CI], wins", "best round",
         "final per target", "best round per target"],
        rows,
        title=f"[{args.config or args.federation}] {len(complete)} complete blocks ({blocks}); vs {base}",
    )  # fmt: skip
    if args.vs != 0:
        return  # the Group Effect table is read against FedAvg only
    print_table(["target", "variant", "GE %", "GE vs FedAvg, pp [95% CI]", "GE ratio vs FedAvg"],
                group_effect_rows(cells, runs), title="Group Effect (final round)")  # fmt: skip


def group_effect_rows(cells: list[dict], runs: pd.DataFrame) -> list[list[str]]:
    """Per target (and over targets): each variant's Group Effect, paired vs FedAvg's, and the
    ratio only where FedAvg's own GE interval excludes 0 (a ratio to a GE that may be 0 is not
    a number anyone should quote)."""
    rows = []
    for c in cells:
        if VARIANTS[c["strategy"]][0] in comparison.REFERENCES:
            continue  # central/oracle have no clients, hence no Group Effect
        base = c["ge_baseline"]
        ratio = (format_ratio(c["ge_ratio"]) if base.excludes_zero()
                 else f"unbounded (FedAvg GE {describe(base, wins=False)})")  # fmt: skip
        own = describe(c["ge_strategy"], wins=False)
        rows.append([c["target"], c["strategy"], own, describe(c["ge"]), ratio])
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--data-dir",
        default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"),
        help="the shared data root, with digits/ and office_caltech10/surf/ below it (`fedlab simulate "
        "--data-dir` takes the federation's own folder, e.g. DATA/digits); with --config, that config's "
        "data folder",
    )
    ap.add_argument("--federation", default="office-caltech10", choices=sorted(PRESETS))
    ap.add_argument(
        "--config",
        type=Path,
        default=None,
        help="a federation TOML instead of --federation (e.g. docs/examples/compas_federation.toml): its own "
        "settings, not the protocol, unless --protocol is given; targets default to all its domains",
    )
    ap.add_argument("--protocol", default=None, choices=["fedka2022"], help="default: fedka2022 (presets)")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--targets", default="", help="default: Office-Caltech10's four, or --config's domains")
    ap.add_argument("--variants", default="0,1,2,11,12,13", help="numbers of bench_fedka_ablation's VARIANTS")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--max-per-domain", type=int, default=None, help="images per domain (departure)")
    ap.add_argument("--worker", default="1/1", help="i/n: this process runs every n-th block from the i-th")
    ap.add_argument("--ingest", action="append", default=[], help="DIR=N: add finished runs under DIR")
    ap.add_argument("--report", action="store_true")
    ap.add_argument("--vs", type=int, default=0, help="--report: the variant the others are paired with")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    variants = [int(v) for v in args.variants.split(",") if v.strip().isdigit() and int(v) < len(LABELS)]
    if not variants or variants[0] != 0 or len(variants) != len(args.variants.split(",")):
        _fail(f"--variants {args.variants!r}: expected numbers 0..{len(LABELS) - 1} starting with 0 (FedAvg)")
    if args.vs not in variants:
        _fail(f"--vs {args.vs}: expected one of --variants {args.variants}")
    if args.config is not None and not args.config.is_file():
        _fail(f"--config {args.config}: no such file (expected a federation TOML, see docs/examples/)")
    index, _, count = args.worker.partition("/")
    if not (index.isdigit() and count.isdigit() and 1 <= int(index) <= int(count)):
        _fail(f"--worker {args.worker!r}: expected i/n with 1 <= i <= n (e.g. 1/2 and 2/2)")
    args.out.mkdir(parents=True, exist_ok=True)
    for spec in args.ingest:
        ingest(args.out, spec)
    if args.report:
        report(args, variants)
    elif not args.ingest:
        run_blocks(args, variants)


if __name__ == "__main__":
    main()
