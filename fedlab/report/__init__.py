"""`fedlab report`: readable audit and federation reports from a run directory.

`build_report` computes the content once (`fedlab.report.build`); `render` turns it into
HTML, Markdown or JSON, so the three formats cannot disagree; `write_report` does both
and writes the file atomically.
"""

from __future__ import annotations

from pathlib import Path

from fedlab.core.errors import ConfigError
from fedlab.core.rundir import write_text_atomic
from fedlab.report.audit.risk import THRESHOLD
from fedlab.report.build import build_report
from fedlab.report.content import Report
from fedlab.report.render import FORMATS, render

__all__ = ["FORMATS", "Report", "build_report", "render", "write_report"]


def write_report(
    run_dir: Path,
    fmt: str = "html",
    out: Path | None = None,
    threshold: float = THRESHOLD,
    level: str | None = None,
) -> tuple[Path, Report]:
    """Build, render and atomically write the report; returns (output path, content)."""
    key = FORMATS.get(fmt.lower())
    if key is None:
        raise ConfigError(f"--format must be html, md or json (got {fmt!r})")
    if not 0 < threshold <= 1:
        raise ConfigError(f"--risk-threshold must be in (0, 1] (got {threshold})")
    run_dir = Path(run_dir)
    report = build_report(run_dir, threshold=threshold, level=level)
    text = render(report, key)
    target = Path(out) if out is not None else run_dir / f"report.{key}"
    if target.is_dir():
        raise ConfigError(f"--out {target} is a directory; give a file name")
    write_text_atomic(target, text)
    return target, report
