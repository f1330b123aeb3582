"""The audit's progress bar: one tick per finished task, on stderr."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from audits.experiment.grid import Task


class ProgressBar:
    """Rich progress bar on stderr (quiet when disabled); yields an ``advance(task)`` callback."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled, self.total = enabled and total > 0, total
        self.bar: Any = None

    def __enter__(self) -> Callable[[Task], None]:
        if not self.enabled:
            return lambda task: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(
            TextColumn("audit"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=Console(stderr=True),
            transient=False,
        )
        self.bar.start()
        bar_id = self.bar.add_task("", total=self.total)

        def advance(task: Task) -> None:
            desc = f"{task.client} {task.spec.label} {task.algorithm} s{task.seed}"
            self.bar.update(bar_id, advance=1, description=desc)

        return advance

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
