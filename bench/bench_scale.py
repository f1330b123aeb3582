"""Simulation at research scale: client updates/s, s/round, peak RSS and a phase breakdown,
`fedlab simulate` next to a plain loop doing the same work (see bench/_scale_loop.py).

Workloads: ``tabular`` (embedded Adult split by race, MLP, group fairness per client) and
``digits`` (embedded digits CNN, ``--split iid|dirichlet``). N = 4 source domains ×
``clients_per_domain``: 12, 100, 1000. Each cell runs in its own process (peak RSS is that
process's), after the data is loaded (setup is not timed). Variants:

* ``loop``      plain Python loop (FedAvg only);
* ``loop:thread`` the same loop run in a second thread after the main thread loaded the data:
  two threads then drive torch's OpenMP pools, libgomp manages more threads than there are CPUs
  and cuts its spin-wait to 100 iterations, so its workers sleep between kernels. For the digits
  CNN on an idle 2-core machine that trained 1.3-2.5x slower, and faster with CPU-bound processes
  alongside. fedlab's runtime therefore runs everything on the calling thread, like ``loop``;
* ``fedlab``    `fedlab simulate`, default engine (fedlab's direct-grid runtime, in-process);
* ``process:W`` the process-pool backend with W workers;
* ``flower``    Flower's own runtime (link state + VCE loop) with the in-process backend;
* ``ray``       Flower's Ray backend.

Phases (seconds summed over the run): client training (`train_local`), client evaluation
(own-split accuracy + group fairness), client message handling (the rest of the ClientApp:
config parsing, model build, weights in/out), server evaluation (returned models and global
model on the target, pooled fairness), aggregation (decoding the returned weights, once per
reply, and averaging them), runtime (everything else: grid, messages, link state, strategy
bookkeeping, metrics files). "vs loop" divides wall times; "CPU vs loop" divides the CPU
seconds of the process (fedlab's default engine and Flower's runtime do all their work in it),
which leaves out time spent waiting for a core on a machine shared with other jobs (cache
contention still shows in both). "best vs best" divides the fastest repetition of each (noise
only adds time). "vs 1 worker" is the process pool's speed-up: process:1's wall
time / process:W's. ``--repeats R`` runs the whole plan R times (the order rotated each time) and
prints medians; each ratio is taken within one repetition (cells run back to back) and shown as
the median with its [min–max] over repetitions. ``--link-state`` also times Flower's
in-memory link state alone (one dispatcher sweep over N nodes with M stored messages).

    python bench/bench_scale.py --preset quick            # N=12/100, tabular + digits, 2 rounds
    python bench/bench_scale.py --workload tabular --n 100 --per-round all --rounds 3 --repeats 5
    python bench/bench_scale.py --workload digits --n 12 --variants loop fedlab process:1 process:2
    python bench/bench_scale.py --workload tabular --n 1000 --per-round 100 --variants fedlab
    python bench/bench_scale.py --link-state
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import print_table

os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
CPD = {12: 3, 100: 25, 1000: 250}
PHASES = (
    "client training",
    "client evaluation",
    "client message handling",
    "server evaluation",
    "aggregation",
    "runtime",
)


# -- one cell (child process) ---------------------------------------------------------
def _config(cell: dict[str, Any]):
    from fedlab.config import load_simulation_config
    from fedlab.runs.study import with_embedded_adult

    n, k = cell["n"], cell["per_round"]
    over = {
        "federation.name": cell["workload"],
        "federation.clients_per_domain": CPD[n],
        "federation.split": cell.get("split", "iid"),
        "training.strategy": cell["strategy"],
        "training.rounds": cell["rounds"],
        "training.local_steps": cell["steps"],
        "training.clients_per_round": 0 if k in ("all", n) else int(k),
        "training.eval_every": cell["eval_every"],
        "training.client_eval": cell["client_eval"],
        "device": "cpu",
        "torch_threads": cell.get("threads", 0),
    }
    variant = cell["variant"]
    if variant.startswith("process:"):
        over.update({"engine": "process", "workers": int(variant.split(":")[1])})
    elif variant in ("flower", "ray"):
        over["engine"] = variant
    cfg = load_simulation_config(None, over)
    return with_embedded_adult(cfg) if cell["workload"] == "tabular" else cfg


class _Timers:
    """Exclusive wall-time per phase: a call nested in a timed call counts for the outer one."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.depth = 0

    def wrap(self, owner: Any, name: str, phase: str, exclusive: bool = True) -> None:
        inner = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            if exclusive and self.depth:
                return inner(*args, **kwargs)
            self.depth += exclusive
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.seconds[phase] += time.perf_counter() - start
                self.depth -= exclusive

        setattr(owner, name, timed)


def _instrument() -> _Timers:
    import flwr.serverapp.strategy.fedavg as fedavg_mod

    import clients.app as client_mod
    import fedlab.metrics.fairness as fair_mod
    import server.strategies.domain as strategy_mod
    from fedlab.runtime.backends import InProcessBackend
    from server.target import TargetDomain
    from server.weighted_average import WeightedAverage

    t = _Timers()
    t.wrap(InProcessBackend, "process_message", "clientapp", exclusive=False)
    t.wrap(client_mod, "train_local", "client training")
    t.wrap(client_mod, "predict", "client evaluation")  # accuracy and fairness share the pass
    t.wrap(fair_mod, "client_payload", "client evaluation")
    for name in ("model_from", "test_accuracy", "test_predictions", "pool_probabilities"):
        t.wrap(TargetDomain, name, "server evaluation")
    t.wrap(fair_mod, "pooled_fairness", "server evaluation")
    t.wrap(fair_mod, "fairness_by_attribute", "server evaluation")
    t.wrap(fedavg_mod, "aggregate_arrayrecords", "aggregation")  # strategies Flower averages
    for name in ("add", "record"):  # FedAvg-family average (server.weighted_average)
        t.wrap(WeightedAverage, name, "aggregation")
    t.wrap(strategy_mod, "record_numpy", "aggregation")  # each reply decoded once, for both
    return t


def _warm_imports() -> None:
    import clients.app  # noqa: F401
    import server.app  # noqa: F401
    from fedlab.core.seeding import seed_everything

    seed_everything(0)


def _in_worker_thread(fn: Any, *args: Any) -> Any:
    """`fn(*args)` in a second thread, the main thread waiting (a second OpenMP pool: see the
    module docstring on ``loop:thread``)."""
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = fn(*args)
        except BaseException as exc:  # re-raised in the main thread
            out["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def run_cell(cell: dict[str, Any]) -> dict[str, Any]:
    from fedlab.federation.setup import setup_for
    from fedlab.learn.threads import threads_for, torch_threads

    cfg = _config(cell)
    setup = setup_for(cfg)  # data loaded before timing (both sides)
    _warm_imports()  # one-time imports (torch's deterministic mode, Flower) are not per-round cost
    n = len(setup.clients)
    k = n if cfg.training.clients_per_round in (0, n) else cfg.training.clients_per_round
    rounds_s: list[float] = []
    with torch_threads(threads_for(cfg.torch_threads, setup.fed.kind)):
        if cell["variant"].startswith("loop"):
            from _scale_loop import plain_loop

            start, cpu_start = time.perf_counter(), time.process_time()
            threaded = cell["variant"] == "loop:thread"
            phases = _in_worker_thread(plain_loop, cfg) if threaded else plain_loop(cfg)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
            acc = phases.pop("final_target_acc")
            failed = int(phases.pop("failed clients", 0))
            phases["runtime"] = max(0.0, wall - sum(phases.values()))
        else:
            from fedlab.runs.simulate import simulate

            timers = _instrument()
            with TemporaryDirectory() as tmp:
                start, cpu_start = time.perf_counter(), time.process_time()
                records: list[dict[str, Any]] = []
                res = simulate(cfg, out=Path(tmp) / "r", on_round=records.append)
                rounds_s = [r["seconds"] for r in records]
                failed = sum(r.get("clients_failed", 0) for r in records)
                wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
            acc = res.summary["final_target_acc"]
            phases = dict(timers.seconds)
            app = phases.pop("clientapp", 0.0)
            if app:
                inner = phases.get("client training", 0.0) + phases.get("client evaluation", 0.0)
                phases["client message handling"] = max(0.0, app - inner)
            phases["runtime"] = max(0.0, wall - sum(phases.values()))
    return {
        **cell,
        "clients": n,
        "k": k,
        "wall_s": wall,
        "cpu_s": cpu,  # this process's CPU seconds (all its threads; not pool or Ray workers)
        "s_per_round": statistics.median(rounds_s) if rounds_s else wall / cfg.training.rounds,
        "updates_per_s": k * cfg.training.rounds / wall,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "phases": phases,
        "final_target_acc": acc,
        "failed_updates": failed,
    }


# -- link state alone ---------------------------------------------------------------------
def link_state_cost(n_nodes: int, n_messages: int) -> float:
    """Seconds of one dispatcher sweep (`vce_api.add_messages_to_queue`'s loop body) with
    `n_messages` undelivered-reply messages stored, as during a round."""
    from flwr.app import Message, RecordDict
    from flwr.server.superlink.fleet.vce.vce_api import _register_nodes
    from flwr.server.superlink.linkstate import LinkStateFactory
    from flwr.server.superlink.linkstate.in_memory_linkstate import RunRecord
    from flwr.supercore.constant import FLWR_IN_MEMORY_DB_NAME
    from flwr.supercore.object_store import ObjectStoreFactory
    from flwr.supercore.run import Run
    from flwr.superlink.federation import NoOpFederationManager
    from flwr.superlink.grid import InMemoryGrid

    from fedlab.runtime.flower_compat import set_task_identity

    factory = LinkStateFactory(FLWR_IN_MEMORY_DB_NAME, NoOpFederationManager(), ObjectStoreFactory())
    state = factory.state()
    from flwr.proto.task_pb2 import Task
    from flwr.supercore.constant import NOOP_FEDERATION_ID

    run = Run.create_empty(run_id=12345)  # registered as `run_simulation`'s _main_loop does
    run.federation_id = NOOP_FEDERATION_ID
    run.primary_task_id = 777
    state.run_ids[run.run_id] = RunRecord(run=run)  # type: ignore[attr-defined]
    state.task_store[777] = Task(task_id=777, run_id=run.run_id)  # type: ignore[attr-defined]
    set_task_identity(run.run_id)
    nodes = list(_register_nodes(n_nodes, factory))
    grid = InMemoryGrid(factory)
    grid.set_run(run)
    grid.push_messages(
        [
            Message(RecordDict(), dst_node_id=nodes[i % n_nodes], message_type="train")
            for i in range(n_messages)
        ]
    )
    for node in nodes:  # first sweep delivers; the next ones only scan (the steady state)
        state.get_message_ins(node_id=node, limit=1)
    start = time.perf_counter()
    for node in nodes:
        state.get_message_ins(node_id=node, limit=1)
    return time.perf_counter() - start


# -- parent: plan, run, print ------------------------------------------------------------
def _child(cell: dict[str, Any], timeout: float) -> dict[str, Any] | None:
    cmd = [sys.executable, __file__, "--cell", json.dumps(cell)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"  timeout after {timeout:.0f} s: {cell}", file=sys.stderr)
        return None
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        print(f"  failed ({out.returncode}): {cell}\n{out.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(lines[-1])


def _plan(args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.preset == "quick":
        grid = [
            ("tabular", 12, "all"),
            ("tabular", 100, "all"),
            ("digits", 12, "all"),
            ("digits", 100, "all"),
        ]
    else:
        grid = [(w, n, k) for w in args.workload for n in args.n for k in args.per_round]
    cells = []
    for workload, n, k in grid:
        if k not in ("all",) and int(k) > n:
            continue
        for strategy in args.strategy:
            for variant in args.variants:
                if variant.startswith("loop") and strategy != "fedavg":
                    continue
                cells.append(
                    {
                        "workload": workload,
                        "split": args.split,
                        "n": n,
                        "per_round": k,
                        "strategy": strategy,
                        "variant": variant,
                        "rounds": args.rounds,
                        "steps": args.steps,
                        "eval_every": args.eval_every,
                        "client_eval": args.client_eval,
                        "threads": args.torch_threads,
                    }
                )
    return cells


def _key(r: dict[str, Any]) -> tuple:
    return (r["workload"], r["split"], r["n"], r["per_round"], r["strategy"], r["variant"])


def _paired_ratio(reps: dict[tuple, list[dict[str, Any]]], key: tuple, base: tuple, field: str) -> str:
    """Median over repetitions of (this cell / the base cell of the same repetition), with the
    range: cells of one repetition ran back to back, so the ratio cancels slow phases of the machine."""
    base_by_rep = {b["rep"]: b for b in reps.get(base, [])}
    ratios = [
        a[field] / base_by_rep[a["rep"]][field]
        for a in reps.get(key, [])
        if a["rep"] in base_by_rep and base_by_rep[a["rep"]][field] > 0
    ]
    if not ratios:
        return "-"
    mid = f"{statistics.median(ratios):.2f}×"
    return mid if len(ratios) == 1 else f"{mid} [{min(ratios):.2f}–{max(ratios):.2f}]"


def _best_ratio(runs: list[dict[str, Any]], base: list[dict[str, Any]]) -> str:
    """Fastest wall time of this cell / the loop's fastest: noise on a shared machine only ever
    adds time, so the minimum is each side's least disturbed run (timeit's rule)."""
    if not runs or not base:
        return "-"
    return f"{min(r['wall_s'] for r in runs) / min(b['wall_s'] for b in base):.2f}×"


def _rows(results: list[dict[str, Any]]) -> list[list[str]]:
    """One row per cell: medians over repetitions, ratios paired within a repetition."""
    reps: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        reps[_key(r)].append(r)
    rows = []
    for key, runs in reps.items():
        r = runs[0]
        loop_key = (*key[:4], "fedavg", "loop")
        variant = r["variant"]
        ratio = _paired_ratio(reps, key, loop_key, "wall_s") if variant != "loop" else "-"
        best = _best_ratio(runs, reps.get(loop_key, [])) if variant != "loop" else "-"
        in_process = variant in ("fedlab", "flower")
        cpu_ratio = _paired_ratio(reps, key, loop_key, "cpu_s") if in_process else "-"
        one_worker = (*key[:5], "process:1")
        speedup = (
            _paired_ratio(reps, one_worker, key, "wall_s")
            if variant.startswith("process:") and variant != "process:1"
            else "-"
        )
        med = {f: statistics.median(x[f] for x in runs) for f in ("updates_per_s", "s_per_round", "rss_mb")}
        ph = {p: statistics.median(x["phases"].get(p, 0.0) for x in runs) for p in PHASES}
        accs = {round(x["final_target_acc"], 6) for x in runs}
        rows.append(
            [
                r["workload"]
                if r["split"] == "iid" or r["workload"] == "tabular"
                else f"digits/{r['split']}",
                str(r["clients"]),
                str(r["k"]),
                r["strategy"],
                variant,
                str(len(runs)),
                f"{med['updates_per_s']:.1f}",
                f"{med['s_per_round']:.2f}",
                ratio,
                best,
                cpu_ratio,
                speedup,
                f"{med['rss_mb']:.0f}",
                " ".join(f"{ph[p]:.1f}" for p in PHASES),
                f"{r['final_target_acc']:.3f}" if len(accs) == 1 else "VARIES",
                str(max(x.get("failed_updates", 0) for x in runs)),
            ]
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cell", help=argparse.SUPPRESS)
    ap.add_argument("--preset", choices=["quick"], default=None)
    ap.add_argument("--workload", nargs="+", default=["tabular"], choices=["tabular", "digits"])
    ap.add_argument("--split", default="iid", choices=["iid", "dirichlet"])
    ap.add_argument("--n", nargs="+", type=int, default=[100], choices=sorted(CPD))
    ap.add_argument("--per-round", nargs="+", default=["all"], help="clients per round: numbers or 'all'")
    ap.add_argument("--strategy", nargs="+", default=["fedavg"])
    ap.add_argument("--variants", nargs="+", default=["loop", "fedlab"])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--eval-every", type=int, default=1)
    ap.add_argument("--client-eval", default="sampled", choices=["none", "sampled", "all"])
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument(
        "--repeats", type=int, default=1, help="repetitions; cells of one repetition run back to back"
    )
    ap.add_argument(
        "--torch-threads", type=int, default=0, help="torch intra-op threads, both sides (0 = fedlab's auto)"
    )
    ap.add_argument("--link-state", action="store_true", help="time Flower's in-memory link state alone")
    args = ap.parse_args()
    if args.cell:
        print(json.dumps(run_cell(json.loads(args.cell))), flush=True)
        return
    if args.link_state:
        rows = []
        for n in (10, 100, 1000):
            for m in sorted({min(n, 10), min(n, 100), n}):
                sweep = link_state_cost(n, m)
                rows.append([str(n), str(m), f"{1e3 * sweep:.1f}", f"{100 * sweep / (0.1 + sweep):.0f}%"])
        print_table(
            ["nodes", "stored messages", "ms per dispatcher sweep", "share of a core (sweep every 0.1 s)"],
            rows,
            title="Flower InMemoryLinkState: cost of one dispatcher sweep (vce_api.add_messages_to_queue)",
        )
        return
    results = []
    plan = _plan(args)
    for rep in range(args.repeats):
        shift = rep % len(plan) if plan else 0  # rotate the order: no variant always runs first
        for cell in plan[shift:] + plan[:shift]:
            print(
                f"rep {rep + 1}/{args.repeats}: {cell['workload']} N={cell['n']} "
                f"k={cell['per_round']} {cell['strategy']} {cell['variant']}…",
                file=sys.stderr,
            )
            res = _child(cell, args.timeout)
            if res is not None:
                results.append({**res, "rep": rep})
                print(json.dumps(res), file=sys.stderr)
    print_table(
        [
            "workload",
            "N",
            "k/round",
            "strategy",
            "variant",
            "reps",
            "updates/s",
            "s/round",
            "vs loop",
            "best vs best",
            "CPU vs loop",
            "vs 1 worker",
            "RSS MB",
            "phases s: train c-eval c-msg s-eval agg runtime",
            "final acc",
            "failed",
        ],
        _rows(results),
        title=f"medians over {args.repeats} repetition(s); ratios paired within a repetition "
        f"[min–max]; {args.rounds} rounds, {args.steps} local steps, eval_every {args.eval_every}, "
        f"client_eval {args.client_eval}, torch threads {args.torch_threads or 'auto'}; "
        f"cpus: {os.cpu_count()}",
    )


if __name__ == "__main__":
    main()
