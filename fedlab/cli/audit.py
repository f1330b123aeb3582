"""`fedlab audit`: run the privacy-vs-fairness grid from the command line.

How the grid is formed: ``--k`` alone (no ``--l``, ``--t``, ``--models`` or ``--config``) runs
k-anonymity cells only; otherwise ``--models`` picks the families, ℓ / t are crossed with
``--l-with-k`` / ``--t-with-k`` (default k = 1, i.e. alone). A run in which any cell fails is still
written, but the command lists the failed cells and exits 1.

With no options it runs a small grid on the embedded Adult table (baseline, k=10, k=100,
2-diversity, 0.5-closeness; optimal algorithm; HistGradientBoosting; 2 seeds) that takes
about a minute on two cores. ``--config grid.toml`` loads a full `AuditGrid`; explicit
options override it. Every input problem is one ``error: ...`` line and exit code 2,
raised before the run directory exists.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import typer

from fedlab.errors import ConfigError

# The no-argument grid: small enough for CI, still showing the privacy/fairness trend.
QUICK_GRID: dict[str, Any] = {
    "dataset": "adult",
    "models": ["k", "l", "t"],
    "ks": [1, 10, 100],
    "ls": [2],
    "l_ks": [1],
    "ts": [0.5],
    "t_ks": [1],
    "algorithms": ["optimal"],
    "classifiers": ["hgb"],
    "seeds": [0, 1],
    "n_jobs": 0,
}


def _ints(text: str | None, option: str) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise ConfigError(f"{option} expects comma-separated integers like 1,10,100 (got {text!r})") from exc


def _floats(text: str | None, option: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise ConfigError(f"{option} expects comma-separated numbers like 0.45,0.5 (got {text!r})") from exc


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [x.strip() for x in text.split(",") if x.strip()]


def audit(
    dataset: str | None = typer.Option(None, "--dataset", help="Embedded data set: adult or german."),
    csv: Path | None = typer.Option(None, "--csv", help="Your own tabular CSV (needs --schema)."),
    schema: Path | None = typer.Option(
        None, "--schema", help="Schema TOML for --csv (or to override a built-in)."
    ),
    config: Path | None = typer.Option(
        None, "--config", help="TOML grid (AuditGrid fields); options override."
    ),
    k: str | None = typer.Option(None, "--k", help="k values, e.g. 1,10,100 (k=1 is the baseline)."),
    l_values: str | None = typer.Option(None, "--l", help="l values for l-diversity, e.g. 2,3."),
    t: str | None = typer.Option(None, "--t", help="t values for t-closeness, e.g. 0.45,0.5."),
    l_with_k: str | None = typer.Option(
        None, "--l-with-k", help="k values crossed with --l ('all' = every --k)."
    ),
    t_with_k: str | None = typer.Option(
        None, "--t-with-k", help="k values crossed with --t ('all' = every --k)."
    ),
    models: str | None = typer.Option(None, "--models", help="Privacy model families to run: k,l,t."),
    algorithm: str | None = typer.Option(None, "--algorithm", help="optimal, mondrian, greedy (comma list)."),
    classifier: str | None = typer.Option(None, "--classifier", help="logreg, rf, hgb (comma list)."),
    seeds: int | None = typer.Option(None, "--seeds", help="Number of seeds (0..N-1).", min=1),
    suppression: float | None = typer.Option(None, "--suppression", help="Max fraction of suppressed rows."),
    test_size: float | None = typer.Option(None, "--test-size", help="Test fraction of each split."),
    split_by: str | None = typer.Option(
        None, "--split-by", help="Audit each value of this column separately."
    ),
    max_rows: int | None = typer.Option(
        None, "--max-rows", help="Stratified subsample of the table (0 = all)."
    ),
    jobs: int | None = typer.Option(None, "--jobs", help="Worker processes (0 = all cores)."),
    out: Path | None = typer.Option(None, "--out", help="Run directory (default runs/audit-<time>)."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue/extend an existing --out; reuse finished cells."
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    protocol: str | None = typer.Option(
        None, "--protocol", help="Run a published protocol instead: arcolezi2025 (needs --csv, --schema)."
    ),
    compare: Path | None = typer.Option(
        None, "--compare", help="With --protocol: the paper's per-seed results CSV to compare against."
    ),
    hierarchy_gaps: str | None = typer.Option(
        None, "--hierarchy-gaps", help="With --protocol: error (default), repair or paper."
    ),
    protected_in_test: str | None = typer.Option(
        None, "--protected-in-test", help="With --protocol: raw (paper) or generalized."
    ),
    encoding: str | None = typer.Option(None, "--encoding", help="With --protocol: label (paper) or onehot."),
    switches: bool = typer.Option(
        False, "--switches", help="With --protocol: rerun k cells with protected-in-test × encoding switched."
    ),
) -> None:
    """Audit privacy models (k-anonymity, l-diversity, t-closeness) for utility and fairness."""
    # FedlabError propagates: `fedlab.cli.main` prints it as one "error: ..." line and exits 2
    opts = locals()
    if protocol is None and config is not None:
        from .protocol_cli import from_toml
        from .run import read_grid_file

        opts = from_toml(opts, read_grid_file(config))
    if opts["protocol"] is not None:
        from .protocol_cli import run_protocol

        typer.echo(f"run directory: {run_protocol(opts, _ints, _floats, _names)}")
        return
    if compare is not None or hierarchy_gaps or protected_in_test or encoding or switches:
        raise ConfigError(
            "--compare, --hierarchy-gaps, --protected-in-test, --encoding and --switches need --protocol"
        )
    path = _run(opts)
    typer.echo(f"run directory: {path}")


def _run(opts: dict[str, Any]) -> Path:
    from fedlab.rundir import default_run_name

    from .run import make_grid, read_grid_file, run_audit

    data = read_grid_file(opts["config"]) if opts["config"] is not None else dict(QUICK_GRID)
    source = str(opts["config"]) if opts["config"] is not None else "audit options"
    overrides: dict[str, Any] = {
        "ks": _ints(opts["k"], "--k"),
        "ls": _ints(opts["l_values"], "--l"),
        "ts": _floats(opts["t"], "--t"),
        "models": _names(opts["models"]),
        "algorithms": _names(opts["algorithm"]),
        "classifiers": _names(opts["classifier"]),
        "seeds": list(range(opts["seeds"])) if opts["seeds"] else None,
        "suppression_limit": opts["suppression"],
        "test_size": opts["test_size"],
        "split_by": opts["split_by"],
        "max_rows": opts["max_rows"],
        "n_jobs": opts["jobs"],
        "schema_path": str(opts["schema"]) if opts["schema"] is not None else None,
    }
    data.update({key: value for key, value in overrides.items() if value is not None})
    if opts["csv"] is not None and opts["dataset"] is not None:
        raise ConfigError("give either --dataset or --csv, not both")
    if opts["csv"] is not None:
        data.update(csv=str(opts["csv"]), dataset="")
    if opts["dataset"] is not None:
        data.update(dataset=opts["dataset"], csv="")
    for key, option in (("l_ks", "l_with_k"), ("t_ks", "t_with_k")):
        text = opts[option]
        if text is not None:  # "all" -> None: cross with every k
            data[key] = (
                None if text.strip().lower() == "all" else _ints(text, "--" + option.replace("_", "-"))
            )
    only_k = opts["k"] is not None and opts["config"] is None and opts["models"] is None
    if only_k and all(opts[o] is None for o in ("l_values", "t", "l_with_k", "t_with_k")):
        data["models"] = ["k"]  # `--k 1,10` alone: k-anonymity cells only
    grid = make_grid(data, source)
    if opts["resume"] and opts["out"] is None:
        raise ConfigError("--resume needs --out pointing at the run directory to continue")
    out = opts["out"] or Path("runs") / default_run_name("audit")
    path = run_audit(grid, out, resume=opts["resume"], progress=not opts["quiet"], command=sys.argv)
    _print_table(path)
    _fail_if_cells_failed(path)
    return path


def _fail_if_cells_failed(run_dir: Path) -> None:
    """A run with failed cells is published (for inspection) but the command exits 1 and says which."""
    import pandas as pd

    results = pd.read_csv(run_dir / "results.csv", usecols=["cell_id", "status"])
    failed = results[results["status"] != "ok"]
    if failed.empty:
        return
    for _, r in failed.head(10).iterrows():
        typer.echo(f"failed cell {r['cell_id']}: {r['status']}", err=True)
    typer.echo(f"{len(failed)} of {len(results)} cells failed; run directory: {run_dir}", err=True)
    raise typer.Exit(1)


def _fmt(cell: dict[str, Any], metric: str, pct: bool = False) -> str:
    """``mean±std`` (std left out for a single seed), percentages for fractions."""
    m = cell["metrics"].get(metric) or {}
    mean, std = m.get("mean"), m.get("std")
    if mean is None or math.isnan(mean):
        return "–"
    text = f"{100 * mean:.1f}%" if pct else f"{mean:.3f}"
    if std is None or math.isnan(std):
        return text
    return text + (f"±{100 * std:.1f}" if pct else "±" + f"{std:.3f}".removeprefix("0"))


def _print_table(run_dir: Path) -> None:
    """Per-cell mean ± std of the headline numbers, read back from summary.json."""
    import json

    from rich.console import Console
    from rich.table import Table

    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    protected = list(summary["dataset"]["protected"])
    several_clients = len(summary["dataset"]["clients"]) > 1
    table = Table(
        title=f"audit: {summary['dataset']['name']} ({summary['dataset']['rows']} rows)",
        caption="mean±std over seeds; SPD, EOD (TPR gap): signed mean, privileged − unprivileged; "
        "NCF: 0 = fair",
    )
    cols = ["client"] if several_clients else []
    cols += ["privacy model", "algorithm", "classifier", "ok", "suppressed", "accuracy", "roc_auc"]
    for attr in protected:
        cols += [f"{attr} SPD", f"{attr} EOD"]
    cols += ["consist.", "NCF"]
    for c in cols:
        table.add_column(
            c, justify="left" if c in ("client", "privacy model", "algorithm", "classifier") else "right"
        )
    for cell in summary["cells"]:
        row = [cell["client"]] if several_clients else []
        row += [
            cell["privacy_model"],
            cell["algorithm"],
            cell["classifier"],
            f"{cell['n_ok']}/{cell['n_seeds']}",
        ]
        row += [_fmt(cell, "suppressed_fraction", pct=True), _fmt(cell, "accuracy"), _fmt(cell, "roc_auc")]
        for attr in protected:
            row += [_fmt(cell, f"{attr}_spd"), _fmt(cell, f"{attr}_eq_opp_diff")]
        row += [_fmt(cell, "consistency"), _fmt(cell, "ncf")]
        table.add_row(*row)
    console = Console(width=max(180, Console().width))  # never squeeze numbers into "…"
    console.print(table)
    counts = summary["dataset"].get("row_counts") or {}
    if counts:  # never silent about rows the audit did not use
        console.print(
            f"data: {counts['read']} rows read, {counts['filtered_out']} filtered out, "
            f"{counts['missing_dropped']} dropped for a missing value, {counts['rows']} complete"
        )
    if summary["n_failed"]:
        console.print(
            f"[yellow]{summary['n_failed']} cell(s) failed; see the status column of results.csv[/]"
        )
