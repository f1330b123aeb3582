"""`fedlab simulate`: thin CLI over `fedlab.runs.simulate` (one run) and `fedlab.runs.sweep` (several)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from fedlab.cli.console import console, progress_bar
from fedlab.cli.parse import parse_options, parse_seeds
from fedlab.config import load_simulation_config
from fedlab.core.errors import ConfigError
from fedlab.core.rundir import check_out_dir, default_run_name
from fedlab.runs.select import SELECT
from fedlab.runs.simulate import check_strategy
from server.strategies import available


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _fmt(mean: Any, std: Any) -> str:
    return "-" if mean is None or mean != mean else f"{100 * mean:.1f} ± {100 * std:.1f}"


def simulate(
    config: Path | None = typer.Option(None, "--config", help="TOML config file (see README)."),
    protocol: str | None = typer.Option(
        None, "--protocol", help="Preset of a paper's settings: fedka2022 (explicit flags still win)."
    ),
    federation: str | None = typer.Option(
        None, help="digits | digit-five | office-caltech10 | features | tabular"
    ),
    data_dir: str | None = typer.Option(
        None, "--data-dir", help="Folder with the federation's files (for digit-five: the digits/ folder)."
    ),
    pattern: str | None = typer.Option(
        None, "--pattern", help="features: glob of the domain files in --data-dir, e.g. '*.svmlight'."
    ),
    strategy: str | None = typer.Option(
        None,
        help=f"One or more (comma-separated) of {', '.join(available())}; Flower's and your own by "
        "import path (package.module:Class); BASE+fedka adds FedKA's matching and voting to BASE; "
        f"{SELECT} runs FedKA or FedAvg per target, chosen on the sources' own pseudo-targets.",
    ),
    strategy_options: str | None = typer.Option(
        None,
        "--strategy-options",
        help="Strategy constructor keywords, e.g. 'eta=0.01,tau=0.001' (FedAdam) or 'q=0.5' (qfedavg).",
    ),
    target: str | None = typer.Option(None, help="Target domain held out from the clients, or 'all'."),
    rounds: int | None = typer.Option(None, min=1),
    local_steps: int | None = typer.Option(None, "--local-steps", min=1),
    seed: int | None = typer.Option(None, help="Random seed."),
    seeds: str | None = typer.Option(
        None, help="Comma-separated seeds, e.g. 0,1,2,3,4 (a sweep defaults to 5 seeds from --seed)."
    ),
    device: str | None = typer.Option(None, help="auto | cpu | cuda"),
    gpus_per_client: float | None = typer.Option(
        None, "--gpus-per-client", help="Fraction of a GPU per client."
    ),
    max_per_domain: int | None = typer.Option(
        None, "--max-per-domain", help="Subsample each domain (0 = all)."
    ),
    dp: bool = typer.Option(
        False, "--dp", help="Differential privacy (client DP-SGD with Opacus by default)."
    ),
    dp_mode: str | None = typer.Option(None, "--dp-mode", help="client (DP-SGD) | central (Flower)."),
    epsilon: float | None = typer.Option(
        None, "--epsilon", help="DP: target epsilon over the planned rounds."
    ),
    noise_multiplier: float | None = typer.Option(
        None, "--noise-multiplier", help="DP: noise multiplier (instead of --epsilon)."
    ),
    max_grad_norm: float | None = typer.Option(None, "--max-grad-norm", help="DP: clipping norm."),
    delta: float | None = typer.Option(None, "--delta", help="DP: delta (default 1/n)."),
    anonymize: str | None = typer.Option(
        None, "--anonymize", help='Tabular: each client anonymizes its rows, e.g. "k=10" or "k=5,l=2".'
    ),
    clients_per_round: int | None = typer.Option(
        None, "--clients-per-round", min=0, help="Clients trained per round, seeded sample (0 = all)."
    ),
    eval_every: int | None = typer.Option(
        None, "--eval-every", min=1, help="Evaluate every K rounds (and the last)."
    ),
    client_eval: str | None = typer.Option(
        None, "--client-eval", help="Clients scoring the global model: none | sampled | all."
    ),
    engine: str | None = typer.Option(None, help="auto | inprocess | process | flower | ray"),
    workers: int | None = typer.Option(None, min=1, help="Worker processes (engine process)."),
    ray_address: str | None = typer.Option(
        None, "--ray-address", help="Join this Ray cluster (host:port; engine ray)."
    ),
    out: Path | None = typer.Option(None, help="Run directory (default: runs/<name>)."),
    verbose: bool = typer.Option(False, help="Show Flower's logs."),
    references: bool = typer.Option(
        True,
        "--references/--no-references",
        help="Sweeps: add the reference rows central (pooled source rows; simulation-only) and "
        "oracle (+ target labels) beside the strategies.",
    ),
) -> None:
    """Simulate a federation with a held-out target domain; report accuracy and Group Effect."""
    strategies = _split(strategy)
    overrides: dict[str, Any] = {
        "protocol": protocol,
        "federation.name": federation,
        "federation.data_dir": data_dir,
        "federation.pattern": pattern,
        "federation.max_per_domain": max_per_domain,
        "training.strategy": strategies[0] if strategies else None,
        "training.rounds": rounds,
        "training.local_steps": local_steps,
        "seed": seed,
        "device": device,
        "gpus_per_client": gpus_per_client,
        "training.clients_per_round": clients_per_round,
        "training.eval_every": eval_every,
        "training.client_eval": client_eval,
        "engine": engine,
        "workers": workers,
        "ray_address": ray_address,
    }
    seed_list = parse_seeds(seeds) if seeds is not None else None  # before anything is loaded
    if target and target != "all":
        overrides["training.target"] = target
    overrides.update(
        _privacy_overrides(dp, dp_mode, epsilon, noise_multiplier, max_grad_norm, delta, anonymize)
    )
    if strategy_options is not None:
        overrides["training.strategy_options"] = parse_options(strategy_options)
    cfg = load_simulation_config(config, overrides, FLAGS)
    try:
        check_strategy(cfg, strategies or None)
    except ConfigError as exc:
        raise ConfigError(f"--strategy: {exc}" if strategies else str(exc)) from None
    if pattern is not None and cfg.federation.name != "features":
        raise ConfigError(f"--pattern applies to --federation features only (got {cfg.federation.name})")
    check_out_dir(out if out is not None else Path(cfg.out), "--out" if out is not None else "out")
    import time

    started = time.monotonic()
    with console.status(f"loading {cfg.federation.name} and building clients…"):  # transient
        from fedlab.federation.setup import setup_for  # torch: imported only when a simulation runs
        from fedlab.runs.simulate import check_scale

        setup = setup_for(cfg)  # fail fast on data / target problems
    check_scale(cfg, len(setup.clients), flag=clients_per_round is not None)
    if not console.is_terminal:  # a log line (errors above stay the only stderr line)
        took = time.monotonic() - started
        name, n = cfg.federation.name, len(setup.clients)
        console.print(f"loaded {name}: {n} clients ({took:.1f} s)", markup=False)
    targets = setup.fed.domain_names if target == "all" else [setup.target]
    strategies = strategies or [cfg.training.strategy]
    from fedlab.metrics.comparison import REFERENCES
    from fedlab.runs.sweep import run_seeds  # after setup_for, which loaded torch already

    cells = len(targets) * len(strategies)
    seed_list = run_seeds(seed_list, cfg.seed, cells)
    if references and cells * len(seed_list) > 1:
        strategies = strategies + [r for r in REFERENCES if r not in strategies]
    if seeds is None and cells > 1:
        console.print(f"sweep: {len(seed_list)} seeds {seed_list} (set --seeds to change)")
    if cells * len(seed_list) == 1:
        resolved = cfg.training.model_copy(update={"target": setup.target})
        _single(cfg.model_copy(update={"training": resolved}), out, verbose)
    else:
        _sweep(cfg, targets, strategies, seed_list, out)


FLAGS = {
    "federation.name": "--federation",
    "federation.data_dir": "--data-dir",
    "federation.max_per_domain": "--max-per-domain",
    "training.strategy": "--strategy",
    "training.target": "--target",
    "training.rounds": "--rounds",
    "training.local_steps": "--local-steps",
    "training.clients_per_round": "--clients-per-round",
    "training.eval_every": "--eval-every",
    "training.client_eval": "--client-eval",
    "seed": "--seed",
    "device": "--device",
    "gpus_per_client": "--gpus-per-client",
    "engine": "--engine",
    "workers": "--workers",
    "ray_address": "--ray-address",
    "dp.mode": "--dp-mode",
    "dp.target_epsilon": "--epsilon",
    "dp.noise_multiplier": "--noise-multiplier",
    "dp.max_grad_norm": "--max-grad-norm",
    "dp.delta": "--delta",
    "anonymize.spec": "--anonymize",
}


def _privacy_overrides(
    dp: bool,
    mode: str | None,
    epsilon: float | None,
    noise: float | None,
    clip: float | None,
    delta: float | None,
    anonymize: str | None,
) -> dict[str, Any]:
    """--dp/--epsilon/... and --anonymize as config overrides (the config validates the values)."""
    flags = {
        "--dp-mode": ("dp.mode", mode),
        "--epsilon": ("dp.target_epsilon", epsilon),
        "--noise-multiplier": ("dp.noise_multiplier", noise),
        "--max-grad-norm": ("dp.max_grad_norm", clip),
        "--delta": ("dp.delta", delta),
    }
    given = {key: v for key, v in flags.values() if v is not None}
    if given and not dp:
        named = ", ".join(flag for flag, (_, v) in flags.items() if v is not None)
        raise ConfigError(f"{named} given without --dp; add --dp to train with differential privacy")
    out: dict[str, Any] = {"dp.enabled": True, **given} if dp else {}
    if anonymize is not None:
        out["anonymize.spec"] = anonymize
    return out


def _round_status(record: dict[str, Any]) -> str:
    if "target_acc" not in record:  # a training-only round (eval_every)
        return f"trained {record.get('clients_ok', 0)} clients ({record.get('seconds', 0):.1f} s)"
    text = f"target acc {100 * record['target_acc']:.1f}%  GE {100 * record['group_effect']:+.1f} pp"
    if record.get("voting_acc") is not None:
        text += (
            f"  vote {100 * (record['voting_acc'] or 0):.0f}%/{100 * record['adoption_rate']:.0f}% adopted"
        )
        if record.get("finetune_skipped"):
            text += " (below the vote floor: no fine-tuning)"
        if record.get("consensus_skipped"):
            text += " (voters split: no fine-tuning)"
    return text


def _single(cfg, out: Path | None, verbose: bool) -> None:
    from fedlab.runs.simulate import simulate as run

    with progress_bar() as progress:
        task = progress.add_task(
            f"{cfg.training.strategy} → {cfg.training.target or 'default target'}",
            total=cfg.training.rounds,
            status="starting…",
        )

        done = [0]

        def on_round(record: dict[str, Any]) -> None:
            done[0] += 1
            progress.update(task, advance=1, status=_round_status(record))

        def on_status(kind: str, finished: int, total: int) -> None:
            what = {"train": "trained", "evaluate": "evaluated", "query": "contacted"}.get(kind, kind)
            status = f"round {done[0] + 1}: {what} {finished}/{total} clients"
            if kind == "select":  # fedka-select's pseudo-task runs, before the run itself
                status = f"choosing FedKA or FedAvg: pseudo-task run {finished + 1}/{total}"
            progress.update(task, status=status)

        result = run(cfg, out=out, on_round=on_round, verbose=verbose, on_status=on_status)
    s = result.summary
    table = Table(
        title=f"{s['federation']}: target {s['target']}, strategy {s['strategy']}, seed {s['seed']}"
    )
    for col in ("round", "target acc %", "mean client acc %", "Group Effect (pp) [95% CI, test rows]"):
        table.add_column(col, justify="right")
    ci = s.get("final_group_effect_ci")
    ge = f"{100 * s['final_group_effect']:+.1f}"
    ge += f" [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]" if ci else ""
    table.add_row(
        "final", f"{100 * s['final_target_acc']:.1f}", f"{100 * s['final_mean_client_target_acc']:.1f}", ge
    )
    table.add_row(f"best ({s['best_round']})", f"{100 * s['best_target_acc']:.1f}", "", "")
    Console().print(table)
    _print_fairness(s)
    typer.echo(f"run directory: {result.run_dir}")


def _print_fairness(s: dict[str, Any]) -> None:
    """The final global model's pooled group fairness, with the outcome it is about."""
    pooled = s.get("final_pooled_fairness") or {}
    if not pooled:
        return
    positive = (s.get("class_names") or ["", "1"])[-1]
    target = s.get("final_target_fairness") or {}
    table = Table(
        title=f"final group fairness: SPD / EOD of P(ŷ = {positive!r}), privileged − unprivileged, pp"
    )
    for col in ("attribute", "privileged", "SPD pooled", "EOD pooled", "n (priv / unpriv)", "SPD target"):
        table.add_column(col, justify="right")
    for attr, v in pooled.items():
        t = target.get(attr) or {}
        table.add_row(
            attr,
            str((s.get("protected") or {}).get(attr, "?")),
            _pp(v.get("spd")),
            _pp(v.get("eq_opp_diff")),
            f"{int(v.get('n_priv') or 0)} / {int(v.get('n_unpriv') or 0)}",
            _pp(t.get("spd")),
        )
    Console().print(table)


def _pp(value: Any) -> str:
    return "-" if value is None or value != value else f"{100 * float(value):+.1f}"


def _sweep(cfg, targets: list[str], strategies: list[str], seeds: list[int], out: Path | None) -> None:
    from fedlab.runs.sweep import run_sweep

    out = out or Path(cfg.out) / default_run_name("sweep")
    total = len(targets) * len(strategies) * len(seeds)
    with progress_bar() as progress:
        runs_task = progress.add_task("runs", total=total, status="")
        round_task = progress.add_task("rounds", total=cfg.training.rounds, status="")

        def start(c) -> None:
            progress.reset(round_task, total=c.training.rounds)
            progress.update(runs_task, status=f"{c.training.strategy} → {c.training.target} (seed {c.seed})")

        def on_round(record: dict[str, Any]) -> None:
            progress.update(round_task, advance=1, status=_round_status(record))

        _, pd_runs, table = run_sweep(
            cfg, targets, strategies, seeds, out, start, on_round, lambda _r: progress.advance(runs_task)
        )
    t = Table(
        title=f"{cfg.federation.name}: accuracy on the target (%), Group Effect (pp), "
        f"mean ± std over {len(seeds)} seed(s)"
    )
    for col in ("target", "strategy", "final acc", "best-round acc", "final Group Effect (pp)"):
        t.add_column(col, justify="right")
    t.add_column("mean Group Effect (pp)", justify="right")
    for row in table.to_dict("records"):
        t.add_row(
            row["target"],
            row["strategy"],
            _fmt(row["final_target_acc_mean"], row["final_target_acc_std"]),
            _fmt(row["best_target_acc_mean"], row["best_target_acc_std"]),
            _fmt(row["final_group_effect_mean"], row["final_group_effect_std"]),
            _fmt(row["mean_group_effect_mean"], row["mean_group_effect_std"]),
        )
    Console().print(t)
    from fedlab.cli.paired_table import paired_table, verdict_lines
    from fedlab.metrics.comparison import compare

    cells = compare(pd_runs)
    if cells:
        Console().print(paired_table(cells, cfg.federation.name))
        for line in verdict_lines(cells):
            typer.echo(line)
    typer.echo(f"run directory: {out}")
