"""The stderr console and the runs/rounds progress bar that `fedlab simulate` and `fedlab study` share."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(stderr=True)


def progress_bar() -> Progress:
    """The runs/rounds progress bar shared by `fedlab simulate` and `fedlab study`
    (plain-text lines when stderr is not a terminal, `fedlab.cli.plain_progress`)."""
    if not console.is_terminal:
        from fedlab.cli.plain_progress import PlainProgress

        return PlainProgress(console)  # type: ignore[return-value]
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
    )
