"""`fedlab report RUN_DIR`: turn a simulation, sweep or audit run into a readable report."""

from __future__ import annotations

import time
from pathlib import Path

import typer


def report(
    run_dir: Path = typer.Argument(..., help="Run directory written by `fedlab simulate` or `fedlab audit`."),
    fmt: str = typer.Option("html", "--format", "-f", help="html (one offline file), md or json."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Output file (default RUN_DIR/report.<format>)."
    ),
    level: str | None = typer.Option(
        None, "--level", help="Audit: privacy model for the class-size plot, e.g. k=10 (default: largest k)."
    ),
    risk_threshold: float = typer.Option(
        0.2,
        "--risk-threshold",
        help="Audit: re-identification risk threshold (0.2 = classes smaller than 5).",
    ),
) -> None:
    """Write a fairness-audit or federation report (HTML, Markdown or JSON) for a run directory."""
    from fedlab.report import write_report

    started = time.perf_counter()
    path, content = write_report(run_dir, fmt, out, threshold=risk_threshold, level=level)
    if content.missing:
        typer.echo(
            f"note: {len(content.missing)} item(s) missing or incomplete; listed in the report", err=True
        )
    typer.echo(f"report ({content.kind}): {path}  [{time.perf_counter() - started:.1f} s]")
