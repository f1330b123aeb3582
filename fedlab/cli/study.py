"""`fedlab study`: thin CLI over `fedlab.runs.study` (privacy × anonymization × strategy × seeds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from fedlab.cli.console import progress_bar
from fedlab.config import parse_anonymize_spec
from fedlab.core.errors import ConfigError
from fedlab.core.rundir import default_run_name

NONE = {"none", "no", "off", "-", ""}


def parse_epsilons(text: str) -> list[float | None]:
    """``"none,1,3,8"`` -> [None, 1.0, 3.0, 8.0]; a bad value is a one-line ConfigError."""
    out: list[float | None] = []
    for part in (p.strip() for p in text.split(",")):
        if part.lower() in NONE:
            out.append(None)
            continue
        try:
            value = float(part)
        except ValueError:
            raise ConfigError(f"--epsilons: {part!r} is not a number or 'none'") from None
        if not value > 0:
            raise ConfigError(f"--epsilons: epsilon must be > 0 (got {part})")
        out.append(value)
    return list(dict.fromkeys(out))


def parse_anonymizations(text: str) -> list[str]:
    """``"none,k=10,k=50"`` -> ["", "k=10", "k=50"] (";" separates parts of one spec: "k=5;l=2")."""
    out: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if part.lower() in NONE:
            out.append("")
            continue
        try:
            parse_anonymize_spec(part)
        except ValueError as exc:
            raise ConfigError(f"--anonymize: {exc}") from None
        out.append(part.replace(";", ","))
    return list(dict.fromkeys(out))


def _ints(text: str, flag: str) -> list[int]:
    try:
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise ConfigError(f"{flag}: expected comma-separated integers (got {text!r})") from None


def _fmt(mean: Any, std: Any, scale: float = 100.0, signed: bool = False) -> str:
    if mean is None or mean != mean:
        return "-"
    text = f"{scale * mean:{'+' if signed else ''}.1f}"
    return text if std is None or std != std else f"{text} ± {scale * std:.1f}"  # one seed: no spread


def study(
    config: Path | None = typer.Option(None, "--config", help="TOML config (training/federation settings)."),
    csv: str | None = typer.Option(None, "--csv", help="Tabular CSV (default: the embedded UCI Adult)."),
    domain_column: str | None = typer.Option(None, "--domain-column", help="Column that splits clients."),
    data_dir: str | None = typer.Option(None, "--data-dir", help="Folder the config's csv is relative to."),
    strategies: str = typer.Option("fedavg,fedka", help="Comma-separated strategies."),
    epsilons: str = typer.Option("none,1,3,8", help="Client DP-SGD target epsilons; 'none' = no DP."),
    anonymize: str = typer.Option(
        "none,k=10,k=50", "--anonymize", help="Local anonymization specs; 'none' = raw; k=5;l=2 combines."
    ),
    seeds: str = typer.Option("0,1,2,3,4", help="Comma-separated seeds (default 5, for usable 95% CIs)."),
    rounds: int | None = typer.Option(None, min=1, help="Rounds per run (default 5)."),
    local_steps: int | None = typer.Option(None, "--local-steps", min=1, help="Local steps (default 20)."),
    max_per_domain: int | None = typer.Option(
        None, "--max-per-domain", min=0, help="Rows kept per domain (default 2000; 0 = all)."
    ),
    out: Path | None = typer.Option(None, help="Study directory (default: runs/study-<time>)."),
) -> None:
    """Grid over DP ε × local k-anonymity × strategy × seeds on a tabular federation; one tidy table."""
    from fedlab.runs.study import grid, plan_cells, run_study, study_config

    overrides: dict[str, Any] = {
        "federation.name": "tabular",
        "federation.csv": csv,
        "federation.data_dir": data_dir,
        "federation.domain_column": domain_column,
        "training.rounds": rounds,
        "training.local_steps": local_steps,
        "federation.max_per_domain": max_per_domain,
    }
    base = study_config(config, overrides)
    cells = grid(
        [s.strip() for s in strategies.split(",") if s.strip()],
        parse_epsilons(epsilons),
        parse_anonymizations(anonymize),
        _ints(seeds, "--seeds"),
    )
    out = out or Path(base.out) / default_run_name("study")
    runnable, skipped = plan_cells(base, cells)
    for cell in skipped:
        typer.echo(f"skipped {cell['run']}: {cell['reason']}", err=True)
    with progress_bar() as progress:
        task = progress.add_task("runs", total=len(runnable), status="")

        def start(cell) -> None:
            if progress.tasks[task].fields.get("status"):
                progress.advance(task)
            progress.update(task, status=cell.name)

        run_study(base, cells, out, on_cell_start=start)
        progress.update(task, completed=len(runnable), status="done")
    print_summary(Path(out))
    typer.echo(f"study directory: {out}  (report: fedlab report {out})")


def print_summary(out: Path) -> None:
    """Per condition: utility with its context, Group Effect [95% CI], pooled SPD per protected
    attribute (of P(ŷ = positive label), privileged − unprivileged) and ε spent."""
    from fedlab.metrics.stats import t_interval
    from fedlab.report.read import Notes
    from fedlab.report.study.read import conditions, load_study, select_condition
    from fedlab.runs.study_rows import condition_label

    st = load_study(out, Notes())
    priv = ", ".join(f"{a} = {v}" for a, v in st.privileged.items())
    t = Table(
        title=f"study by condition: mean ± std over seeds; SPD of P(ŷ = {st.positive_label!r}), "
        f"privileged − unprivileged ({priv}), pooled over the clients' splits; GE in pp [95% CI]"
    )
    cols = ["condition", "seeds", "target acc %", "bal. acc %", "majority %", "Group Effect (pp)"]
    cols += [f"SPD {a} (pp)" for a in st.attrs] + ["ε spent"]
    for col in cols:
        t.add_column(col, justify="right")
    for strategy, eps, anon in conditions(st):
        sel = select_condition(st.runs, strategy, eps, anon)
        ge = t_interval([float(v) for v in sel["group_effect"].dropna()])
        ge_text = f"{100 * ge.mean:+.1f}" + (
            f" [{100 * ge.ci_low:+.1f}, {100 * ge.ci_high:+.1f}]" if ge.known else ""
        )
        row = [
            condition_label(strategy, eps, anon),
            str(len(sel)),
            _fmt(sel["target_acc"].mean(), sel["target_acc"].std()),
            _fmt(sel["target_balanced_acc"].mean(), sel["target_balanced_acc"].std()),
            _fmt(sel["target_majority_rate"].mean(), 0.0).split(" ")[0],
            ge_text,
        ]
        for a in st.attrs:
            col = sel.get(f"pooled_spd__{a}")
            row.append("-" if col is None else _fmt(col.mean(), col.std(), signed=True))
        row.append(_fmt(sel["epsilon_spent"].mean(), sel["epsilon_spent"].std(), scale=1.0))
        t.add_row(*row)
    Console(width=max(Console().width, 150)).print(t)
