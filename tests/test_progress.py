"""Plain-text progress lines for logs (stderr not a terminal)."""

from __future__ import annotations

import io

from rich.console import Console

from fedlab.cli.plain_progress import PlainProgress


def test_plain_progress_prints_lines_on_advance_and_throttles_status() -> None:
    buf = io.StringIO()
    progress = PlainProgress(Console(file=buf, force_terminal=False, width=200), every=3600)
    with progress:
        task = progress.add_task("fedavg → rotated", total=3, status="starting…")
        progress.update(task, status="round 1: trained 1/4 clients")  # throttled: within `every`
        progress.update(task, advance=1, status="target acc 50.0%")
        progress.update(task, completed=3, status="done")
    lines = buf.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[0].endswith("fedavg → rotated 0/3 starting…")
    assert lines[1].endswith("fedavg → rotated 1/3 target acc 50.0%")
    assert lines[2].endswith("3/3 done") and lines[2].startswith("[")
