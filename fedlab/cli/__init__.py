"""The `fedlab` command line: a thin typer layer over the library.

One module per sub-command (`fedlab.cli.simulate`, `.audit`, `.report`, `.study`, `.deploy`),
each over a library function; they are registered here. Every `FedlabError` becomes a
one-line ``error: ...`` on stderr and exit code 2. The library never imports this package.
"""

from __future__ import annotations

import logging
import sys

import typer

from fedlab import __version__
from fedlab.core.errors import FedlabError

app = typer.Typer(
    name="fedlab",
    help="Federated learning under domain shift, and privacy-vs-fairness audits.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fedlab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show version."),
) -> None:
    """fedlab: simulate federations (FedAvg, FedKA, Group Effect) and audit privacy vs fairness."""


def _register() -> None:
    """Attach sub-commands (imported here, not at module import, to keep `import fedlab.cli` cheap)."""
    from fedlab.cli.audit import audit
    from fedlab.cli.deploy import deploy_app
    from fedlab.cli.report import report
    from fedlab.cli.simulate import simulate
    from fedlab.cli.study import study

    app.command("simulate")(simulate)
    app.command("audit")(audit)
    app.command("report")(report)
    app.command("study")(study)
    app.add_typer(deploy_app, name="deploy")


class _WarningLines(logging.Handler):
    """The library's warnings (logger ``fedlab``) as ``warning: ...`` lines on stderr, each once
    (a sweep runs many simulations on the same clients). stderr is looked up at each call, so a
    live progress display that redirects it prints them above itself."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        line = record.getMessage()
        if line not in self.seen:
            self.seen.add(line)
            typer.echo(f"warning: {line}", err=True)


def main() -> None:
    """The `fedlab` command: one-line errors (exit 2), interrupts (130 / 143), everything else from the
    library."""
    from fedlab.runtime.interrupts import exit_code, exit_interrupted, install_signal_handlers

    install_signal_handlers()  # SIGTERM behaves like Ctrl-C (exit 143)
    library_log = logging.getLogger("fedlab")
    library_log.addHandler(_WarningLines())
    library_log.propagate = False
    _register()
    try:
        code = app(standalone_mode=False)
        if code == 130:  # click caught Ctrl-C / SIGTERM itself (after the run directory was cleaned)
            raise KeyboardInterrupt
        if isinstance(code, int) and code != 0:
            sys.exit(code)
    except FedlabError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt) as exc:  # click turns Ctrl-C / SIGTERM into Abort
        cause = exc.__cause__ or exc.__context__
        code = exit_code(cause if isinstance(cause, KeyboardInterrupt) else exc)
        typer.echo("terminated" if code == 143 else "interrupted", err=True)
        exit_interrupted(code)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        raise
