"""Progress for logs: plain-text lines when stderr is not a terminal (CI, `nohup`, `| tee`).

rich's live progress bar draws nothing until it stops when the console is not a terminal, so
a long run looked dead in a log file. `PlainProgress` offers the part of `rich.progress.Progress`
fedlab uses (`add_task`, `update`, `advance`, `reset`) and prints one timestamped line whenever a
task advances, and at most every `every` seconds for status-only updates (clients finished
within a round).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Task:
    description: str
    total: float | None
    completed: float = 0
    fields: dict[str, Any] = field(default_factory=dict)


class PlainProgress:
    """rich.progress.Progress's subset fedlab uses, printing plain timestamped lines for logs."""
    def __init__(self, console: Any, every: float = 5.0) -> None:
        self.console = console
        self.every = every
        self.tasks: list[_Task] = []
        self._start = time.monotonic()
        self._last_status = self._start

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, description: str, total: float | None = None, **fields: Any) -> int:
        """A new task; prints its first line."""
        self.tasks.append(_Task(description, total, 0, dict(fields)))
        self._line(self.tasks[-1])
        return len(self.tasks) - 1

    def update(
        self,
        task_id: int,
        *,
        advance: float | None = None,
        completed: float | None = None,
        total: float | None = None,
        description: str | None = None,
        **fields: Any,
    ) -> None:
        """Update a task (completed / total / description); prints at most every `every` seconds."""
        task = self.tasks[task_id]
        if total is not None:
            task.total = total
        if description is not None:
            task.description = description
        task.fields.update(fields)
        now = time.monotonic()
        if advance or completed is not None:
            task.completed = completed if completed is not None else task.completed + (advance or 0)
            self._line(task)
        elif fields and now - self._last_status >= self.every:
            self._last_status = now
            self._line(task)

    def advance(self, task_id: int, advance: float = 1) -> None:
        """Advance a task; prints a line."""
        self.update(task_id, advance=advance)

    def reset(self, task_id: int, *, total: float | None = None, **fields: Any) -> None:
        """Restart a task from 0 (a new run of a sweep)."""
        task = self.tasks[task_id]
        task.completed = 0
        if total is not None:
            task.total = total
        task.fields.update(fields)

    def _line(self, task: _Task) -> None:
        elapsed = time.monotonic() - self._start
        total = "?" if task.total is None else f"{task.total:g}"
        status = task.fields.get("status", "")
        self.console.print(
            f"[{elapsed:7.1f}s] {task.description} {task.completed:g}/{total} {status}".rstrip(),
            markup=False,
            highlight=False,
        )
