"""Report content -> HTML, Markdown or JSON, and plot specs -> inline SVG.

`render` is the one switch over the formats, so the three cannot disagree on content.
"""

from __future__ import annotations

from fedlab.core.errors import ConfigError
from fedlab.report.content import Report

FORMATS = {"html": "html", "md": "md", "markdown": "md", "json": "json"}


def render(report: Report, fmt: str) -> str:
    """`report` as text in `fmt` (html, md/markdown or json)."""
    fmt = FORMATS.get(fmt.lower(), "")
    if fmt == "html":
        from fedlab.report.render.html import render_html

        return render_html(report)
    if fmt == "md":
        from fedlab.report.render.markdown import render_md

        return render_md(report)
    if fmt == "json":
        from fedlab.report.render.json_doc import render_json

        return render_json(report)
    raise ConfigError(f"unknown report format {fmt!r}; expected html, md or json")
