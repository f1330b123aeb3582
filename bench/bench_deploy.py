"""What does the deployment engine cost? One command, one table.

Runs the same 2-client FedAvg job (digits: clients `original` + `rotated`, target
`colour`) three ways and reports wall time and mean round time:

* simulation: `fedlab.runs.simulate.simulate` (default engine: fedlab's in-process runtime);
* deployed, TLS + SuperNode auth: `fedlab deploy local` (SuperLink + 2 SuperNodes as
  processes on 127.0.0.1, `flwr run`);
* deployed, insecure: the same without TLS/auth, isolating the cost of encryption;
* containers (``--containers``): ``scripts/container-e2e.sh`` — SuperLink + 2 SuperNode
  containers from ``scripts/container-build.sh``'s images, TLS + auth; wall = key material
  to report, run = ``flwr run`` (containers must be built first).

Why the gap: in deployment every message crosses HTTP(S) and the SuperNode starts a
fresh `flwr-clientapp` process per message (import torch, load the domain), where the
simulation reuses one process. Round time = the server's own per-round timer (from
sending the train messages to the end of its evaluation), so start-up is excluded.

    python bench/bench_deploy.py                       # 2 rounds, 3 local steps
    python bench/bench_deploy.py --rounds 3 --local-steps 10 --skip-insecure
    python bench/bench_deploy.py --strategy fedka --rounds 3 --local-steps 10 --skip-insecure --containers
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import print_table

DOMAINS = ["original", "rotated"]
TARGET = "colour"


def _rounds(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(ln) for ln in lines if ln.strip()]


def _row(mode: str, wall: float, run_s: float, rounds: list[dict[str, Any]]) -> list[str]:
    per_round = [float(r["seconds"]) for r in rounds]
    acc = rounds[-1]["target_acc"] if rounds else float("nan")
    return [
        mode,
        f"{wall:.1f}",
        f"{run_s:.1f}",
        f"{statistics.mean(per_round):.1f}" if per_round else "-",
        f"{100 * acc:.1f}",
        str(len(rounds)),
    ]


def run_simulation(rounds: int, local_steps: int, out: Path, strategy: str = "fedavg") -> list[str]:
    from fedlab.config import SimulationConfig
    from fedlab.runs.simulate import simulate

    cfg = SimulationConfig.model_validate(
        {
            "seed": 0,
            "device": "cpu",
            "federation": {"name": "digits", "domains": [*DOMAINS, TARGET]},
            "training": {
                "strategy": strategy,
                "target": TARGET,
                "rounds": rounds,
                "local_steps": local_steps,
            },
        }
    )
    start = time.perf_counter()
    result = simulate(cfg, out=out / "simulation")
    wall = time.perf_counter() - start
    run_dir = Path(getattr(result, "run_dir", out / "simulation"))
    return _row("simulation (in-process)", wall, wall, _rounds(run_dir))


def run_deployed(
    rounds: int, local_steps: int, out: Path, tls: bool, verbose: bool, strategy: str = "fedavg"
) -> list[str]:
    from fedlab.deploy.local import LocalOptions, run_local

    opts = LocalOptions(
        nodes=len(DOMAINS),
        tls=tls,
        auth=tls,
        rounds=rounds,
        strategy=strategy,
        target=TARGET,
        domains=DOMAINS,
        local_steps=local_steps,
        out=out / ("tls" if tls else "insecure"),
        run_config={"device": "cpu"},
        sink=(lambda line: print(line, file=sys.stderr)) if verbose else (lambda line: None),
    )
    result = run_local(opts)
    if not result.ok or result.run_dir is None:
        raise SystemExit(f"deployed run ({'TLS' if tls else 'insecure'}) ended {result.status}")
    mode = "deployed, TLS + node auth" if tls else "deployed, insecure"
    return _row(mode, result.seconds_total, result.seconds_run, _rounds(result.run_dir))


def run_containers(rounds: int, local_steps: int, out: Path, strategy: str, verbose: bool) -> list[str]:
    root = Path(__file__).resolve().parents[1]
    argv = ["bash", str(root / "scripts" / "container-e2e.sh"), "--rounds", str(rounds),
            "--local-steps", str(local_steps), "--strategy", strategy, "--target", TARGET,
            "--domains", ",".join(DOMAINS), "--out", str(out / "containers")]  # fmt: skip
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=root)
    if verbose or proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
    if proc.returncode != 0:
        raise SystemExit(f"container run failed (exit {proc.returncode}); see the log above")
    times = re.search(r"wall time ([\d.]+) s .*flwr run ([\d.]+) s", proc.stderr)
    if not times:
        raise SystemExit("container run: no timing line in the script's output")
    (run_dir,) = list((out / "containers").iterdir())
    return _row("containers, TLS + node auth", float(times.group(1)), float(times.group(2)), _rounds(run_dir))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--local-steps", type=int, default=3)
    parser.add_argument("--strategy", default="fedavg", help="fedavg (default), fedka, ...")
    parser.add_argument("--skip-insecure", action="store_true", help="Only simulation vs TLS.")
    parser.add_argument("--containers", action="store_true", help="Add scripts/container-e2e.sh.")
    parser.add_argument("--verbose", action="store_true", help="Stream the deployment's logs.")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fedlab-bench-deploy-") as tmp:
        out = Path(tmp)
        rows = [run_simulation(args.rounds, args.local_steps, out, args.strategy)]
        rows.append(run_deployed(args.rounds, args.local_steps, out, True, args.verbose, args.strategy))
        if not args.skip_insecure:
            rows.append(run_deployed(args.rounds, args.local_steps, out, False, args.verbose, args.strategy))
        if args.containers:
            rows.append(run_containers(args.rounds, args.local_steps, out, args.strategy, args.verbose))
    print_table(
        ["mode", "wall s", "run s", "mean round s", "final target acc %", "rounds"],
        rows,
        title=(
            f"{args.strategy}, digits {'+'.join(DOMAINS)} -> {TARGET}, {args.rounds} rounds x "
            f"{args.local_steps} local steps (wall: all processes up and down; run: submit -> finished)"
        ),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
