"""`fedlab audit`: run the privacy-vs-fairness grid from the command line.

A thin layer: `audits.experiment.options` forms the grid from the options (``--k`` alone runs
k-anonymity cells only, ...) and `audits.experiment.run.run_audit` runs it; ``--protocol`` runs a published
protocol through `audits.reproductions.arcolezi2025.audit`. A run in which any cell fails is
still written, but the command lists the failed cells and exits 1.

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
from typing import TYPE_CHECKING, Any

import typer

from fedlab.core.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from audits.reproductions.arcolezi2025.audit import ProtocolRun


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
    min_group_size: int | None = typer.Option(
        None,
        "--min-group-size",
        help="Groups with fewer test rows are left out of max-gap numbers and marked (default 30).",
        min=0,
    ),
    export: bool = typer.Option(
        False, "--export", help="Write each cell's anonymized train table and test predictions (exports/)."
    ),
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
        from audits.experiment.grid import read_grid_file
        from audits.reproductions.arcolezi2025.audit import from_toml

        opts = from_toml(opts, read_grid_file(config))
    if opts["protocol"] is not None:
        from audits.reproductions.arcolezi2025.audit import run_protocol

        typer.echo(f"run directory: {_report_protocol(run_protocol(opts))}")
        return
    if compare is not None or hierarchy_gaps or protected_in_test or encoding or switches:
        raise ConfigError(
            "--compare, --hierarchy-gaps, --protected-in-test, --encoding and --switches need --protocol"
        )
    path = _run(opts)
    typer.echo(f"run directory: {path}")


def _run(opts: dict[str, Any]) -> Path:
    from audits.experiment.options import grid_from_options
    from audits.experiment.run import run_audit
    from fedlab.core.rundir import default_run_name

    grid = grid_from_options(opts)
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


def _report_protocol(run: ProtocolRun) -> Path:
    """Rows and row counts, the ``--compare`` table, then the failed cells (exit 1 if any)."""
    results, info = run.results, run.info
    typer.echo(
        f"{len(results)} rows ({info['rows']['rows']} data rows; "
        f"{info['rows']['filtered_out']} filtered out, "
        f"{info['rows']['missing_dropped']} dropped for a missing value) in {run.seconds:.1f} s"
    )
    if run.compare is not None:
        _print_compare(run.compare)
    elif run.trend is not None and len(run.trend):
        _print_trend(run.trend)
    failed = results[results["status"] != "ok"]
    if len(failed):
        for _, r in failed.head(10).iterrows():
            typer.echo(
                f"failed: seed {r['SEED']} {r['method']} k={r['k_parameter']} "
                f"param={r['anon_parameter']} {r['protected_att']}: {r['status']}",
                err=True,
            )
        typer.echo(f"run directory: {run.out}")
        raise typer.Exit(1)
    return run.out


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
    ds = summary["dataset"]
    protected = list(ds["protected"])
    several_clients = len(ds["clients"]) > 1
    orientation = f"favourable outcome {ds['target']} = {ds.get('favourable_label', ds['positive_label'])}"
    privileged = "; ".join(
        f"{a} = {v if isinstance(v, str) else ' | '.join(map(str, v))}" for a, v in ds["protected"].items()
    )
    table = Table(
        title=f"audit: {ds['name']} ({ds['rows']} rows)",
        caption=f"mean±std over seeds; SPD, EOD (TPR gap): signed mean, privileged − unprivileged, "
        f"rates of the {orientation}; privileged {privileged} (every other value pooled); "
        "maj. = majority-class rate; ⚠ = near-trivial model; NCF: 0 = fair",
    )
    cols = ["client"] if several_clients else []
    cols += ["privacy model", "algorithm", "classifier", "ok", "suppressed", "accuracy", "maj.", "bal.acc"]
    for attr in protected:
        cols += [f"{attr} SPD", f"{attr} EOD"]
    cols += ["consist.", "NCF"]
    for c in cols:
        table.add_column(
            c, justify="left" if c in ("client", "privacy model", "algorithm", "classifier") else "right"
        )
    for cell in sorted(summary["cells"], key=_numeric_key):
        trivial = (cell["metrics"].get("near_trivial") or {}).get("mean")
        flag = " ⚠" if trivial is not None and trivial >= 0.5 else ""
        row = [cell["client"]] if several_clients else []
        row += [
            cell["privacy_model"] + flag,
            cell["algorithm"],
            cell["classifier"],
            f"{cell['n_ok']}/{cell['n_seeds']}",
        ]
        row += [_fmt(cell, "suppressed_fraction", pct=True), _fmt(cell, "accuracy")]
        row += [_fmt(cell, "majority_rate"), _fmt(cell, "balanced_accuracy")]
        for attr in protected:
            row += [_fmt(cell, f"{attr}_spd"), _fmt(cell, f"{attr}_eq_opp_diff")]
        row += [_fmt(cell, "consistency"), _fmt(cell, "ncf")]
        table.add_row(*row)
    width = 16 * len(cols) + 40
    console = Console(width=max(width, Console().width))  # never squeeze numbers into "…"
    console.print(table)
    _print_trivial(run_dir, console)
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


def _print_trivial(run_dir: Path, console: Any) -> None:
    """One line per near-trivial cell, naming why (majority-class rate, balanced accuracy, ...)."""
    import pandas as pd

    results = pd.read_csv(run_dir / "results.csv")
    if "near_trivial" not in results.columns:
        return
    flagged = results[results["near_trivial"].fillna(0) > 0]
    for (model, clf), part in flagged.groupby(["privacy_model", "classifier"], sort=False):
        console.print(
            f"[yellow]⚠ {model} {clf}: near-trivial in {len(part)} seed(s): "
            f"{part['near_trivial_reason'].iloc[0]}[/] — its fairness numbers are not judged"
        )


def _numeric_key(cell: dict[str, Any]) -> tuple:
    """k=5 before k=25: cells by family, then ℓ / t, then k, numerically."""

    def num(key: str) -> float:
        try:
            value = float(cell.get(key))
        except (TypeError, ValueError):
            return -1.0
        return -1.0 if math.isnan(value) else value

    family = {"baseline": 0, "k": 1, "l": 2, "t": 3}.get(str(cell.get("family")), 9)
    return (str(cell.get("client")), family, num("l"), num("t"), num("k"))


def _print_trend(trend: pd.DataFrame) -> None:
    """Without --compare: per cell SPD / EOD / ACC / NCF (mean ± 95% CI half-width over seeds) and the
    SPD / EOD change against the same seed's k = 1 row."""
    from rich.console import Console
    from rich.table import Table

    t = Table(
        title="protocol results per cell (mean ± 95% CI half-width over seeds; the paper's definitions: "
        "group 1 = privileged value, rates of ŷ = 1)",
        caption="Δ vs k=1: paired by seed, 95% CI; ⚠ = seeds whose model is near-trivial",
    )
    for c in ["method", "k", "ℓ/t", "attr", "seeds", "SPD", "EOD", "ACC", "NCF", "ΔSPD vs k=1",
              "ΔEOD vs k=1", "⚠"]:  # fmt: skip
        t.add_column(c, justify="left" if c in ("method", "attr") else "right")
    for keys, part in trend.groupby(["method", "k_parameter", "anon_parameter", "protected_att"], sort=True):
        by = part.set_index("metric")

        def ci(metric: str, change: bool = False, by: pd.DataFrame = by) -> str:
            if metric not in by.index:
                return "–"
            r = by.loc[metric]
            if change:
                if r["paired_seeds"] < 2 or r["k_parameter"] == 1:
                    return "–"
                return f"{r['change_vs_k1']:+.3f} [{r['change_ci_low']:+.3f}, {r['change_ci_high']:+.3f}]"
            half = (r["ci_high"] - r["ci_low"]) / 2
            return f"{r['mean']:+.3f}" + ("" if math.isnan(half) else f" ± {half:.3f}")

        method, k, param, attr = keys
        first = part.iloc[0]
        t.add_row(
            str(method), str(k), "" if method == "k-anonymity" else f"{param:g}", str(attr),
            str(int(first["n_seeds"])), ci("SPD"), ci("EOD"), ci("ACC"), ci("NCF"),
            ci("SPD", True), ci("EOD", True),
            str(int(first["near_trivial_seeds"])) if first["near_trivial_seeds"] else "",
        )  # fmt: skip
    Console(width=200).print(t)


def _print_compare(table: pd.DataFrame, metrics: tuple[str, ...] = ("SPD", "EOD", "ACC", "NCF")) -> None:
    """The headline rows of the comparison as a rich table on stdout."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title="fedlab vs published (mean ± std over seeds; exact = share of seeds with |Δ| ≤ 1e-6)")
    for c in [
        "method",
        "k",
        "ℓ/t",
        "attr",
        "metric",
        "published",
        "fedlab",
        "exact",
        "up (pub/fedlab)",
        "verdict",
    ]:
        t.add_column(c)
    for _, r in table[table["metric"].isin(metrics)].iterrows():
        t.add_row(
            str(r["method"]), str(r["k_parameter"]),
            "" if r["method"] == "k-anonymity" else f"{r['anon_parameter']:g}",
            str(r["protected_att"]), r["metric"],
            f"{r['pub_mean']:+.3f} ± {r['pub_std']:.3f}", f"{r['ours_mean']:+.3f} ± {r['ours_std']:.3f}",
            f"{r['exact_share']:.0%} of {r['common_seeds']}" if r["common_seeds"] else "–",
            f"{r['pub_up_share']:.0%} / {r['ours_up_share']:.0%}", r["verdict"],
        )  # fmt: skip
    Console(width=200).print(t)
